// The Electron host: one window on the renderer, one lab in a worker thread, and the preload bridge
// between them. Everything the renderer may do goes through REQUEST_CHANNEL.
import { app, BrowserWindow, ipcMain, session, type IpcMainInvokeEvent } from 'electron';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { LabRequest } from '../../api';
import { LabClient } from '../node/lab-client';
import labWorkerPath from '../node/lab-worker?modulePath';
import type { LabWorkerData } from '../node/lab-worker';
import { EVENT_CHANNEL, REQUEST_CHANNEL, type IpcReply } from './channels';

const devServerUrl = !app.isPackaged ? process.env.ELECTRON_RENDERER_URL : undefined;
const rendererFile = join(import.meta.dirname, '../renderer/index.html');

/** Is this URL our renderer's page (the built file, or the dev server in `electron-vite dev`)? */
function isRendererUrl(raw: string): boolean {
  try {
    const url = new URL(raw);
    if (devServerUrl) return url.origin === new URL(devServerUrl).origin;
    return url.protocol === 'file:' && fileURLToPath(url) === rendererFile;
  } catch {
    return false;
  }
}

/** Only our window's top frame, showing our page, may talk to the lab. */
function isTrustedSender(event: IpcMainInvokeEvent, win: BrowserWindow | undefined): boolean {
  const frame = event.senderFrame;
  return !!win && event.sender === win.webContents && !!frame && !frame.parent && isRendererUrl(frame.url);
}

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1280,
    height: 800,
    minWidth: 900,
    minHeight: 600,
    title: 'HMM Lab',
    backgroundColor: '#f6f7f9',
    show: false,
    webPreferences: {
      preload: join(import.meta.dirname, '../preload/index.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false,
    },
  });
  win.once('ready-to-show', () => win.show());
  if (devServerUrl) void win.loadURL(devServerUrl);
  else void win.loadFile(rendererFile);
  return win;
}

function lockDown(): void {
  // The renderer never leaves its page, opens windows, embeds webviews or asks for permissions.
  app.on('web-contents-created', (_e, contents) => {
    contents.on('will-navigate', (event, url) => {
      if (!isRendererUrl(url)) event.preventDefault();
    });
    contents.on('will-redirect', (event) => event.preventDefault());
    contents.on('will-attach-webview', (event) => event.preventDefault());
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  });
  session.defaultSession.setPermissionRequestHandler((_wc, _perm, callback) => callback(false));
  if (devServerUrl) {
    // The built page carries its CSP in a meta tag; the dev server's page gets one with HMR's allowances.
    const origin = new URL(devServerUrl).origin;
    const wsOrigin = origin.replace(/^http/, 'ws');
    session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
      callback({
        responseHeaders: {
          ...details.responseHeaders,
          'Content-Security-Policy': [
            `default-src 'self'; script-src 'self'; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; ` +
              `img-src 'self' data:; ` +
              `connect-src 'self' ${wsOrigin}; object-src 'none'; base-uri 'none'; form-action 'none'`,
          ],
        },
      });
    });
  }
}

async function start(): Promise<void> {
  await app.whenReady();
  lockDown();

  // Drivers the user writes live in their data folder; the bundled plugins ship beside the app.
  const workerData: LabWorkerData = {
    driversDir: join(app.getPath('userData'), 'drivers'),
    pluginsDir: join(app.getAppPath(), 'plugins'),
  };
  const lab = new LabClient(new Worker(labWorkerPath, { workerData }));
  let win: BrowserWindow | undefined = createWindow();
  win.on('closed', () => (win = undefined));

  ipcMain.handle(REQUEST_CHANNEL, async (event, req: LabRequest): Promise<IpcReply> => {
    if (!isTrustedSender(event, win)) {
      return { ok: false, error: { code: 'EPERM', message: 'request from an untrusted frame' } };
    }
    try {
      return { ok: true, res: await lab.request(req) };
    } catch (err) {
      const code = err && typeof err === 'object' && 'code' in err ? String(err.code) : 'EINTERNAL';
      return { ok: false, error: { code, message: err instanceof Error ? err.message : String(err) } };
    }
  });
  lab.onEvent((event) => {
    if (win && !win.isDestroyed()) win.webContents.send(EVENT_CHANNEL, event);
  });

  app.on('window-all-closed', () => {
    void lab.close().finally(() => app.quit());
  });
}

start().catch((err: unknown) => {
  console.error(err);
  app.exit(1);
});

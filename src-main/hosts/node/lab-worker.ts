// The lab's thread: one LabSession per worker, driven by WireRequest messages from lab-client.ts,
// so a long simulation never blocks the Electron main process or the web host's event loop.
import { parentPort, workerData } from 'node:worker_threads';
import type { LabError, LabEvent, WireMessage, WireRequest } from '../../api';
import { LabSession } from '../../lab/session';
import { DriverFiles, isDriverFilesRequest } from './driver-files';

/** What a host passes as `workerData`: the machine to boot, or nothing for the default demo machine. */
export interface LabWorkerData {
  machine?: unknown;
  machineName?: string;
  /** The user's driver sources (created on the first save); without it drivers cannot be saved. */
  driversDir?: string;
  /** The bundled plugins, plugins/<name>/<name>.ts, listed read-only. */
  pluginsDir?: string;
}

function toLabError(err: unknown): LabError {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') {
    return { code: err.code, message: err instanceof Error ? err.message : String(err.code) };
  }
  // Anything without a kernel code is a bug in the lab, not a refusal by the kernel.
  return { code: 'EINTERNAL', message: err instanceof Error ? err.message : String(err) };
}

const port = parentPort;
if (!port) throw new Error('lab-worker.ts must run in a worker thread');

const post = (msg: WireMessage): void => port.postMessage(msg);

let session: LabSession | undefined;
let bootError: LabError | undefined;
try {
  const data = (workerData ?? {}) as LabWorkerData;
  session = new LabSession({
    ...(data.machine !== undefined && { machine: data.machine }),
    ...(data.machineName !== undefined && { machineName: data.machineName }),
  });
  session.onEvent((event: LabEvent) => post({ event }));
} catch (err) {
  bootError = toLabError(err);
}

// The driver files are served apart from the session, so saving works whatever the session's state.
const files = new DriverFiles({
  userDir: (workerData as LabWorkerData | undefined)?.driversDir,
  bundledDir: (workerData as LabWorkerData | undefined)?.pluginsDir,
});

port.on('message', ({ id, req }: WireRequest) => {
  if (isDriverFilesRequest(req)) {
    try {
      post({ id, ok: true, res: files.handle(req) });
    } catch (err) {
      post({ id, ok: false, error: toLabError(err) });
    }
    return;
  }
  if (!session) {
    post({ id, ok: false, error: bootError ?? { code: 'EINTERNAL', message: 'lab failed to boot' } });
    return;
  }
  try {
    const res = session.handle(req);
    // A request that waits (a plugin driver's engine being made) answers when it is done.
    if (res instanceof Promise)
      res.then(
        (r: unknown) => post({ id, ok: true, res: r }),
        (err: unknown) => post({ id, ok: false, error: toLabError(err) }),
      );
    else post({ id, ok: true, res });
  } catch (err) {
    post({ id, ok: false, error: toLabError(err) });
  }
});

// The Electron host: the built app (out/main/index.js) opens one window that shows the layout through
// the preload bridge. Needs the Electron binary, which cannot be downloaded everywhere: never trigger
// the download that require('electron') would start, look for the binary instead.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { _electron as electron } from 'playwright-core';
import { describe, expect, it } from 'vitest';

const repo = resolve(import.meta.dirname, '../..');
const SKIPPED = 'Electron binary not installed here: launch test skipped';

function electronBinary(): string | undefined {
  const pkg = join(repo, 'node_modules/electron');
  const pathFile = join(pkg, 'path.txt');
  if (!existsSync(pathFile)) return undefined;
  const rel = readFileSync(pathFile, 'utf8').trim();
  const dist = process.env.ELECTRON_OVERRIDE_DIST_PATH ?? join(pkg, 'dist');
  const bin = join(dist, rel);
  return rel && existsSync(bin) ? bin : undefined;
}

describe('Electron host', () => {
  it('opens a sandboxed window that shows the layout from the lab', async (ctx) => {
    const bin = electronBinary();
    if (!bin) {
      console.warn(SKIPPED);
      ctx.skip(SKIPPED);
    }

    execFileSync(process.execPath, [join(repo, 'node_modules/electron-vite/bin/electron-vite.js'), 'build'], {
      cwd: repo,
      stdio: 'pipe',
    });
    const app = await electron.launch({
      executablePath: bin,
      args: [join(repo, 'out/main/index.js'), ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])],
      cwd: repo,
    });
    try {
      const page = await app.firstWindow();
      await page.locator('.layout-view').waitFor({ timeout: 30_000 });
      await expect(page.locator('.resource-table tr[data-name="gpu0"]').innerText()).resolves.toContain(
        'DEVICE_PRIVATE_MEMORY',
      );
      await expect(
        page.locator('.resource-table tr[data-name="System RAM"]').count(),
      ).resolves.toBeGreaterThan(0);
      // The renderer sees the bridge and nothing of Node.
      await expect(page.evaluate(() => typeof (globalThis as { hmmLab?: unknown }).hmmLab)).resolves.toBe(
        'object',
      );
      await expect(page.evaluate(() => typeof (globalThis as { require?: unknown }).require)).resolves.toBe(
        'undefined',
      );
      await expect(page.evaluate(() => typeof (globalThis as { process?: unknown }).process)).resolves.toBe(
        'undefined',
      );
    } finally {
      await app.close();
    }
  });
});

// bench/scale.ts on a small machine, bundled as `hmm-lab bench` runs it: its checks pass on an
// honest run and fail when one page's stamp is damaged on the device, so a passing benchmark
// means the data came home.
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundle, type ScaleFigures } from '../../bench/run';

let script = '';

function scale(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(
    process.execPath,
    [script, '--ram', '512M', '--device', '256M', '--touch', '8M', ...args],
    { encoding: 'utf8' },
  );
}

// A fresh node takes seconds on a loaded host.
describe('bench/scale.ts', { timeout: 60_000 }, () => {
  beforeAll(() => {
    script = bundle('./scale.ts');
  });

  it('moves every page to the device and back and reports the machine', () => {
    const r = scale();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const figures = JSON.parse(r.stdout.trim().split('\n').pop()!) as ScaleFigures;
    expect(figures.touched_pages).toBe(2048);
    // 512 MiB + 256 MiB of 4 KiB pages.
    expect(figures.pages).toBe(196608);
    expect(figures.peak_rss_bytes).toBeGreaterThan(0);
    expect(Object.keys(figures.seconds)).toEqual([
      'boot',
      'mmap',
      'touch',
      'to_device',
      'verify_device',
      'to_system',
      'verify',
    ]);
  });

  it('fails when a page comes back with a stamp it did not leave with', () => {
    const r = scale('--corrupt', '1000');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('1 of 2048 pages lost their stamp');
    expect(r.stdout).toBe('');
  });
});

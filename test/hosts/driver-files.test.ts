// The driver file store: user drivers in a data folder, bundled plugins read-only beside them,
// names checked before any file is touched, writes that never leave half a file. Also served by
// the lab worker, where a lab request reaches it.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DRIVER_TEMPLATE, DriverFiles } from '../../src-main/hosts/node/driver-files';
import { startBundledLab } from '../../src-main/hosts/node/bundled-worker';
import type { LabClient } from '../../src-main/hosts/node/lab-client';

let root: string;
let userDir: string;
let bundledDir: string;
let files: DriverFiles;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'hmm-lab-drivers-'));
  userDir = join(root, 'data', 'drivers');
  bundledDir = join(root, 'plugins');
  mkdirSync(join(bundledDir, 'dmirror'), { recursive: true });
  writeFileSync(join(bundledDir, 'dmirror', 'dmirror.ts'), 'export const bundled = 1;\n');
  // Not plugins: a folder without its <name>.ts, a stray file at the top.
  mkdirSync(join(bundledDir, 'empty'));
  writeFileSync(join(bundledDir, 'README.md'), '#');
  files = new DriverFiles({ userDir, bundledDir });
});

afterEach(() => rmSync(root, { recursive: true, force: true }));

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return `${(err as { code: string }).code}: ${(err as Error).message}`;
  }
  return 'no error';
};

describe('driver file store', () => {
  it('lists bundled plugins read-only before the user folder exists, and creates it on the first write', () => {
    expect(files.list()).toEqual([
      { name: 'dmirror.ts', origin: 'bundled', size: 26, mtime: expect.any(Number) },
    ]);
    const info = files.write('mine.ts', 'export const x = 1;\n');
    expect(info).toMatchObject({ name: 'mine.ts', origin: 'user', size: 20 });
    expect(files.list().map((f) => `${f.origin}:${f.name}`)).toEqual(['user:mine.ts', 'bundled:dmirror.ts']);
    expect(files.read('mine.ts').source).toBe('export const x = 1;\n');
    expect(files.readBundled('dmirror.ts').source).toBe('export const bundled = 1;\n');
  });

  it('refuses names that could leave the folder or are not .ts files, with EINPUT naming the field', () => {
    for (const bad of [
      '../x.ts',
      'a/b.ts',
      '..',
      '.hidden.ts',
      'x.js',
      'x',
      'a b.ts',
      'x.ts/',
      '',
      'x.d.ts',
    ]) {
      expect(codeOf(() => files.write(bad, ''))).toMatch(
        /^EINPUT: name: expected a file name like my-driver\.ts/,
      );
    }
    expect(codeOf(() => files.rename('a.ts', '../b.ts'))).toMatch(/^EINPUT: to:/);
    expect(codeOf(() => files.readBundled('../dmirror/dmirror.ts'))).toMatch(/^EINPUT/);
    expect(
      codeOf(() => files.handle({ type: 'writeDriver', name: 'a.ts', source: 1 as unknown as string })),
    ).toBe('EINPUT: source: expected a string');
    expect(readdirSync(root)).toEqual(['plugins']);
  });

  it('names the missing and the taken: ENOENT, EEXIST', () => {
    expect(codeOf(() => files.read('nope.ts'))).toBe('ENOENT: no driver named nope.ts');
    expect(codeOf(() => files.readBundled('nope.ts'))).toBe('ENOENT: no bundled plugin named nope.ts');
    files.write('a.ts', 'a');
    files.write('b.ts', 'b');
    expect(codeOf(() => files.rename('a.ts', 'b.ts'))).toBe('EEXIST: a driver named b.ts already exists');
    expect(codeOf(() => files.create('a.ts'))).toBe('EEXIST: a driver named a.ts already exists');
    expect(codeOf(() => files.create('c.ts', 'nope.ts'))).toBe('ENOENT: no bundled plugin named nope.ts');
    expect(files.read('b.ts').source).toBe('b');
  });

  it('new drivers start from the skeleton or a copy of a bundled plugin, which stays as it was', () => {
    expect(files.create('fresh.ts').source).toBe(DRIVER_TEMPLATE);
    const copy = files.create('dmirror.ts', 'dmirror.ts');
    expect(copy).toMatchObject({ name: 'dmirror.ts', origin: 'user', source: 'export const bundled = 1;\n' });
    files.write('dmirror.ts', 'export const edited = 1;\n');
    expect(files.readBundled('dmirror.ts').source).toBe('export const bundled = 1;\n');
    expect(files.list().map((f) => `${f.origin}:${f.name}`)).toEqual([
      'user:dmirror.ts',
      'user:fresh.ts',
      'bundled:dmirror.ts',
    ]);
  });

  it('rewrites a file whole, leaving no temporary files behind', () => {
    files.write('a.ts', 'x'.repeat(10_000));
    files.write('a.ts', 'short');
    expect(readFileSync(join(userDir, 'a.ts'), 'utf8')).toBe('short');
    expect(readdirSync(userDir)).toEqual(['a.ts']);
    expect(codeOf(() => files.write('a.ts', 'y'.repeat(600_000)))).toMatch(
      /^EFBIG: a\.ts: 600000 characters/,
    );
    expect(readFileSync(join(userDir, 'a.ts'), 'utf8')).toBe('short');
  });

  it('renames, and deletes into .deleted/ so the source can still be found', () => {
    files.write('a.ts', 'keep me');
    expect(files.rename('a.ts', 'b.ts')).toMatchObject({ name: 'b.ts', size: 7 });
    expect(codeOf(() => files.read('a.ts'))).toMatch(/^ENOENT/);
    expect(files.remove('b.ts')).toEqual({ name: 'b.ts' });
    expect(files.list().filter((f) => f.origin === 'user')).toEqual([]);
    const [kept] = readdirSync(join(userDir, '.deleted'));
    expect(kept).toMatch(/^b\.\d+\.ts$/);
    expect(readFileSync(join(userDir, '.deleted', kept!), 'utf8')).toBe('keep me');
    expect(codeOf(() => files.remove('b.ts'))).toBe('ENOENT: no driver named b.ts');
  });

  it('without a data folder lists bundled plugins and refuses writes with ENOSYS', () => {
    const noData = new DriverFiles({ bundledDir });
    expect(noData.list().map((f) => f.name)).toEqual(['dmirror.ts']);
    expect(codeOf(() => noData.write('a.ts', ''))).toBe('ENOSYS: this lab has no data folder for drivers');
  });
});

describe('driver files through the lab worker', () => {
  let lab: LabClient | undefined;
  afterEach(async () => {
    await lab?.close();
    lab = undefined;
  });

  it('serves the folders the host passed in workerData, with the store errors as lab errors', async () => {
    lab = startBundledLab({ driversDir: userDir, pluginsDir: bundledDir });
    const made = await lab.request({ type: 'newDriver', name: 'mine.ts', template: 'dmirror.ts' });
    expect(made.source).toBe('export const bundled = 1;\n');
    await lab.request({ type: 'writeDriver', name: 'mine.ts', source: 'export const v = 2;\n' });
    expect(readFileSync(join(userDir, 'mine.ts'), 'utf8')).toBe('export const v = 2;\n');
    const list = await lab.request({ type: 'listDrivers' });
    expect(list.map((f) => `${f.origin}:${f.name}`)).toEqual(['user:mine.ts', 'bundled:dmirror.ts']);
    await expect(lab.request({ type: 'readDriver', name: '../../etc/passwd' })).rejects.toMatchObject({
      code: 'EINPUT',
    });
    // The session still answers beside the store.
    await expect(lab.request({ type: 'layout' })).resolves.toMatchObject({ machine: 'demo' });
  });
});

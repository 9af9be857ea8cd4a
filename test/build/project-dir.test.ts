import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../src-main/build/project-dir';

const dir = mkdtempSync(join(tmpdir(), 'hmm-lab-project-dir-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('projectPath', () => {
  it('joins from the nearest folder above the module that holds a package.json, at any depth', () => {
    const project = join(dir, 'lab');
    mkdirSync(join(project, 'src-main/lab'), { recursive: true });
    mkdirSync(join(project, 'out/cli'), { recursive: true });
    writeFileSync(join(project, 'package.json'), '{}');
    const source = pathToFileURL(join(project, 'src-main/lab/selftests.ts')).href;
    const bundle = pathToFileURL(join(project, 'out/cli/hmm-lab.mjs')).href;
    expect(projectPath(source, 'test/selftests')).toBe(join(project, 'test/selftests'));
    expect(projectPath(bundle, 'test/selftests')).toBe(join(project, 'test/selftests'));
    expect(projectPath(pathToFileURL(join(project, 'x.ts')).href)).toBe(project);
  });

  it('finds this project from its own sources', () => {
    expect(projectPath(import.meta.url, 'package.json')).toBe(
      join(import.meta.dirname, '../../package.json'),
    );
  });

  it('throws naming the module when no folder above holds a package.json', () => {
    expect(() => projectPath('file:///hmm-lab-nowhere/a/b.mjs')).toThrow(
      'no package.json in a folder above /hmm-lab-nowhere/a/b.mjs',
    );
  });
});

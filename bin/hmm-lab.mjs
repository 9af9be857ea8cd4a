#!/usr/bin/env node
// The `hmm-lab` command. It runs src-main/hosts/cli/main.ts bundled as the desktop app runs the
// simulator (src-main/build/node-bundle.ts), which is faster than from source (docs/BENCHMARKS.md,
// "Const bindings"). The bundle is kept in out/cli/ and made again, with tsx loading the bundler,
// whenever the files it is made from are not those it was made from.
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bundle = join(root, 'out/cli/hmm-lab.mjs');
const stampFile = `${bundle}.sources`;

/** What the bundle is made from, in one line: file count, bytes, and the sum of change times. */
function sourcesStamp() {
  let files = 0;
  let bytes = 0;
  let mtimes = 0; // whole milliseconds: an exact sum, whatever order the files come in
  const add = (path) => {
    const st = statSync(path);
    files++;
    bytes += st.size;
    mtimes += Math.floor(st.mtimeMs);
  };
  for (const dir of ['src-main', 'bench'])
    for (const entry of readdirSync(join(root, dir), { recursive: true, withFileTypes: true }))
      if (entry.isFile()) add(join(entry.parentPath, entry.name));
  for (const file of ['package-lock.json', 'tsconfig.json']) add(join(root, file));
  return `${files} files, ${bytes} bytes, change times ${mtimes}`;
}

const stamp = sourcesStamp();
if (!existsSync(bundle) || !existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) {
  const { register } = await import('tsx/esm/api');
  register();
  const { bundleForNode } = await import('../src-main/build/node-bundle.ts');
  bundleForNode(join(root, 'src-main/hosts/cli/main.ts'), bundle);
  const tmp = `${stampFile}.${process.pid}.tmp`;
  writeFileSync(tmp, stamp);
  renameSync(tmp, stampFile);
}
const { main } = await import(pathToFileURL(bundle).href);
process.exitCode = await main(process.argv.slice(2));

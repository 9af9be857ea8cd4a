// One entry of the simulator bundled for Node as electron-vite bundles the app's main process:
// one ES module, packages left as imports (found from the output in node_modules), the
// bindings made const (const-bindings.ts). `hmm-lab bench` runs its benchmarks this way, and
// the web host its lab worker.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { buildSync } from 'esbuild';
import { constBindings } from './const-bindings';

const made = new Set<string>();

/**
 * Bundle `entry` into `outfile`, once a process (an outfile made already is returned as it is).
 * Written whole, then renamed: a reader never sees part of it.
 */
export function bundleForNode(entry: string, outfile: string): string {
  if (made.has(outfile)) return outfile;
  const [out] = buildSync({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outfile,
    write: false,
    logLevel: 'warning',
  }).outputFiles;
  mkdirSync(dirname(outfile), { recursive: true });
  const tmp = `${outfile}.${process.pid}.tmp`;
  writeFileSync(tmp, constBindings(out!.text, outfile).toString());
  renameSync(tmp, outfile);
  made.add(outfile);
  return outfile;
}

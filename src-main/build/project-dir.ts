// The project's own files (plugins/, test/selftests/, bench/, out/) for a module that runs from
// its source or from a bundle at another depth (out/cli/, out/lab/, out/main/): paths are taken
// from the nearest folder above the module that holds a package.json.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** `parts` joined to the project folder of the module at `moduleUrl` (its import.meta.url). */
export function projectPath(moduleUrl: string, ...parts: string[]): string {
  const from = fileURLToPath(moduleUrl);
  let dir = dirname(from);
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json in a folder above ${from}`);
    dir = up;
  }
  return join(dir, ...parts);
}

// Where a plugin driver's TypeScript comes from: a bundled plugin (plugins/<name>/<name>.ts
// in the project), a file a machine file names by path, or source the lab was handed (the
// editor's loadDriver). A machine file's `driver` is one of:
//   "dmirror", "pmem"            the built-in drivers (drivers/builtin.ts)
//   "chunked-vram", "pmem-dax"   a bundled plugin by name (one the built-ins do not shadow)
//   "plugin:dmirror"             a bundled plugin by name, even one a built-in shadows
//   "./my-driver.ts"             a plugin file, relative to the machine file
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { projectPath } from '../../build/project-dir';

/** A plugin's source, ready to load. */
export interface PluginSource {
  /** The driver's name: the bundled plugin's, or the file's without ".ts". */
  name: string;
  /** What errors name as the file ("dmirror.ts"). */
  filename: string;
  source: string;
  /** Where it was read from, if from a file. */
  path?: string;
}

/** The built-in drivers' names (drivers/builtin.ts); a bare name resolves to these first. */
export const BUILTIN_DRIVER_NAMES: readonly string[] = ['dmirror', 'pmem'];

/** The prefix that names a bundled plugin even when a built-in driver has the same name. */
export const PLUGIN_PREFIX = 'plugin:';

/** Whether `driver` names a plugin file by path rather than a driver by name. */
export function isPluginPath(driver: string): boolean {
  return driver.endsWith('.ts') || driver.includes('/') || driver.includes('\\');
}

/** The bundled plugins' directory: `plugins/` of the project this module is part of. */
function pluginsDir(): string | null {
  const dir = projectPath(import.meta.url, 'plugins');
  return existsSync(dir) ? dir : null;
}

let bundledCache: string[] | null = null;

/** The names of the bundled plugins (directories of plugins/ holding <name>/<name>.ts). */
export function bundledPlugins(): string[] {
  if (bundledCache) return bundledCache;
  const dir = pluginsDir();
  bundledCache = dir
    ? readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, `${e.name}.ts`)))
        .map((e) => e.name)
        .sort()
    : [];
  return bundledCache;
}

/** The bundled plugin named `name` ("plugin:" prefix allowed), or null. */
export function bundledPlugin(name: string): PluginSource | null {
  const bare = name.startsWith(PLUGIN_PREFIX) ? name.slice(PLUGIN_PREFIX.length) : name;
  const dir = pluginsDir();
  if (!dir || !bundledPlugins().includes(bare)) return null;
  const path = join(dir, bare, `${bare}.ts`);
  return { name: bare, filename: `${bare}.ts`, source: readFileSync(path, 'utf8'), path };
}

/** The plugin a bare driver name means, if it means one (a built-in name does not, unless prefixed). */
export function isBundledName(driver: string): boolean {
  if (driver.startsWith(PLUGIN_PREFIX)) return bundledPlugins().includes(driver.slice(PLUGIN_PREFIX.length));
  return !BUILTIN_DRIVER_NAMES.includes(driver) && bundledPlugins().includes(driver);
}

/** Whether a machine file's `driver` names a plugin (bundled or by path), not a built-in driver. */
export function isPluginDriver(driver: string): boolean {
  return isPluginPath(driver) || isBundledName(driver);
}

/** Read a plugin file; `base` is the directory a relative path is relative to. Throws on I/O errors. */
export function pluginFile(path: string, base?: string): PluginSource {
  const full = isAbsolute(path) ? path : resolve(base ?? process.cwd(), path);
  const file = basename(full);
  return {
    name: file.replace(/\.ts$/, ''),
    filename: file,
    source: readFileSync(full, 'utf8'),
    path: full,
  };
}

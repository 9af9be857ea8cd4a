// The editor's `loadDriver`: a driver's source becomes the driver of the running machine's
// devices that use it, each device unbound and probed again while the machine keeps going.
import { basename } from 'node:path';
import type { DriverDiagnostic, LoadDriverResult } from '../api';
import type { DeviceConfig } from '../drivers/builtin';
import {
  deviceKey,
  isPluginPath,
  PLUGIN_PREFIX,
  type DriverReport,
  type PluginHost,
} from '../drivers/plugin';
import { compilePlugin, PluginError } from '../drivers/sandbox';
import { errname } from '../kernel/include/errno';
import { InputError } from './input-error';
import type { Userland } from './ops';

// What hosts need of the plugin host (they import lab/, not drivers/).
export {
  bundledPlugin,
  bundledPlugins,
  deviceKey,
  isPluginPath,
  PluginHost,
  pluginFile,
  prepareEngines,
} from '../drivers/plugin';
export { SPARE_ENGINES } from '../drivers/plugin/engines';

/** A plugin file named on the command line, refused at its first syntax error: bad input. */
export function checkPluginFile(src: { source: string; filename: string }, path: string): void {
  try {
    compilePlugin(src.source, src.filename);
  } catch (e) {
    if (!(e instanceof PluginError)) throw e;
    throw new InputError(path, `does not compile: ${e.file}:${e.line}:${e.column}: ${e.reason}`);
  }
}

/** Whether a device whose machine file names `driver` is served by the driver called `name`. */
export function drivenBy(driver: string, name: string): boolean {
  if (driver === name || driver === `${PLUGIN_PREFIX}${name}`) return true;
  return isPluginPath(driver) && basename(driver).replace(/\.ts$/, '') === name;
}

function diagnostic(e: {
  kind: DriverDiagnostic['kind'];
  file: string;
  line: number;
  column: number;
  message: string;
}) {
  return { kind: e.kind, file: e.file, line: e.line, column: e.column, message: e.message };
}

/**
 * Load `source` as the driver `name` (a bundled plugin's name, or a file's without ".ts") into
 * the running machine. Answers at once when the plugin engines are ready, else once they are.
 */
export function loadDriver(
  host: PluginHost,
  u: Userland,
  req: { name: unknown; source: unknown },
  changed: () => void,
): LoadDriverResult | Promise<LoadDriverResult> {
  if (typeof req.name !== 'string' || !/^[A-Za-z0-9_.:-]{1,72}$/.test(req.name))
    throw new InputError('name', `expected a driver name like "dmirror", got ${JSON.stringify(req.name)}`);
  if (typeof req.source !== 'string')
    throw new InputError('source', 'expected the driver source as a string');
  const name = req.name.replace(/^plugin:/, '').replace(/\.ts$/, '');
  const filename = `${name}.ts`;
  const source = req.source;
  try {
    compilePlugin(source, filename);
  } catch (e) {
    if (e instanceof PluginError) return { ok: false, diagnostics: [diagnostic(e)] };
    throw e;
  }
  const machine = u.machine;
  const configs: DeviceConfig[] = [...machine.devices.values()]
    .map((d) => d.config)
    .filter((c) => drivenBy(c.driver, name));
  if (!host.ready(configs)) return host.prepare(configs).then(() => loadDriver(host, u, req, changed));

  const src = { name, filename, source };
  host.overrides.set(name, src);
  for (const c of configs) if (isPluginPath(c.driver)) host.overrides.set(deviceKey(c.name), src);

  const diagnostics: DriverDiagnostic[] = [];
  const seen = new Set<string>();
  const add = (d: DriverDiagnostic): void => {
    const key = `${d.kind}:${d.line}:${d.column}:${d.message}`;
    if (!seen.has(key)) diagnostics.push(d);
    seen.add(key);
  };
  const off = host.onReport((r: DriverReport) => {
    if (r.callback === '<load>' || r.callback === 'probe') add(diagnostic(r));
  });
  const devices: string[] = [];
  try {
    for (const c of configs) {
      const err = machine.rebind(c.name);
      devices.push(c.name);
      if (err === 0) u.reopen(c.name);
      else if (!diagnostics.length)
        add({
          kind: 'rule',
          file: filename,
          line: 1,
          column: 1,
          message:
            err === -16
              ? `${c.name}: the old driver's device memory is still in use; the device was not reprobed`
              : `${c.name}: probe failed with ${errname(err)}`,
        });
    }
  } finally {
    off();
    changed();
  }
  return diagnostics.length ? { ok: false, diagnostics, devices } : { ok: true, devices };
}

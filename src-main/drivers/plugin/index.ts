// The plugin host: binding a device to a driver plugin. A machine probes each device with
// the driver its machine file names; when that names a plugin (bundled, by path, or source
// the lab was handed), the device's driver is a PluginDriver running the plugin's callbacks
// in a sandbox (drivers/sandbox/). Reports of faults and broken kernel rules go to whoever
// listens to the PluginHost (the lab's session turns them into `driverError` events).
import type { Kernel } from '../../kernel/kernel';
import { device } from '../../kernel/drivers/base/core';
import { devres_release_all } from '../../kernel/drivers/base/devres';
import { IORES_DESC_DEVICE_PUBLIC_MEMORY, IORES_DESC_PERSISTENT_MEMORY } from '../../kernel/include/ioport';
import { release_resource } from '../../kernel/kernel/resource';
import { platformResource, type BoundDevice, type DeviceConfig } from '../builtin';
import type { SandboxOptions } from '../sandbox/sandbox';
import { enginesReady, prepareEngines, SPARE_ENGINES } from './engines';
import { PluginDriver, type DriverReport } from './plugin-driver';
import {
  bundledPlugin,
  isBundledName,
  isPluginPath,
  PLUGIN_PREFIX,
  pluginFile,
  type PluginSource,
} from './sources';

export { PluginDriver, PluginMirror, type DriverReport } from './plugin-driver';
export { prepareEngines, enginesReady, takeEngine } from './engines';
export * from './sources';

/** The key of an override for one device (rather than for every device of a driver). */
export const deviceKey = (name: string): string => `device:${name}`;

/**
 * The plugin side of a lab session or a command run: which source serves which driver, the
 * sandbox options, and who hears the reports. A session keeps one across machine reloads, so
 * a driver loaded from the editor keeps serving its devices on the next machine too.
 */
export class PluginHost {
  /**
   * Sources that replace a driver, by the driver's name ("dmirror", "chunked-vram"), or one
   * device's driver, by deviceKey(device name) (the CLI's --driver NAME=PATH).
   */
  readonly overrides = new Map<string, PluginSource>();
  private readonly listeners = new Set<(r: DriverReport) => void>();

  constructor(readonly options: SandboxOptions = {}) {}

  onReport(listener: (r: DriverReport) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  report(r: DriverReport): void {
    for (const l of this.listeners) l(r);
  }

  /**
   * The plugin that serves a device, or null when a built-in driver does. `dir` is where a
   * relative plugin path is looked for (the machine file's directory). Throws when a plugin
   * file cannot be read.
   */
  resolve(cfg: DeviceConfig, dir?: string): PluginSource | null {
    const bare = cfg.driver.startsWith(PLUGIN_PREFIX) ? cfg.driver.slice(PLUGIN_PREFIX.length) : cfg.driver;
    const o =
      this.overrides.get(deviceKey(cfg.name)) ?? this.overrides.get(cfg.driver) ?? this.overrides.get(bare);
    if (o) return o;
    if (isPluginPath(cfg.driver)) return pluginFile(cfg.driver, dir);
    if (isBundledName(cfg.driver)) return bundledPlugin(cfg.driver);
    return null;
  }

  /** Whether a device would be served by a plugin. */
  servesPlugin(cfg: DeviceConfig): boolean {
    const bare = cfg.driver.startsWith(PLUGIN_PREFIX) ? cfg.driver.slice(PLUGIN_PREFIX.length) : cfg.driver;
    return (
      this.overrides.has(deviceKey(cfg.name)) ||
      this.overrides.has(cfg.driver) ||
      this.overrides.has(bare) ||
      isPluginPath(cfg.driver) ||
      isBundledName(cfg.driver)
    );
  }

  /** Make engines ready for `devices` plugin devices (and the spares after them). */
  async prepare(devices: readonly DeviceConfig[] = []): Promise<void> {
    const n = devices.filter((d) => this.servesPlugin(d)).length;
    await prepareEngines(Math.max(SPARE_ENGINES, n));
  }

  /** Whether binding these devices can start now, without waiting for engines. */
  ready(devices: readonly DeviceConfig[] = []): boolean {
    return enginesReady() >= devices.filter((d) => this.servesPlugin(d)).length;
  }

  /** Probe a device with a plugin: the bound device, or -errno (with what the probe did undone). */
  probe(k: Kernel, cfg: DeviceConfig, src: PluginSource): BoundDevice | number {
    const bound: BoundDevice = { config: cfg, dev: new device(cfg.name), pool: null };
    if (cfg.kind !== 'private') {
      const res =
        cfg.kind === 'public'
          ? platformResource(k, cfg, `${cfg.name} memory`, IORES_DESC_DEVICE_PUBLIC_MEMORY)
          : platformResource(k, cfg, 'Persistent Memory', IORES_DESC_PERSISTENT_MEMORY);
      if (typeof res === 'number') return res;
      bound.platformRes = res;
    }
    const drv = new PluginDriver(k, bound, src, { report: (r) => this.report(r) }, this.options);
    bound.driver = drv;
    const ret = drv.probe();
    if (ret) {
      drv.unbind({ callRemove: false, evict: true });
      devres_release_all(k, bound.dev);
      if (bound.platformRes) release_resource(bound.platformRes);
      drv.dispose();
      return ret;
    }
    return bound;
  }
}

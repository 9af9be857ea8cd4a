// A booted machine: the kernel plus the devices its drivers probed. Devices can be
// hotplugged and removed while it runs; a removal may wait for pages still in use.
import { start_kernel, BootError } from '../kernel/init/main';
import type { Kernel } from '../kernel/kernel';
import { EBUSY, ENOENT, errname } from '../kernel/include/errno';
import { wait_for_completion } from '../kernel/kernel/sched/completion';
import { probeDevice, removeDevice, type BoundDevice, type DeviceConfig } from '../drivers/builtin';
import { PluginHost, type PluginSource } from '../drivers/plugin';
import { InputError } from './input-error';
import { bootParams, type MachineSpec } from './machine-file';

/** A device whose probe failed: kept so the lab can show why. */
export interface FailedDevice {
  config: DeviceConfig;
  error: number;
}

export class Machine {
  readonly kernel: Kernel;
  readonly devices = new Map<string, BoundDevice | FailedDevice>();

  /**
   * `plugins` says which devices plugin drivers serve and hears their reports; its engines
   * must be ready for them (await plugins.prepare(spec.devices) first).
   */
  constructor(
    readonly spec: MachineSpec,
    readonly plugins: PluginHost = new PluginHost(),
  ) {
    try {
      this.kernel = start_kernel(bootParams(spec));
    } catch (e) {
      if (e instanceof BootError) throw new InputError(spec.name, e.message);
      throw e;
    }
    for (const cfg of spec.devices) this.probe(cfg);
  }

  /** Probe a device; returns 0 or the driver's errno. */
  probe(cfg: DeviceConfig): number {
    if (this.devices.has(cfg.name))
      throw new InputError('device.name', `a device named "${cfg.name}" already exists`);
    let src: PluginSource | null;
    try {
      src = this.plugins.resolve(cfg, this.spec.dir);
    } catch (e) {
      this.kernel.printk('err', `${cfg.name}: cannot read driver ${cfg.driver}: ${(e as Error).message}`);
      this.devices.set(cfg.name, { config: cfg, error: -ENOENT });
      return -ENOENT;
    }
    const bound = src ? this.plugins.probe(this.kernel, cfg, src) : probeDevice(this.kernel, cfg);
    if (typeof bound === 'number') {
      this.kernel.printk('err', `${cfg.name}: probe of ${cfg.driver} failed with error ${errname(bound)}`);
      this.devices.set(cfg.name, { config: cfg, error: bound });
      return bound;
    }
    this.devices.set(cfg.name, bound);
    return 0;
  }

  /** Unbind and forget a device. `onGone` runs when it is gone, which may be later. */
  remove(name: string, onGone: () => void): void {
    const d = this.devices.get(name);
    if (!d) throw new InputError('name', `no device named "${name}"`);
    if ('error' in d) {
      this.devices.delete(name);
      onGone();
      return;
    }
    wait_for_completion(removeDevice(this.kernel, d), () => {
      this.devices.delete(name);
      onGone();
    });
  }

  /**
   * Bind a device to its driver again (a plugin reloaded from the editor): the old driver
   * unbinds, its device memory in use comes home, and the device is probed afresh with the
   * same configuration. 0, the probe's errno, or -EBUSY when the old device cannot go yet.
   */
  rebind(name: string): number {
    const d = this.devices.get(name);
    if (!d) throw new InputError('name', `no device named "${name}"`);
    const cfg = d.config;
    if ('error' in d) this.devices.delete(name);
    else {
      d.driver?.unbind({ evict: true });
      wait_for_completion(removeDevice(this.kernel, d), () => {
        if (this.devices.get(name) === d) this.devices.delete(name);
      });
      if (this.devices.has(name)) return -EBUSY;
    }
    return this.probe(cfg);
  }

  /** Devices whose probe failed, with the kernel error name. */
  probeFailures(): { name: string; error: string }[] {
    return [...this.devices.values()]
      .filter((d): d is FailedDevice => 'error' in d)
      .map((d) => ({ name: d.config.name, error: errname(d.error) }));
  }
}

// A lab session: one machine, the requests front ends send it, the events it pushes.
// Hosts (Electron, web, CLI, tests) adapt it to their transport.
import type { DeviceSpec, LabEvent, LabRequest, LogLine } from '../api';
import { errname } from '../kernel/include/errno';
import { parseDevice, parseMachine, DEMO_MACHINE } from './machine-file';
import { Machine } from './machine';
import { layoutSnapshot } from './layout';
import { InputError } from './input-error';

/** A request that failed: `code` is a kernel error name or "EINPUT" for bad input. */
export class LabFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class LabSession {
  private machine: Machine;
  private readonly listeners = new Set<(e: LabEvent) => void>();
  private unsubscribeLog: () => void = () => {};

  constructor(opts: { machine?: unknown; machineName?: string } = {}) {
    this.machine = guard(
      () => new Machine(parseMachine(opts.machine ?? DEMO_MACHINE, opts.machineName ?? 'demo')),
    );
    this.follow();
  }

  handle(req: LabRequest): unknown {
    switch (req.type) {
      case 'layout':
        return layoutSnapshot(this.machine);
      case 'loadMachine':
        this.machine = guard(() => new Machine(parseMachine(req.machine, req.name ?? 'machine')));
        this.follow();
        return this.changed();
      case 'addDevice':
        return this.addDevice(req.device);
      case 'removeDevice':
        guard(() => this.machine.remove(req.name, () => this.changed()));
        return layoutSnapshot(this.machine);
      case 'dmesg':
        return this.machine.kernel.log.lines().map((l): LogLine => ({ ...l }));
      default:
        throw new LabFailure('EINPUT', `unknown request ${JSON.stringify((req as { type?: unknown }).type)}`);
    }
  }

  onEvent(listener: (e: LabEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private addDevice(spec: DeviceSpec): unknown {
    const k = this.machine.kernel;
    const cfg = guard(() => parseDevice(spec, 'device', k.c.PAGE_SIZE, 2 ** k.config.physAddrBits));
    const err = guard(() => this.machine.probe(cfg));
    if (err) {
      this.machine.devices.delete(cfg.name);
      this.changed();
      throw new LabFailure(errname(err), `${cfg.name}: probe failed with ${errname(err)}`);
    }
    return this.changed();
  }

  private changed(): ReturnType<typeof layoutSnapshot> {
    const layout = layoutSnapshot(this.machine);
    this.emit({ type: 'layout', layout });
    return layout;
  }

  private follow(): void {
    this.unsubscribeLog();
    this.unsubscribeLog = this.machine.kernel.log.subscribe((line) =>
      this.emit({ type: 'log', line: { ...line } }),
    );
  }

  private emit(e: LabEvent): void {
    for (const l of this.listeners) l(e);
  }
}

/** Run `fn`, turning bad input into a LabFailure the front end can show. */
function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof InputError) throw new LabFailure('EINPUT', e.message);
    throw e;
  }
}

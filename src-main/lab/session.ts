// A lab session: one machine, the requests front ends send it, the events it pushes.
// Hosts (Electron, web, CLI, tests) adapt it to their transport.
import type { DeviceSpec, LabEvent, LabRequest, LogLine, OpResult, ProcessInfo } from '../api';
import { errname } from '../kernel/include/errno';
import { parseDevice, parseMachine, DEMO_MACHINE } from './machine-file';
import { Machine } from './machine';
import { layoutSnapshot } from './layout';
import { InputError } from './input-error';
import { clockFor, type VirtualClock } from './clock';
import { RssRecorder } from './rss';
import { Userland } from './ops';
import { pageTable, processList } from './processes';
import { MirrorTrace, mirrorView } from './mirror';
import { devicesBooted, isRunRequest, RunController } from './run';
import { loadDriver } from './drivers';
import { PluginHost, prepareEngines } from '../drivers/plugin';

/** At most this often (wall-clock ms) an `rss` event goes out; samples in between coalesce. */
export const RSS_EVENT_INTERVAL_MS = 200;

/** A request that failed: `code` is a kernel error name or "EINPUT" for bad input. */
export class LabFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** One machine and what runs on it: its processes, the virtual clock, the rss series. */
interface World {
  machine: Machine;
  clock: VirtualClock;
  rss: RssRecorder;
  userland: Userland;
  /** The Mirror view's trace of HMM tracepoints (lab/mirror.ts). */
  mirror: MirrorTrace;
  /** Device pages went back to a driver during the current step (the layout's pages in use moved). */
  devmemFreed: boolean;
  detach: () => void;
}

export class LabSession {
  private world!: World;
  private readonly listeners = new Set<(e: LabEvent) => void>();
  /**
   * Which plugin serves which device, for every machine of this session (a driver loaded from
   * the editor keeps serving after a machine reload), and the reports of plugins' faults.
   */
  readonly plugins = new PluginHost();
  /** The Run view's scenario player: workloads in slices, series, saved sessions (lab/run.ts). */
  private readonly runs = new RunController({
    boot: (spec) => {
      this.boot(guard(() => new Machine(spec, this.plugins)));
      this.emitProcesses();
      this.emitRss();
      this.changed();
      return this.world.userland;
    },
    userland: () => this.world.userland,
    emit: (e) => this.emit(e),
    changed: () => {
      this.emitProcesses();
      this.changed();
      this.scheduleRss();
    },
  });
  private processSeq = 0;
  /** The rss version and simulated time the last `rss` event carried. */
  private rssEmitted = '';
  private rssLastEmit = 0;
  private rssTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(opts: { machine?: unknown; machineName?: string } = {}) {
    this.plugins.onReport((error) => this.emit({ type: 'driverError', error }));
    // Plugin engines are made asynchronously: have some ready before a plugin is needed.
    void prepareEngines().catch(() => {});
    this.boot(
      guard(
        () =>
          new Machine(parseMachine(opts.machine ?? DEMO_MACHINE, opts.machineName ?? 'demo'), this.plugins),
      ),
    );
  }

  /**
   * A session whose first machine may use driver plugins: the engines they run on are made
   * first, so its devices probe at boot.
   */
  static async create(opts: { machine?: unknown; machineName?: string } = {}): Promise<LabSession> {
    const spec = guard(() => parseMachine(opts.machine ?? DEMO_MACHINE, opts.machineName ?? 'demo'));
    await new PluginHost().prepare(spec.devices);
    return new LabSession(opts);
  }

  private get machine(): Machine {
    return this.world.machine;
  }

  /** The userland of the current machine (the scenario runner drives it directly). */
  get userland(): Userland {
    return this.world.userland;
  }

  handle(req: LabRequest): unknown {
    if (isRunRequest(req)) {
      // A scenario's plugin devices wait for their engines (the answer is then a promise).
      const devices = devicesBooted(req);
      if (!this.plugins.ready(devices)) return this.plugins.prepare(devices).then(() => this.handle(req));
      return guard(() => this.runs.handle(req));
    }
    switch (req.type) {
      case 'layout':
        return layoutSnapshot(this.machine);
      case 'loadMachine': {
        const spec = guard(() => parseMachine(req.machine, req.name ?? 'machine'));
        // Plugin devices wait for their engines (the answer is then a promise).
        if (!this.plugins.ready(spec.devices))
          return this.plugins.prepare(spec.devices).then(() => this.handle(req));
        const machine = guard(() => new Machine(spec, this.plugins));
        this.boot(machine);
        this.emitProcesses();
        this.emitRss();
        return this.changed();
      }
      case 'addDevice':
        return this.addDevice(req.device);
      case 'removeDevice':
        guard(() => this.machine.remove(req.name, () => this.changed()));
        return layoutSnapshot(this.machine);
      case 'dmesg':
        return this.machine.kernel.log.lines().map((l): LogLine => ({ ...l }));
      case 'op':
        return this.op(req.op);
      case 'processes':
        return processList(this.world.userland);
      case 'pageTable':
        return guard(() => pageTable(this.world.userland, req));
      case 'rssSeries':
        return this.world.rss.series();
      case 'mirror':
        return guard(() => mirrorView(this.world.userland, req));
      case 'mirrorEvents':
        return this.world.mirror.recent();
      case 'loadDriver':
        return guard(() =>
          loadDriver(this.plugins, this.world.userland, req, () => {
            this.emitProcesses();
            this.changed();
          }),
        );
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

  /** Run one scenario step; bad input is refused with EINPUT, kernel errors are in the result. */
  private op(step: unknown): OpResult {
    const w = this.world;
    w.devmemFreed = false;
    const device = typeof step === 'object' && step !== null && (step as { op?: unknown }).op === 'device';
    let outcome;
    try {
      outcome = guard(() => w.userland.run(step));
    } finally {
      // A step that failed halfway may still have changed what the kernel holds.
      if (w.devmemFreed || device) this.changed();
      this.scheduleRss();
      this.emitMirror();
    }
    if (outcome.changed) this.emitProcesses();
    return outcome.result;
  }

  /** Push the mirror trace lines since the last push (coalesced by MirrorTrace). */
  private emitMirror(reset = false): void {
    const events = this.world.mirror.drain();
    if (events.length || reset) this.emit({ type: 'mirror', events, ...(reset && { reset }) });
  }

  private emitProcesses(): ProcessInfo[] {
    this.emitMirror();
    const processes = processList(this.world.userland);
    this.emit({ type: 'processes', processes, seq: ++this.processSeq });
    return processes;
  }

  /** Push the rss series, coalescing: at most one event per RSS_EVENT_INTERVAL_MS. */
  private scheduleRss(): void {
    if (this.rssState() === this.rssEmitted || this.rssTimer) return;
    const wait = this.rssLastEmit + RSS_EVENT_INTERVAL_MS - Date.now();
    if (wait <= 0) return this.emitRss();
    this.rssTimer = setTimeout(() => this.emitRss(), wait);
    this.rssTimer.unref?.();
  }

  private emitRss(): void {
    clearTimeout(this.rssTimer);
    this.rssTimer = undefined;
    this.rssLastEmit = Date.now();
    this.rssEmitted = this.rssState();
    this.emit({ type: 'rss', series: this.world.rss.series() });
  }

  private rssState(): string {
    return `${this.world.rss.version}@${this.world.clock.now}`;
  }

  private boot(machine: Machine): void {
    this.world?.detach();
    const k = machine.kernel;
    const clock = clockFor(machine);
    const rss = new RssRecorder(k, clock);
    const userland = new Userland(machine, clock, rss);
    const world: World = {
      machine,
      clock,
      rss,
      userland,
      mirror: new MirrorTrace(k, clock, (mm) => {
        for (const [name, t] of userland.procs) if (t.mm?.id === mm) return name;
        return '';
      }),
      devmemFreed: false,
      detach: () => {},
    };
    const unTrace = k.trace.subscribe(() => (world.devmemFreed = true), ['devmem_free']);
    const unLog = k.log.subscribe((line) => this.emit({ type: 'log', line: { ...line } }));
    world.detach = () => {
      unTrace();
      unLog();
      clock.detach();
      rss.detach();
      world.mirror.detach();
    };
    this.world = world;
    this.rssEmitted = '';
    // A new machine: front ends start the mirror trace over.
    this.emitMirror(true);
  }

  private changed(): ReturnType<typeof layoutSnapshot> {
    const layout = layoutSnapshot(this.machine);
    this.emit({ type: 'layout', layout });
    return layout;
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

// Workloads: the `run` op (docs/WORKLOADS.md). Actors — CPU threads and device kernels —
// touch pages of a mapping with a pattern and a read/write mix, interleaved on the virtual
// clock: the actor whose next access comes first goes next, ties by actor index, so the same
// steps and seed give the same trace.
//
// Time: each actor keeps its own simulated time. An access that needs no kernel work costs the
// actor cpuAccessNs or deviceAccessNs and nothing else, so actors run in parallel. Kernel and
// driver work (faults, fault batches, migrations) is serialised on the one virtual clock: it
// starts when both the actor and the clock are there, and the actor resumes when it ends.
//
// Device faults: a device kernel's access to a page missing from its device page table (or
// read-only there, for a write) joins the pending fault batch and the kernel goes on with its
// other accesses, as a GPU's warps do. When the batch holds `batch` distinct pages (256, as
// NVIDIA's UVM fetches them) or the kernel has nothing else to issue, the batch is serviced:
// the lab charges gpuFaultBatchNs, then hands the driver each run of neighbouring pages
// through its `fault` command (drivers/driver.ts, FAULT_COMMAND), whose policy decides what
// to migrate, evict or map in place, and replays the run's waiting accesses. The driver's
// copies are charged as they happen (a plugin's dma_copy tracepoint) or from the pages it
// reports moved (the built-in dmirror); migrations count from what it reports.
//
// Data integrity: every write stores a fresh stamp (store_stamp, or the device's own write
// into its memory); every read compares the page's stamp with the last one written. A
// difference counts as `lost`.
import type { WorkloadCounters } from '../api';
import type { task_struct } from '../kernel/include/sched';
import { load_stamp, store_stamp } from '../kernel/arch/x86/lib/usercopy';
import { evictedPages, FAULT_COMMAND, type DeviceDriver } from '../drivers/driver';
import type { TraceEvent } from '../kernel/trace/events';
import { InputError } from './input-error';
import { parseSize } from './numbers';
import { Prng } from './prng';
import type { Userland } from './ops';

export type AccessPattern = 'sequential' | 'strided' | 'random' | 'hotset';
export const PATTERNS: readonly AccessPattern[] = ['sequential', 'strided', 'random', 'hotset'];

/** One actor of a workload, validated (docs/WORKLOADS.md gives the file form). */
export interface ActorSpec {
  kind: 'cpu' | 'device';
  name: string;
  proc: string;
  /** The mapping it touches, and the byte range of it. */
  at: string;
  offset: number;
  length: number;
  /** A device kernel's device. */
  device?: string;
  pattern: AccessPattern;
  /** Pages between two accesses of a strided pattern. */
  stride: number;
  /** Hot set: the share of the range that is hot, and the chance an access goes there. */
  hotFraction: number;
  hotProbability: number;
  /** Share of accesses that are writes, 0 to 1. */
  writes: number;
  accesses: number;
  /** When the actor starts, ns after the run starts. */
  startNs: number;
}

export interface WorkloadSpec {
  name: string;
  /** Seeds the actors' random numbers; default: the scenario's seed. */
  seed?: number;
  /** Distinct pages per device fault batch; default: the cost model's faultBatchSize. */
  batch?: number;
  actors: ActorSpec[];
}

/** What a run tells the lab's plots, besides the tracepoints they read themselves. */
export interface WorkloadObserver {
  migrated(device: string, toDevice: boolean, pages: number, t: number): void;
  deviceFaults(device: string, pages: number, t: number): void;
  latency(device: boolean, ns: number): void;
  occupancy(device: string, pages: number, t: number): void;
}

export const MAX_ACTORS = 64;
export const MAX_ACCESSES = 1e9;
/** The largest mapping a workload runs on: it keeps five bytes of stamps per page of it. */
export const MAX_MAPPING_PAGES = 2 ** 28;

export const ACTOR_FIELDS = [
  'kind',
  'name',
  'proc',
  'at',
  'offset',
  'length',
  'device',
  'pattern',
  'stride',
  'hotFraction',
  'hotProbability',
  'writes',
  'accesses',
  'start',
  'comment',
];
export const WORKLOAD_FIELDS = ['name', 'seed', 'batch', 'actors', 'comment'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fraction(o: Record<string, unknown>, key: string, path: string, def: number): number {
  const v = o[key];
  if (v === undefined) return def;
  if (typeof v !== 'number' || !(v >= 0 && v <= 1))
    throw new InputError(`${path}.${key}`, `expected a number from 0 to 1, got ${JSON.stringify(v)}`);
  return v;
}

function name(o: Record<string, unknown>, key: string, path: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v.trim() === '')
    throw new InputError(`${path}.${key}`, `expected a name (a non-empty string), got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Validate a workload against the userland it will run on: processes, mappings and devices
 * must exist. Errors name the JSON path (`op.workload.actors[1].pattern`).
 */
export function parseWorkload(v: unknown, path: string, userland: Userland): WorkloadSpec {
  if (!isObject(v))
    throw new InputError(path, 'expected a workload object like {"actors": [{"kind": "cpu", ...}]}');
  for (const key of Object.keys(v))
    if (!WORKLOAD_FIELDS.includes(key))
      throw new InputError(
        `${path}.${key}`,
        `unknown field (expected one of: ${WORKLOAD_FIELDS.join(', ')})`,
      );
  const spec: WorkloadSpec = {
    name: v.name === undefined ? 'workload' : name(v, 'name', path),
    actors: [],
  };
  if (v.seed !== undefined) {
    if (typeof v.seed !== 'number' || !Number.isSafeInteger(v.seed) || v.seed < 0)
      throw new InputError(`${path}.seed`, `expected a non-negative integer, got ${JSON.stringify(v.seed)}`);
    spec.seed = v.seed;
  }
  if (v.batch !== undefined) {
    if (typeof v.batch !== 'number' || !Number.isInteger(v.batch) || v.batch < 1 || v.batch > 65536)
      throw new InputError(
        `${path}.batch`,
        `expected an integer from 1 to 65536, got ${JSON.stringify(v.batch)}`,
      );
    spec.batch = v.batch;
  }
  if (!Array.isArray(v.actors) || v.actors.length === 0)
    throw new InputError(`${path}.actors`, 'expected a non-empty array of actors');
  if (v.actors.length > MAX_ACTORS)
    throw new InputError(`${path}.actors`, `expected at most ${MAX_ACTORS} actors, got ${v.actors.length}`);
  spec.actors = v.actors.map((a, i) => parseActor(a, `${path}.actors[${i}]`, i, userland));
  return spec;
}

function parseActor(a: unknown, path: string, index: number, userland: Userland): ActorSpec {
  if (!isObject(a))
    throw new InputError(path, 'expected an actor like {"kind": "cpu", "proc": "p", "at": "buf"}');
  for (const key of Object.keys(a))
    if (!ACTOR_FIELDS.includes(key))
      throw new InputError(`${path}.${key}`, `unknown field (expected one of: ${ACTOR_FIELDS.join(', ')})`);
  if (a.kind !== 'cpu' && a.kind !== 'device')
    throw new InputError(`${path}.kind`, `expected "cpu" or "device", got ${JSON.stringify(a.kind)}`);
  const kind = a.kind;
  const proc = name(a, 'proc', path);
  if (!userland.procs.has(proc))
    throw new InputError(`${path}.proc`, `no process named "${proc}" (spawn it before the run)`);
  const at = name(a, 'at', path);
  const m = userland.mappings.get(at);
  if (!m) throw new InputError(`${path}.at`, `no mapping named "${at}" (mmap it before the run)`);
  const ps = userland.machine.kernel.c.PAGE_SIZE;
  if (m.length / ps > MAX_MAPPING_PAGES)
    throw new InputError(
      `${path}.at`,
      `"${at}" has ${m.length / ps} pages: a workload runs on mappings of at most ${MAX_MAPPING_PAGES} pages`,
    );
  const offset = a.offset === undefined ? 0 : parseSize(a.offset, `${path}.offset`);
  if (offset % ps) throw new InputError(`${path}.offset`, `expected a multiple of the page size (${ps})`);
  if (offset >= m.length)
    throw new InputError(
      `${path}.offset`,
      `expected less than ${m.length} (the mapping's size), got ${offset}`,
    );
  const length = a.length === undefined ? m.length - offset : parseSize(a.length, `${path}.length`);
  if (length < ps || offset + length > m.length)
    throw new InputError(
      `${path}.length`,
      `expected from one page to ${m.length - offset} bytes (the rest of the mapping), got ${length}`,
    );
  let device: string | undefined;
  if (kind === 'device') {
    device = name(a, 'device', path);
    const d = userland.machine.devices.get(device);
    if (!d || 'error' in d || !d.driver?.commands.includes(FAULT_COMMAND))
      throw new InputError(
        `${path}.device`,
        `expected a device whose driver services device faults (a "${FAULT_COMMAND}" command, as dmirror's), got ${JSON.stringify(device)} (devices: ${[...userland.machine.devices.keys()].join(', ') || 'none'})`,
      );
    if (!userland.isOpen(proc, device))
      throw new InputError(
        `${path}.device`,
        `"${device}" is not open in "${proc}" (open it first: {"op": "open", "proc": "${proc}", "device": "${device}"})`,
      );
  } else if (a.device !== undefined)
    throw new InputError(`${path}.device`, 'only a device kernel has a device');
  const pattern = (a.pattern ?? 'sequential') as AccessPattern;
  if (!PATTERNS.includes(pattern))
    throw new InputError(
      `${path}.pattern`,
      `expected one of ${PATTERNS.map((p) => `"${p}"`).join(', ')}, got ${JSON.stringify(a.pattern)}`,
    );
  let stride = 1;
  if (a.stride !== undefined) {
    if (pattern !== 'strided')
      throw new InputError(`${path}.stride`, 'only a "strided" pattern has a stride');
    const bytes = parseSize(a.stride, `${path}.stride`);
    if (bytes < ps || bytes % ps)
      throw new InputError(`${path}.stride`, `expected a multiple of the page size (${ps}), got ${bytes}`);
    stride = bytes / ps;
  } else if (pattern === 'strided') stride = 16;
  for (const key of ['hotFraction', 'hotProbability'])
    if (a[key] !== undefined && pattern !== 'hotset')
      throw new InputError(`${path}.${key}`, 'only a "hotset" pattern has a hot set');
  const pages = length / ps;
  let accesses = Math.ceil(pages);
  if (a.accesses !== undefined) {
    const n = a.accesses;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_ACCESSES)
      throw new InputError(
        `${path}.accesses`,
        `expected an integer from 0 to ${MAX_ACCESSES}, got ${JSON.stringify(n)}`,
      );
    accesses = n;
  }
  let startNs = 0;
  if (a.start !== undefined) {
    if (typeof a.start !== 'number' || !Number.isFinite(a.start) || a.start < 0)
      throw new InputError(
        `${path}.start`,
        `expected a time in ns (a non-negative number), got ${JSON.stringify(a.start)}`,
      );
    startNs = a.start;
  }
  return {
    kind,
    name: a.name === undefined ? `${kind === 'cpu' ? 'cpu' : device}:${index}` : name(a, 'name', path),
    proc,
    at,
    offset,
    length: Math.floor(length / ps) * ps,
    ...(device !== undefined && { device }),
    pattern,
    stride,
    hotFraction: fraction(a, 'hotFraction', path, 0.1),
    hotProbability: fraction(a, 'hotProbability', path, 0.9),
    writes: fraction(a, 'writes', path, 0.5),
    accesses,
    startNs,
  };
}

export function zeroCounters(): WorkloadCounters {
  return {
    accesses: 0,
    cpuFaults: 0,
    deviceFaults: 0,
    faultRounds: 0,
    migratedToDevice: 0,
    migratedToSystem: 0,
    evictions: 0,
    lost: 0,
    failed: 0,
    ns: 0,
  };
}

export function addCounters(to: WorkloadCounters, from: WorkloadCounters): void {
  for (const key of Object.keys(to) as (keyof WorkloadCounters)[]) to[key] += from[key];
}

/** The stamp last written to each page of one process's mapping, once the run has seen it. */
interface StampBook {
  expected: Uint32Array;
  known: Uint8Array;
}

/** A device a device kernel runs on, and its driver. */
interface DeviceState {
  name: string;
  driver: DeviceDriver;
  /** Its memory in pages: the longest run one fault command gets. */
  pages: number;
}

interface Actor {
  spec: ActorSpec;
  index: number;
  task: task_struct;
  /** First address of the range and its pages. */
  base: number;
  pages: number;
  /** Pages of the range before the mapping's start (the StampBook is per mapping). */
  bookOffset: number;
  book: StampBook;
  rng: Prng;
  hot: number;
  t: number;
  issued: number;
  /** Stopped early by a signal. */
  stopped: boolean;
  dev: DeviceState | null;
  /** A device kernel's waiting accesses: page index, write, time issued. */
  pendPage: number[];
  pendWrite: boolean[];
  pendT: number[];
  /** Distinct pages in the pending batch. */
  pendSet: Set<number>;
}

/** A workload being run: advance() runs it on; the lab's Run view calls it slice by slice. */
export class WorkloadRun {
  readonly counters = zeroCounters();
  /** Scheduler steps taken (accesses issued and batches serviced): the run's position. */
  actions = 0;
  readonly accessesPlanned: number;
  private readonly actors: Actor[] = [];
  private readonly devices = new Map<string, DeviceState>();
  private readonly batch: number;
  private readonly startT: number;
  private nextStamp = 1;
  private finished = false;

  constructor(
    private readonly userland: Userland,
    readonly spec: WorkloadSpec,
    seed: number,
    private readonly observer: WorkloadObserver | null = null,
  ) {
    const k = userland.machine.kernel;
    const ps = k.c.PAGE_SIZE;
    const clock = userland.clock;
    this.batch = spec.batch ?? clock.costs.faultBatchSize;
    this.startT = clock.now;
    const books = new Map<string, StampBook>();
    spec.actors.forEach((a, index) => {
      const task = userland.procs.get(a.proc)!;
      const m = userland.mappings.get(a.at)!;
      const key = `${a.proc}\0${a.at}`;
      let book = books.get(key);
      if (!book) {
        const n = Math.ceil(m.length / ps);
        book = { expected: new Uint32Array(n), known: new Uint8Array(n) };
        books.set(key, book);
      }
      const pages = a.length / ps;
      let dev: DeviceState | null = null;
      if (a.device) {
        dev = this.devices.get(a.device) ?? null;
        if (!dev) {
          const driver = (userland.machine.devices.get(a.device) as { driver: DeviceDriver }).driver;
          dev = { name: a.device, driver, pages: Math.max(1, driver.memory().pages) };
          this.devices.set(a.device, dev);
        }
      }
      this.actors.push({
        spec: a,
        index,
        task,
        base: m.addr + a.offset,
        pages,
        bookOffset: a.offset / ps,
        book,
        rng: new Prng(spec.seed ?? seed, index),
        hot: Math.max(1, Math.min(pages, Math.round(a.hotFraction * pages))),
        t: this.startT + a.startNs,
        issued: 0,
        stopped: false,
        dev,
        pendPage: [],
        pendWrite: [],
        pendT: [],
        pendSet: new Set(),
      });
    });
    this.accessesPlanned = spec.actors.reduce((n, a) => n + a.accesses, 0);
    for (const d of this.devices.values()) this.reportOccupancy(d);
  }

  get done(): boolean {
    return this.finished;
  }

  /** Accesses issued so far. */
  get accessesDone(): number {
    return this.counters.accesses;
  }

  /** Simulated time of the next action (Infinity when done). */
  nextTime(): number {
    const a = this.pick();
    return a ? Math.max(a.t, this.userland.clock.now) : Infinity;
  }

  /**
   * Run on for at most `maxActions` scheduler steps, stopping before an action that would
   * start after simulated time `until`, or once `stop()` says so. Returns true when done.
   */
  advance(maxActions = Infinity, until = Infinity, stop?: () => boolean): boolean {
    if (this.finished) return true;
    const k = this.userland.machine.kernel;
    const unsubscribe = k.trace.subscribe((e) => this.onTrace(e), ['page_fault', 'devmem_fault']);
    try {
      for (let n = 0; n < maxActions; n++) {
        const a = this.pick();
        if (!a) {
          this.finish();
          break;
        }
        if (Math.max(a.t, this.userland.clock.now) > until) break;
        if ((n & 255) === 255 && stop?.()) break;
        this.act(a);
        this.actions++;
      }
    } finally {
      unsubscribe();
    }
    return this.finished;
  }

  private onTrace(e: TraceEvent): void {
    if (e.name === 'page_fault') this.counters.cpuFaults++;
    else if (e.name === 'devmem_fault' && e.result === 0) this.counters.migratedToSystem++;
  }

  private finish(): void {
    const clock = this.userland.clock;
    for (const a of this.actors) if (a.t > clock.now) clock.now = a.t;
    this.counters.ns = clock.now - this.startT;
    this.finished = true;
  }

  /** The actor to go next: the earliest, ties by index; null when all are done. */
  private pick(): Actor | null {
    let best: Actor | null = null;
    for (const a of this.actors) {
      if (a.stopped || (a.issued >= a.spec.accesses && a.pendPage.length === 0)) continue;
      if (!best || a.t < best.t) best = a;
    }
    return best;
  }

  private act(a: Actor): void {
    const clock = this.userland.clock;
    if (clock.now < a.t) clock.now = a.t;
    if (a.dev && a.pendPage.length && (a.issued >= a.spec.accesses || a.pendSet.size >= this.batch))
      return this.serviceBatch(a, a.dev);
    const page = this.nextPage(a);
    const write = a.rng.float() < a.spec.writes;
    a.issued++;
    this.counters.accesses++;
    if (a.dev) this.deviceAccess(a, a.dev, page, write);
    else this.cpuAccess(a, page, write);
  }

  private nextPage(a: Actor): number {
    const n = a.issued;
    const pages = a.pages;
    switch (a.spec.pattern) {
      case 'sequential':
        return n % pages;
      case 'strided': {
        const x = n * a.spec.stride;
        return (x + Math.floor(x / pages)) % pages;
      }
      case 'random':
        return a.rng.below(pages);
      case 'hotset':
        if (a.hot >= pages || a.rng.float() < a.spec.hotProbability) return a.rng.below(a.hot);
        return a.hot + a.rng.below(pages - a.hot);
    }
  }

  // ---- CPU threads -------------------------------------------------------------------

  private cpuAccess(a: Actor, page: number, write: boolean): void {
    const k = this.userland.machine.kernel;
    const clock = this.userland.clock;
    const addr = a.base + page * k.c.PAGE_SIZE;
    const issued = a.t;
    const before = clock.now;
    const faults = this.counters.cpuFaults;
    let r: number | string;
    if (write) {
      const stamp = this.stamp();
      r = store_stamp(k, a.task, addr, stamp);
      if (typeof r === 'number') this.wrote(a, page, stamp);
    } else {
      r = load_stamp(k, a.task, addr);
      if (typeof r === 'number') this.read(a, page, r);
    }
    if (typeof r === 'string') {
      // A thread that takes a fatal signal stops, as it would die.
      this.counters.failed++;
      a.stopped = true;
    }
    if (clock.now > before) {
      a.t = clock.now + clock.costs.cpuAccessNs;
      if (this.counters.cpuFaults > faults) this.observer?.latency(false, clock.now - issued);
    } else a.t += clock.costs.cpuAccessNs;
  }

  // ---- device kernels ----------------------------------------------------------------

  private deviceAccess(a: Actor, dev: DeviceState, page: number, write: boolean): void {
    const clock = this.userland.clock;
    const issued = a.t;
    a.t += clock.costs.deviceAccessNs;
    if (!a.pendSet.has(page) && this.deviceTouch(a, dev, page, write)) return;
    // Not in the device's page table (or waiting already): the access waits for the batch.
    if (!a.pendSet.has(page)) a.pendSet.add(page);
    a.pendPage.push(page);
    a.pendWrite.push(write);
    a.pendT.push(issued);
  }

  /** The device's access through its page table; false when the page is not there to use. */
  private deviceTouch(a: Actor, dev: DeviceState, page: number, write: boolean): boolean {
    const k = this.userland.machine.kernel;
    const entry = dev.driver.pageTable(a.task.mm!)?.get(a.base / k.c.PAGE_SIZE + page);
    if (entry === undefined || (write && entry % 2 === 0)) return false;
    // Device memory, or system memory the device reaches over its link.
    const mapped = Math.floor(entry / 2);
    if (write) {
      const stamp = this.stamp();
      k.mem.stamp[mapped] = stamp;
      this.wrote(a, page, stamp);
    } else this.read(a, page, k.mem.stamp[mapped]!);
    return true;
  }

  /**
   * Service a device kernel's fault batch: its pages in address order, each run of neighbouring
   * pages (at most the device's size) one `fault` command to the driver, then the run's waiting
   * accesses replay; one still missing fails.
   */
  private serviceBatch(a: Actor, dev: DeviceState): void {
    const clock = this.userland.clock;
    const ps = this.userland.machine.kernel.c.PAGE_SIZE;
    this.counters.faultRounds++;
    this.counters.deviceFaults += a.pendSet.size;
    this.observer?.deviceFaults(dev.name, a.pendSet.size, clock.now);
    clock.charge(clock.costs.gpuFaultBatchNs);
    const room = dev.pages;
    // The waiting accesses by page, in the order they were issued within a page.
    const order = a.pendPage.map((_, i) => i).sort((x, y) => a.pendPage[x]! - a.pendPage[y]! || x - y);
    for (let i = 0; i < order.length;) {
      const first = a.pendPage[order[i]!]!;
      let last = first;
      let write = false;
      let j = i;
      for (; j < order.length; j++) {
        const p = a.pendPage[order[j]!]!;
        if (p !== last && (p !== last + 1 || p - first >= room)) break;
        last = p;
        write ||= a.pendWrite[order[j]!]!;
      }
      const r = dev.driver.command(a.task, FAULT_COMMAND, {
        addr: a.base + first * ps,
        pages: last - first + 1,
        buffer: null,
        write,
      });
      // Copies a plugin's copy engine did not already charge (the built-in dmirror's).
      clock.deviceCopy(r.moved * ps, dev.name);
      const evicted = evictedPages(r);
      this.counters.migratedToDevice += r.cpages;
      this.counters.migratedToSystem += evicted;
      this.counters.evictions += evicted;
      this.observer?.migrated(dev.name, true, r.cpages, clock.now);
      this.observer?.migrated(dev.name, false, evicted, clock.now);
      const done = clock.now;
      for (; i < j; i++) {
        const n = order[i]!;
        if (this.deviceTouch(a, dev, a.pendPage[n]!, a.pendWrite[n]!))
          this.observer?.latency(true, done - a.pendT[n]!);
        else this.counters.failed++;
      }
    }
    this.reportOccupancy(dev);
    a.pendPage.length = 0;
    a.pendWrite.length = 0;
    a.pendT.length = 0;
    a.pendSet.clear();
    a.t = clock.now;
  }

  private reportOccupancy(dev: DeviceState): void {
    const m = dev.driver.memory();
    this.observer?.occupancy(dev.name, m.pages - m.free, this.userland.clock.now);
  }

  // ---- stamps ------------------------------------------------------------------------

  private stamp(): number {
    const s = this.nextStamp;
    this.nextStamp = this.nextStamp >= 0xffffffff ? 1 : this.nextStamp + 1;
    return s;
  }

  private wrote(a: Actor, page: number, stamp: number): void {
    const i = a.bookOffset + page;
    a.book.expected[i] = stamp;
    a.book.known[i] = 1;
  }

  private read(a: Actor, page: number, stamp: number): void {
    const i = a.bookOffset + page;
    if (!a.book.known[i]) {
      // The first the run sees of a page it has not written: what earlier steps left.
      a.book.expected[i] = stamp;
      a.book.known[i] = 1;
    } else if (a.book.expected[i] !== stamp) this.counters.lost++;
  }
}

const observers = new WeakMap<Userland, WorkloadObserver>();

/** Report every workload run on this userland to `observer` (the session's plots). */
export function observeWorkloads(userland: Userland, observer: WorkloadObserver): void {
  observers.set(userland, observer);
}

/** The observer the userland's runs report to, if any. */
export function workloadObserver(userland: Userland): WorkloadObserver | null {
  return observers.get(userland) ?? null;
}

/** The `run` op: validate the workload and run it to the end. */
export function runWorkload(
  userland: Userland,
  workload: unknown,
  path: string,
  seed: number,
): WorkloadCounters {
  const spec = parseWorkload(workload, path, userland);
  const run = new WorkloadRun(userland, spec, seed, workloadObserver(userland));
  run.advance();
  return { ...run.counters };
}

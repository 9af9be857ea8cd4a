// Scenario steps (../shared/design/SCENARIOS.md) run against the kernel: the lab's user
// space. Processes, mappings ("at"), files and host buffers have the names the scenario
// gives them. Each step is validated whole before it runs, so a bad step never runs half;
// what the kernel answers comes back as result fields (`ret` as "-EINVAL", `signal`).
import type { OpResult, RssCounters } from '../api';
import type { Kernel } from '../kernel/kernel';
import { errname, IS_ERR } from '../kernel/include/errno';
import {
  MM_ANONPAGES,
  MM_FILEPAGES,
  MM_SHMEMPAGES,
  MM_SWAPENTS,
  type mm_struct,
} from '../kernel/include/mm_types';
import type { task_struct } from '../kernel/include/sched';
import type { file } from '../kernel/fs/file';
import { do_fork, spawn_task } from '../kernel/kernel/fork';
import { do_exit } from '../kernel/kernel/exit';
import {
  do_mmap,
  do_munmap,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  vma_lookup,
} from '../kernel/mm/mmap';
import { find_or_create_page, shmem_file_setup } from '../kernel/mm/filemap';
import { do_mprotect } from '../kernel/mm/mprotect';
import { do_mremap, MREMAP_FIXED, MREMAP_MAYMOVE } from '../kernel/mm/mremap';
import { do_madvise, MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE } from '../kernel/mm/madvise';
import { copy_from_user, copy_to_user } from '../kernel/arch/x86/lib/usercopy';
import { show_smaps } from '../kernel/fs/proc/task_mmu';
import { dax_file_create, dax_fs } from '../kernel/fs/dax';
import type { BoundDevice } from '../drivers/builtin';
import type { DeviceCommandResult, DeviceDriver } from '../drivers/driver';
import type { VirtualClock } from './clock';
import type { RssRecorder } from './rss';
import type { Machine } from './machine';
import { InputError } from './input-error';
import { fillBytes, int32Head, parseFill, type Fill } from './fill';
import { hex, parseSize } from './numbers';
import { runWorkload } from './workload';

/** A mapping made by `mmap`: where the scenario put it, for `at` to find in any process. */
export interface Mapping {
  name: string;
  addr: number;
  length: number;
  /** The process that mapped it (a forked child finds it at the same address). */
  proc: string;
}

/** What a step produced: the result the contract carries, and the bytes a load or check read. */
export interface OpOutcome {
  result: OpResult;
  data?: Uint8Array;
  /** The step may have changed a process (its vmas, page tables, rss or signals). */
  changed: boolean;
}

/**
 * The most bytes one store, load or check moves, or one device command covers: the lab keeps
 * real bytes, or per-page state, for them.
 */
export const MAX_TRANSFER = 2 ** 30;

const PROTS: Record<string, number> = {
  none: PROT_NONE,
  r: PROT_READ,
  rw: PROT_READ | PROT_WRITE,
};
const MAP_FLAGS: Record<string, number> = {
  private: MAP_PRIVATE,
  shared: MAP_SHARED,
  anonymous: MAP_ANONYMOUS,
  hugetlb: MAP_HUGETLB,
  fixed: MAP_FIXED,
};
const ADVICE: Record<string, number> = {
  hugepage: MADV_HUGEPAGE,
  nohugepage: MADV_NOHUGEPAGE,
  dontneed: MADV_DONTNEED,
  free: MADV_FREE,
};
/** Fields any step may carry besides its own. */
const COMMON = ['op', 'expect', 'comment'];

/** How a step field is read (the StepReader method that checks it). */
type FieldKind = 'name' | 'size' | 'count' | 'bool' | 'fill' | 'prot' | 'flags' | 'advice' | 'workload';

/**
 * Every op and its fields, in the order errors list them; a name ending in "?" is optional.
 * The one list of what a step may carry: steps are checked against it before they run, and
 * the published JSON Schema (docs/schema/scenario.schema.json) is tested against it.
 */
export const OP_FIELDS = {
  spawn: { proc: 'name' },
  fork: { proc: 'name', child: 'name' },
  exit: { proc: 'name' },
  open: { proc: 'name', device: 'name' },
  close: { proc: 'name', device: 'name' },
  file: { name: 'name', size: 'size', 'fill?': 'fill', 'dax?': 'bool' },
  mmap: {
    proc: 'name',
    name: 'name',
    length: 'size',
    prot: 'prot',
    flags: 'flags',
    'file?': 'name',
    'align?': 'size',
    'addr?': 'size',
    'offset?': 'size',
  },
  munmap: { proc: 'name', at: 'name', 'offset?': 'size', 'length?': 'size' },
  mprotect: { proc: 'name', at: 'name', 'offset?': 'size', 'length?': 'size', prot: 'prot' },
  madvise: { proc: 'name', at: 'name', 'offset?': 'size', 'length?': 'size', advice: 'advice' },
  mremap: {
    proc: 'name',
    at: 'name',
    'offset?': 'size',
    'length?': 'size',
    newLength: 'size',
    'newAddr?': 'name',
    'newOffset?': 'size',
  },
  store: { proc: 'name', at: 'name', 'offset?': 'size', 'length?': 'size', 'fill?': 'fill' },
  load: { proc: 'name', at: 'name', 'offset?': 'size', 'length?': 'size' },
  buffer: { name: 'name', size: 'size', 'fill?': 'fill' },
  // `at` is required by every command but "release" (checkStep).
  device: {
    device: 'name',
    proc: 'name',
    cmd: 'name',
    'at?': 'name',
    'offset?': 'size',
    'pages?': 'count',
    'buffer?': 'name',
  },
  check: { buffer: 'name', 'offset?': 'size', 'length?': 'size' },
  stat: { proc: 'name', 'at?': 'name' },
  run: { workload: 'workload' },
} as const satisfies Record<string, Record<string, FieldKind>>;

export type OpName = keyof typeof OP_FIELDS;

function isOp(op: unknown): op is OpName {
  return typeof op === 'string' && Object.hasOwn(OP_FIELDS, op);
}

/**
 * The path errors give a step: `steps[3] (mmap)` names the op, when it is one; an
 * unknown or missing op keeps the bare path, since its `op` field is what is wrong.
 */
export function stepPath(base: string, step: unknown): string {
  return isObject(step) && isOp(step.op) ? `${base} (${step.op})` : base;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads one step's fields, naming `path.field` in every error. */
class StepReader {
  constructor(
    readonly step: Record<string, unknown>,
    readonly path: string,
  ) {}

  at(key: string): string {
    return `${this.path}.${key}`;
  }

  has(key: string): boolean {
    return this.step[key] !== undefined;
  }

  name(key: string): string {
    const v = this.step[key];
    if (typeof v !== 'string' || v.trim() === '')
      throw new InputError(this.at(key), `expected a name (a non-empty string), got ${JSON.stringify(v)}`);
    return v;
  }

  size(key: string): number {
    if (!this.has(key))
      throw new InputError(this.at(key), 'expected a size like 4096, "0x1000" or "256M", got nothing');
    return parseSize(this.step[key], this.at(key));
  }

  optSize(key: string): number | undefined {
    return this.has(key) ? parseSize(this.step[key], this.at(key)) : undefined;
  }

  count(key: string): number | undefined {
    if (!this.has(key)) return undefined;
    const v = this.step[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      throw new InputError(
        this.at(key),
        `expected a count (a non-negative integer), got ${JSON.stringify(v)}`,
      );
    return v;
  }

  bool(key: string): boolean {
    const v = this.step[key];
    if (v === undefined) return false;
    if (typeof v !== 'boolean')
      throw new InputError(this.at(key), `expected true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  fill(key: string): Fill | undefined {
    return this.has(key) ? parseFill(this.step[key], this.at(key)) : undefined;
  }

  oneOf<T>(key: string, table: Record<string, T>): T {
    const v = this.step[key];
    if (typeof v !== 'string' || !Object.hasOwn(table, v))
      throw new InputError(
        this.at(key),
        `expected one of ${Object.keys(table)
          .map((s) => `"${s}"`)
          .join(', ')}, got ${JSON.stringify(v)}`,
      );
    return table[v]!;
  }

  /** mmap's flags: a list, or one string like "private|anonymous". */
  flags(key: string): number {
    const v = this.step[key];
    const list = typeof v === 'string' ? v.split(/[|,\s]+/).filter(Boolean) : v;
    if (!Array.isArray(list) || list.length === 0)
      throw new InputError(
        this.at(key),
        `expected a list of flags from ${Object.keys(MAP_FLAGS).join(', ')}, got ${JSON.stringify(v)}`,
      );
    let flags = 0;
    list.forEach((f, i) => {
      if (typeof f !== 'string' || !Object.hasOwn(MAP_FLAGS, f))
        throw new InputError(
          `${this.at(key)}[${i}]`,
          `expected one of ${Object.keys(MAP_FLAGS).join(', ')}, got ${JSON.stringify(f)}`,
        );
      flags |= MAP_FLAGS[f]!;
    });
    return flags;
  }

  /** A field of the kind OP_FIELDS gives it, read for its errors only. */
  check(key: string, kind: FieldKind): void {
    switch (kind) {
      case 'name':
        this.name(key);
        break;
      case 'size':
        this.size(key);
        break;
      case 'count':
        this.count(key);
        break;
      case 'bool':
        this.bool(key);
        break;
      case 'fill':
        this.fill(key);
        break;
      case 'prot':
        this.oneOf(key, PROTS);
        break;
      case 'advice':
        this.oneOf(key, ADVICE);
        break;
      case 'flags':
        this.flags(key);
        break;
      case 'workload':
        // Its actors name processes and mappings: lab/workload.ts checks it whole when it runs.
        if (!isObject(this.step[key]))
          throw new InputError(
            this.at(key),
            `expected a workload object like {"actors": [{"kind": "cpu", ...}]}, got ${JSON.stringify(this.step[key])}`,
          );
    }
  }
}

/**
 * Check what can be checked of a step without running it: a known op, no unknown field,
 * every field of the right kind. What names refer to (processes, mappings, devices) is
 * checked when the step runs. Bad input throws InputError naming `path.field`.
 */
export function checkStep(step: unknown, path: string): OpName {
  if (!isObject(step))
    throw new InputError(
      path,
      `expected a step object like {"op": "spawn", "proc": "p"}, got ${JSON.stringify(step)}`,
    );
  const op = step.op;
  if (typeof op !== 'string')
    throw new InputError(`${path}.op`, `expected an op name, got ${JSON.stringify(op)}`);
  if (!isOp(op))
    throw new InputError(
      `${path}.op`,
      `unknown op ${JSON.stringify(op)} (expected one of: ${Object.keys(OP_FIELDS).join(', ')})`,
    );
  const r = new StepReader(step, path);
  const fields: Record<string, FieldKind> = OP_FIELDS[op];
  const names = Object.keys(fields).map((f) => f.replace(/\?$/, ''));
  for (const key of Object.keys(step))
    if (!COMMON.includes(key) && !names.includes(key))
      throw new InputError(r.at(key), `unknown field for "${op}" (expected one of: ${names.join(', ')})`);
  for (const [field, kind] of Object.entries(fields)) {
    const key = field.replace(/\?$/, '');
    if (key === field || r.has(key)) r.check(key, kind);
  }
  switch (op) {
    case 'mmap':
      if (r.flags('flags') & MAP_FIXED && !r.has('addr'))
        throw new InputError(r.at('addr'), 'expected an address: flags has "fixed"');
      break;
    case 'mremap':
      if (r.has('newOffset') && !r.has('newAddr'))
        throw new InputError(r.at('newOffset'), 'expected only with newAddr');
      break;
    case 'device':
      // Every command but "release" works on a range of a mapping.
      if (step.cmd !== 'release') r.check('at', 'name');
      if (step.cmd === 'write' && !r.has('buffer'))
        throw new InputError(r.at('buffer'), 'expected a buffer: "write" writes its bytes into the pages');
  }
  return op;
}

/** The lab's user space on one machine: named processes, mappings, files and buffers. */
export class Userland {
  readonly procs = new Map<string, task_struct>();
  readonly mappings = new Map<string, Mapping>();
  readonly files = new Map<string, file>();
  readonly buffers = new Map<string, Uint8Array>();
  /** The scenario's seed: `run` workloads draw their random numbers from it. */
  seed = 0;
  /** Devices each process has open, as "proc\0device". */
  private readonly opened = new Set<string>();
  /** The DAX filesystem of each pmem device, made on first use. */
  private readonly daxFs = new Map<string, dax_fs>();
  private readonly k: Kernel;

  constructor(
    readonly machine: Machine,
    readonly clock: VirtualClock,
    readonly rss: RssRecorder,
  ) {
    this.k = machine.kernel;
  }

  /** Validate and run one step. Bad input throws InputError naming `path.field`. */
  run(step: unknown, path = 'op'): OpOutcome {
    const op = checkStep(step, path);
    const outcome = this.dispatch(op, new StepReader(step as Record<string, unknown>, path));
    outcome.result.t = this.clock.now;
    return outcome;
  }

  /** Whether the process named `proc` has the device named `device` open. */
  isOpen(proc: string, device: string): boolean {
    return this.opened.has(`${proc}\0${device}`);
  }

  /** The name of a process, by task. */
  nameOf(task: task_struct): string | undefined {
    for (const [name, t] of this.procs) if (t === task) return name;
    return undefined;
  }

  private dispatch(op: OpName, r: StepReader): OpOutcome {
    switch (op) {
      case 'spawn':
        return this.spawn(r);
      case 'fork':
        return this.fork(r);
      case 'exit':
        return this.exit(r);
      case 'file':
        return this.file(r);
      case 'mmap':
        return this.mmap(r);
      case 'munmap':
        return this.munmap(r);
      case 'mprotect':
        return this.mprotect(r);
      case 'madvise':
        return this.madvise(r);
      case 'mremap':
        return this.mremap(r);
      case 'device':
        return this.device(r);
      case 'open':
        return this.open(r, true);
      case 'close':
        return this.open(r, false);
      case 'store':
        return this.store(r);
      case 'load':
        return this.load(r);
      case 'buffer':
        return this.buffer(r);
      case 'check':
        return this.check(r);
      case 'stat':
        return this.stat(r);
      case 'run':
        return this.runOp(r);
    }
  }

  private result(op: string, fields: Omit<OpResult, 'op' | 't'> = {}): OpResult {
    return { op, ...fields, t: this.clock.now };
  }

  // ---- names -------------------------------------------------------------------------

  private proc(r: StepReader, key = 'proc'): task_struct {
    const name = r.name(key);
    const task = this.procs.get(name);
    if (!task) {
      const known = [...this.procs.keys()];
      throw new InputError(
        r.at(key),
        `no process named "${name}" (${known.length ? `known: ${known.join(', ')}` : 'spawn one first'})`,
      );
    }
    return task;
  }

  private newName(r: StepReader, key: string, taken: Map<string, unknown>, what: string): string {
    const name = r.name(key);
    if (taken.has(name)) throw new InputError(r.at(key), `a ${what} named "${name}" already exists`);
    return name;
  }

  private mapping(r: StepReader, key = 'at'): Mapping {
    const name = r.name(key);
    const m = this.mappings.get(name);
    if (!m) {
      const known = [...this.mappings.keys()];
      throw new InputError(
        r.at(key),
        `no mapping named "${name}" (${known.length ? `known: ${known.join(', ')}` : 'make one with mmap first'})`,
      );
    }
    return m;
  }

  /** [offset, offset + length) of a mapping or buffer of `size` bytes; length defaults to the rest. */
  private span(r: StepReader, size: number, what: string): { offset: number; length: number } {
    const offset = r.optSize('offset') ?? 0;
    if (offset > size)
      throw new InputError(r.at('offset'), `expected at most ${size} (the ${what}'s size), got ${offset}`);
    const length = r.optSize('length') ?? size - offset;
    return { offset, length };
  }

  private transfer(r: StepReader, length: number): void {
    if (length > MAX_TRANSFER)
      throw new InputError(r.at('length'), `expected at most 1G per store, load or check, got ${length}`);
  }

  // ---- processes ---------------------------------------------------------------------

  private spawn(r: StepReader): OpOutcome {
    const name = this.newName(r, 'proc', this.procs, 'process');
    const task = spawn_task(this.k, name);
    this.clock.syscall();
    this.procs.set(name, task);
    this.rss.register(task.mm!.id, name, task.pid);
    return { result: this.result('spawn', { pid: task.pid }), changed: true };
  }

  private fork(r: StepReader): OpOutcome {
    const parent = this.proc(r);
    const name = this.newName(r, 'child', this.procs, 'process');
    this.clock.syscall();
    const child = do_fork(this.k, parent, name);
    if (IS_ERR(child)) return { result: this.result('fork', { ret: errname(child) }), changed: true };
    this.procs.set(name, child);
    this.rss.register(child.mm!.id, name, child.pid);
    return { result: this.result('fork', { ret: 0, pid: child.pid }), changed: true };
  }

  private exit(r: StepReader): OpOutcome {
    const task = this.proc(r);
    const mmId = task.mm?.id;
    this.clock.syscall();
    do_exit(this.k, task);
    const name = r.name('proc');
    this.procs.delete(name);
    for (const key of [...this.opened]) if (key.startsWith(`${name}\0`)) this.opened.delete(key);
    if (mmId !== undefined) this.rss.exited(mmId);
    return { result: this.result('exit'), changed: true };
  }

  // ---- files and mappings ------------------------------------------------------------

  private file(r: StepReader): OpOutcome {
    const name = this.newName(r, 'name', this.files, 'file');
    const size = r.size('size');
    const fill = r.fill('fill');
    const dax = r.bool('dax');
    this.transfer(r, fill ? size : 0);
    if (dax) return this.daxFile(r, name, size, fill);
    const f = shmem_file_setup(this.k, name, size);
    if (fill) {
      const ps = this.k.c.PAGE_SIZE;
      const bytes = fillBytes(fill, 0, size);
      for (let off = 0; off < size; off += ps) {
        const page = find_or_create_page(this.k, f.f_mapping, off / ps);
        if (page < 0) return { result: this.result('file', { ret: errname(-12) }), changed: false };
        this.k.contents.kmap(page, ps).set(bytes.subarray(off, Math.min(size, off + ps)));
        this.k.mem.stamp[page] = (this.k.mem.stamp[page]! + 1) >>> 0;
      }
    }
    this.files.set(name, f);
    return { result: this.result('file', { ret: 0 }), changed: false };
  }

  /** A file on the DAX filesystem of the machine's (first) fsdax pmem device. */
  private daxFile(r: StepReader, name: string, size: number, fill: Fill | undefined): OpOutcome {
    const bound = [...this.machine.devices.values()].find(
      (d): d is BoundDevice => !('error' in d) && !!d.pmem?.pgmap,
    );
    if (!bound)
      throw new InputError(r.at('dax'), 'expected a pmem device in fsdax mode on this machine, found none');
    const ps = this.k.c.PAGE_SIZE;
    let fs = this.daxFs.get(bound.config.name);
    if (!fs) {
      const res = bound.pmem!.pgmap!.res;
      fs = new dax_fs(bound.config.name, Math.ceil(res.start / ps), Math.floor((res.end + 1) / ps));
      this.daxFs.set(bound.config.name, fs);
    }
    const f = dax_file_create(this.k, fs, name, size);
    if (IS_ERR(f)) return { result: this.result('file', { ret: errname(f) }), changed: false };
    if (fill) {
      const bytes = fillBytes(fill, 0, size);
      for (let off = 0; off < size; off += ps) {
        const page = this.k.mem.pfn_to_page(f.f_inode.dax_pfn + off / ps);
        this.k.contents.kmap(page, ps).set(bytes.subarray(off, Math.min(size, off + ps)));
        this.k.mem.stamp[page] = (this.k.mem.stamp[page]! + 1) >>> 0;
      }
    }
    this.files.set(name, f);
    return { result: this.result('file', { ret: 0 }), changed: false };
  }

  private mmap(r: StepReader): OpOutcome {
    const task = this.proc(r);
    const name = r.name('name');
    const length = r.size('length');
    const prot = r.oneOf('prot', PROTS);
    const flags = r.flags('flags');
    let f: file | null = null;
    if (r.has('file')) {
      const fname = r.name('file');
      f = this.files.get(fname) ?? null;
      if (!f)
        throw new InputError(r.at('file'), `no file named "${fname}" (make one with the file op first)`);
    }
    const align = r.optSize('align');
    if (align !== undefined && (align < this.k.c.PAGE_SIZE || !Number.isInteger(Math.log2(align))))
      throw new InputError(r.at('align'), `expected a power of two of at least one page, got ${align}`);
    const addr = r.optSize('addr');
    const offset = r.optSize('offset');
    this.clock.syscall();
    const ret = do_mmap(this.k, task.mm!, {
      len: length,
      prot,
      flags,
      file: f,
      name,
      ...(addr !== undefined && { addr }),
      ...(align !== undefined && { align }),
      ...(offset !== undefined && { offset }),
    });
    if (IS_ERR(ret)) return { result: this.result('mmap', { ret: errname(ret) }), changed: false };
    this.mappings.set(name, { name, addr: ret, length, proc: r.name('proc') });
    return { result: this.result('mmap', { ret: 0, addr: hex(ret) }), changed: true };
  }

  private munmap(r: StepReader): OpOutcome {
    const task = this.proc(r);
    const m = this.mapping(r);
    const { offset, length } = this.span(r, m.length, 'mapping');
    this.clock.syscall();
    const ret = do_munmap(this.k, task.mm!, m.addr + offset, length);
    return { result: this.result('munmap', { ret: ret ? errname(ret) : 0 }), changed: true };
  }

  private mprotect(r: StepReader): OpOutcome {
    const task = this.proc(r);
    const m = this.mapping(r);
    const { offset, length } = this.span(r, m.length, 'mapping');
    const prot = r.oneOf('prot', PROTS);
    this.clock.syscall();
    const ret = do_mprotect(this.k, task.mm!, m.addr + offset, length, prot);
    return { result: this.result('mprotect', { ret: ret ? errname(ret) : 0 }), changed: true };
  }

  private madvise(r: StepReader): OpOutcome {
    const task = this.proc(r);
    const m = this.mapping(r);
    const { offset, length } = this.span(r, m.length, 'mapping');
    const advice = r.oneOf('advice', ADVICE);
    this.clock.syscall();
    const ret = do_madvise(this.k, task.mm!, m.addr + offset, length, advice);
    return { result: this.result('madvise', { ret: ret ? errname(ret) : 0 }), changed: true };
  }

  /**
   * mremap with MREMAP_MAYMOVE, as the selftests call it; with `newAddr` (a mapping name,
   * plus `newOffset`) also MREMAP_FIXED. A remap of a whole mapping moves its name along.
   */
  private mremap(r: StepReader): OpOutcome {
    const task = this.proc(r);
    const m = this.mapping(r);
    const { offset, length } = this.span(r, m.length, 'mapping');
    const newLength = r.size('newLength');
    let flags = MREMAP_MAYMOVE;
    let target = 0;
    if (r.has('newAddr')) {
      target = this.mapping(r, 'newAddr').addr + (r.optSize('newOffset') ?? 0);
      flags |= MREMAP_FIXED;
    }
    this.clock.syscall();
    const ret = do_mremap(this.k, task.mm!, m.addr + offset, length, newLength, flags, target);
    if (IS_ERR(ret)) return { result: this.result('mremap', { ret: errname(ret) }), changed: true };
    if (offset === 0 && length === m.length)
      this.mappings.set(m.name, { ...m, addr: ret, length: newLength });
    return { result: this.result('mremap', { ret: 0, addr: hex(ret) }), changed: true };
  }

  // ---- devices -----------------------------------------------------------------------

  /** The driver of a device, by the step's `device` name. */
  private driverOf(r: StepReader): { name: string; driver: DeviceDriver } {
    const name = r.name('device');
    const d = this.machine.devices.get(name);
    if (!d) {
      const known = [...this.machine.devices.keys()];
      throw new InputError(
        r.at('device'),
        `no device named "${name}"${known.length ? ` (known: ${known.join(', ')})` : ''}`,
      );
    }
    if ('error' in d) throw new InputError(r.at('device'), `device "${name}" failed its probe`);
    if (!d.driver)
      throw new InputError(
        r.at('device'),
        `device "${name}" has no driver that takes commands (${d.config.driver})`,
      );
    return { name, driver: d.driver };
  }

  /** The opened devices' drivers changed (a plugin reloaded): open them again for their processes. */
  reopen(device: string): void {
    const d = this.machine.devices.get(device);
    if (!d || 'error' in d || !d.driver) return;
    for (const key of this.opened) {
      const [proc, dev] = key.split('\0') as [string, string];
      const task = this.procs.get(proc);
      if (dev === device && task) d.driver.open(task);
    }
  }

  /**
   * open/close: the process opens the device file, and the driver mirrors its mm
   * (dmirror_fops_open); closing it unregisters the mirror (dmirror_fops_release).
   */
  private open(r: StepReader, open: boolean): OpOutcome {
    const task = this.proc(r);
    const { name, driver } = this.driverOf(r);
    const key = `${r.name('proc')}\0${name}`;
    this.clock.syscall();
    if (open) {
      const ret = driver.open(task);
      if (ret) return { result: this.result('open', { ret: errname(ret) }), changed: false };
      this.opened.add(key);
    } else if (!this.opened.delete(key))
      throw new InputError(r.at('device'), `"${name}" is not open in "${r.name('proc')}"`);
    else driver.close(task);
    return { result: this.result(open ? 'open' : 'close', { ret: 0 }), changed: false };
  }

  /**
   * A driver command on [at + offset, + pages), as the ioctls of lib/test_hmm.c for the
   * dmirror drivers: `read` (into `buffer`), `write` (from `buffer`), `migrate` (then read
   * back into `buffer`), `migrate_to_sys`, `snapshot` (one byte per page, also into
   * `buffer`) and `release` (all of the device's memory, no range); a plugin driver may
   * answer others. Results: ret, cpages, faults, bytes, and a plugin's own fields.
   */
  private device(r: StepReader): OpOutcome {
    const task = this.proc(r);
    const { name, driver } = this.driverOf(r);
    const cmd = r.step.cmd;
    if (typeof cmd !== 'string' || !driver.commands.includes(cmd))
      throw new InputError(
        r.at('cmd'),
        `expected one of ${driver.commands.map((c) => `"${c}"`).join(', ')}, got ${JSON.stringify(cmd)}`,
      );
    if (!this.opened.has(`${r.name('proc')}\0${name}`))
      throw new InputError(r.at('device'), `"${name}" is not open in "${r.name('proc')}" (open it first)`);
    const ps = this.k.c.PAGE_SIZE;
    let buf: Uint8Array | null = null;
    if (r.has('buffer')) {
      const bname = r.name('buffer');
      buf = this.buffers.get(bname) ?? null;
      if (!buf)
        throw new InputError(
          r.at('buffer'),
          `no buffer named "${bname}" (make one with the buffer op first)`,
        );
    }
    let addr = 0;
    let pages = 0;
    if (cmd !== 'release' || r.has('at')) {
      const m = this.mapping(r);
      const offset = r.optSize('offset') ?? 0;
      if (offset > m.length)
        throw new InputError(
          r.at('offset'),
          `expected at most ${m.length} (the mapping's size), got ${offset}`,
        );
      pages = r.count('pages') ?? Math.ceil((m.length - offset) / ps);
      // What a command keeps per page (its range's pfns, the snapshot's bytes, the buffer's
      // copy) is sized by its pages: 1G of them at most, as a store's bytes.
      if (pages * ps > MAX_TRANSFER)
        throw new InputError(
          r.at(r.has('pages') ? 'pages' : 'at'),
          `expected at most ${MAX_TRANSFER / ps} pages (1G) per device command, got ${pages}`,
        );
      addr = m.addr + offset;
    }
    this.clock.syscall();
    const res = driver.command(task, cmd, { addr, pages, buffer: buf });
    // The device's DMA the driver did not charge itself: pages migrated, or read and written.
    this.clock.deviceCopy((res.moved + res.accessed) * ps, name);
    if (buf && (cmd === 'read' || cmd === 'write' || cmd === 'migrate'))
      this.clock.userCopy(Math.min(buf.length, pages * ps));
    return { result: this.deviceResult(res), changed: true };
  }

  private deviceResult(res: DeviceCommandResult): OpResult {
    return this.result('device', {
      ...(res.extra as Record<string, never> | undefined),
      ret: res.ret ? errname(res.ret) : 0,
      cpages: res.cpages,
      faults: res.faults,
      ...(res.bytes && { bytes: [...res.bytes] }),
    });
  }

  // ---- memory accesses ---------------------------------------------------------------

  private store(r: StepReader): OpOutcome {
    const task = this.proc(r);
    const m = this.mapping(r);
    const { offset, length } = this.span(r, m.length, 'mapping');
    const fill = r.fill('fill') ?? { kind: 'pattern', pattern: 'index', add: 0 };
    this.transfer(r, length);
    const bytes = fillBytes(fill, offset, length);
    const fault = copy_to_user(this.k, task, m.addr + offset, bytes);
    this.clock.userCopy(length);
    const result = this.result('store', fault ? { signal: fault.signal, faultAddr: hex(fault.addr) } : {});
    return { result, changed: true };
  }

  private load(r: StepReader): OpOutcome {
    const task = this.proc(r);
    const m = this.mapping(r);
    const { offset, length } = this.span(r, m.length, 'mapping');
    this.transfer(r, length);
    const data = new Uint8Array(length);
    const fault = copy_from_user(this.k, task, m.addr + offset, data);
    this.clock.userCopy(length);
    const result = this.result('load', {
      data: { bytes: length, head: int32Head(data) },
      ...(fault && { signal: fault.signal, faultAddr: hex(fault.addr) }),
    });
    return { result, data, changed: true };
  }

  private buffer(r: StepReader): OpOutcome {
    const name = r.name('name');
    const size = r.size('size');
    const fill = r.fill('fill');
    this.transfer(r, size);
    this.buffers.set(name, fill ? fillBytes(fill, 0, size) : new Uint8Array(size));
    return { result: this.result('buffer'), changed: false };
  }

  private check(r: StepReader): OpOutcome {
    const name = r.name('buffer');
    const buf = this.buffers.get(name);
    if (!buf)
      throw new InputError(r.at('buffer'), `no buffer named "${name}" (make one with the buffer op first)`);
    const { offset, length } = this.span(r, buf.length, 'buffer');
    if (offset + length > buf.length)
      throw new InputError(
        r.at('length'),
        `expected at most ${buf.length - offset} (the rest of the buffer), got ${length}`,
      );
    const data = buf.slice(offset, offset + length);
    return {
      result: this.result('check', { data: { bytes: length, head: int32Head(data) } }),
      data,
      changed: false,
    };
  }

  /** `run`: a workload of CPU threads and device kernels (lab/workload.ts), run to its end. */
  private runOp(r: StepReader): OpOutcome {
    const counters = runWorkload(this, r.step.workload, r.at('workload'), this.seed);
    return { result: this.result('run', counters), changed: true };
  }

  private stat(r: StepReader): OpOutcome {
    const task = this.proc(r);
    const rss = rssOf(task.mm!);
    if (!r.has('at')) return { result: this.result('stat', { rss }), changed: false };
    const m = this.mapping(r);
    const vma = vma_lookup(task.mm!, m.addr);
    if (!vma) throw new InputError(r.at('at'), `mapping "${m.name}" is not mapped in "${r.name('proc')}"`);
    const smaps: Record<string, number> = { ...show_smaps(this.k, task.mm!, vma) };
    return { result: this.result('stat', { rss, smaps }), changed: false };
  }
}

export function rssOf(mm: mm_struct): RssCounters {
  return {
    file: mm.rss_stat[MM_FILEPAGES]!,
    anon: mm.rss_stat[MM_ANONPAGES]!,
    swapents: mm.rss_stat[MM_SWAPENTS]!,
    shmem: mm.rss_stat[MM_SHMEMPAGES]!,
  };
}

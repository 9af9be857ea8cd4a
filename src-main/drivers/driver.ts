// What the lab sees of a device's driver, whoever wrote it: the built-in dmirror
// (drivers/dmirror.ts, the kernel tests' reference driver) or a plugin running in its
// sandbox (drivers/plugin/). The lab opens the device for a process, runs its commands by
// name with plain arguments and results, reads the device's page table (its MMU, for the
// Mirror view and device kernels) and its memory use, and unbinds it. A workload's device
// kernel reaches its driver the same way: each run of a fault batch is the `fault` command
// (FAULT_COMMAND), and the driver's own policy decides what to migrate, evict or map.
import type { mm_struct } from '../kernel/include/mm_types';
import type { task_struct } from '../kernel/include/sched';
import { EINVAL } from '../kernel/include/errno';
import type { hmm_mirror } from '../kernel/mm/hmm_mirror';
import type { DevicePageTable, dmirror_device } from './dmirror';
import type { PluginErrorInfo } from './sandbox/errors';
import type { PlainValue } from './sandbox/values';

/** A command's range and buffer: `pages` pages from `addr` of the task's address space. */
export interface DeviceCommandArgs {
  addr: number;
  pages: number;
  /** The scenario's host buffer (read into, written from), or null. */
  buffer: Uint8Array | null;
  /** `fault`: an access to the range writes, so the device needs it writable. */
  write?: boolean;
}

/**
 * The command a device kernel's faults reach the driver by: the device faulted on [addr, +
 * pages) (a run of neighbouring pages of its fault batch, `write` when an access there
 * writes). The driver makes the pages accessible in its device page table as its policy
 * says (migrate them, evict to make room, or map them where they are) and answers `cpages`,
 * the pages it migrated to device memory, and `evicted`, the pages it sent home for room.
 */
export const FAULT_COMMAND = 'fault';

/** A `fault` command's `evicted` count (a plain field of its result), 0 when it has none. */
export function evictedPages(r: DeviceCommandResult): number {
  const v = r.extra?.evicted;
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : 0;
}

/**
 * A command's answer, as lib/test_hmm.c fills struct hmm_dmirror_cmd: `ret` (0 or -errno),
 * `cpages`, `faults`, and for snapshot one byte per page.
 */
export interface DeviceCommandResult {
  ret: number;
  cpages: number;
  faults: number;
  /**
   * Pages the device's copy engine moved that the lab still has to charge to the clock. A
   * plugin's copies are charged as they happen (the dma_copy tracepoint), so it reports 0.
   */
  moved: number;
  /** Pages the device read or wrote through its page table that the lab still has to charge. */
  accessed: number;
  bytes?: Uint8Array | number[];
  /** Any other fields a plugin's command returned (plain data), passed on as result fields. */
  extra?: Record<string, PlainValue>;
}

/** Device memory in pages: all of it and what is free (not in use by any mapping or migration). */
export interface DeviceMemory {
  pages: number;
  free: number;
}

export interface DeviceDriver {
  /** The driver's name as a machine file gives it ("dmirror", "chunked-vram", "./my.ts"). */
  readonly name: string;
  /** Whether it runs as a plugin in a sandbox. */
  readonly plugin: boolean;
  /** The commands it answers, by name. */
  readonly commands: readonly string[];
  /** Why the device stopped serving (a plugin's budget fault), or null while it works. */
  readonly failure: PluginErrorInfo | null;
  /** The task opens the device file: the driver mirrors its mm. 0 or -errno. */
  open(task: task_struct): number;
  close(task: task_struct): void;
  /** Run a command on the task's address space. An unknown command is -EINVAL. */
  command(task: task_struct, cmd: string, args: DeviceCommandArgs): DeviceCommandResult;
  /** The device's page table for mm (virtual page -> device-mapped page * 2 + write), if it mirrors mm. */
  pageTable(mm: mm_struct): DevicePageTable | undefined;
  /** The driver's mirror of mm, if it has one (check_mirror_coherence takes it). */
  mirror(mm: mm_struct): hmm_mirror | undefined;
  memory(): DeviceMemory;
  /**
   * Before the device goes away: stop serving. With `evict` (a driver being replaced), device
   * memory still in use is migrated home first, so the device can go at once.
   */
  unbind(opts?: { evict?: boolean }): void;
  /** Once the device is gone: let go of what the driver runs on (a plugin's engine). */
  dispose?(): void;
}

/** A result for a command that did not run. */
export function commandFailed(ret: number): DeviceCommandResult {
  return { ret, cpages: 0, faults: 0, moved: 0, accessed: 0 };
}

/** The built-in dmirror (the HMM test driver in TypeScript), seen through DeviceDriver. */
export class BuiltinDmirror implements DeviceDriver {
  readonly plugin = false;
  readonly commands = [
    'read',
    'write',
    'migrate',
    'migrate_to_sys',
    'snapshot',
    'release',
    FAULT_COMMAND,
  ] as const;
  readonly failure = null;

  constructor(
    readonly mdevice: dmirror_device,
    readonly name = 'dmirror',
  ) {}

  open(task: task_struct): number {
    return this.mdevice.open(task);
  }

  close(task: task_struct): void {
    this.mdevice.close(task);
  }

  command(task: task_struct, cmd: string, a: DeviceCommandArgs): DeviceCommandResult {
    const d = this.mdevice;
    switch (cmd) {
      case 'read': {
        const r = d.read(task, a.addr, a.pages, a.buffer);
        return { ...r, moved: 0, accessed: r.cpages };
      }
      case 'write': {
        if (!a.buffer) return commandFailed(-EINVAL);
        const r = d.write(task, a.addr, a.pages, a.buffer);
        return { ...r, moved: 0, accessed: r.cpages };
      }
      case 'migrate':
        return { ...d.migrate_to_dev(task, a.addr, a.pages, a.buffer), accessed: 0 };
      case 'migrate_to_sys': {
        const r = d.migrate_to_sys(task, a.addr, a.pages);
        return { ...r, faults: 0, moved: r.cpages, accessed: 0 };
      }
      case 'snapshot':
        return { ...d.snapshot(task, a.addr, a.pages, a.buffer), accessed: 0 };
      case 'release':
        return { ...d.release(task), accessed: 0 };
      case FAULT_COMMAND: {
        const { evicted, ...r } = d.device_fault(task, a.addr, a.pages, a.write === true);
        return { ...r, accessed: 0, extra: { evicted } };
      }
      default:
        return commandFailed(-EINVAL);
    }
  }

  pageTable(mm: mm_struct): DevicePageTable | undefined {
    return this.mdevice.mirrors.get(mm)?.pt;
  }

  mirror(mm: mm_struct): hmm_mirror | undefined {
    return this.mdevice.mirrors.get(mm);
  }

  memory(): DeviceMemory {
    const pool = this.mdevice.pool;
    return { pages: pool.nr_pages, free: pool.nr_free };
  }

  /** dmirror_device_remove: with `evict`, every mirror goes and all device memory comes home. */
  unbind(opts: { evict?: boolean } = {}): void {
    if (!opts.evict) return;
    const d = this.mdevice;
    for (const m of [...d.mirrors.values()]) d.mirror_release(m);
    d.release({ mm: null } as unknown as task_struct);
  }
}

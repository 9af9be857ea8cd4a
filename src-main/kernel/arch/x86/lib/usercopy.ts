// arch/x86/lib/usercopy.c: the CPU reading and writing user memory, page by page,
// faulting as it goes. Bytes land in the page's contents; a store also moves the
// page's stamp so a stale copy is told apart from a current one.
import type { Kernel } from '../../../kernel';
import type { task_struct } from '../../../include/sched';
import { cpu_access_page, type Signal } from '../mm/fault';

export interface AccessFault {
  signal: Signal;
  addr: number;
}

/** Store `data` at addr. Returns null, or the fault that stopped the store. */
export function copy_to_user(
  k: Kernel,
  task: task_struct,
  addr: number,
  data: Uint8Array,
): AccessFault | null {
  const ps = k.c.PAGE_SIZE;
  for (let done = 0; done < data.length;) {
    const a = addr + done;
    const page = cpu_access_page(k, task, a, true);
    if (typeof page === 'string') return { signal: page, addr: a };
    const off = a % ps;
    const n = Math.min(ps - off, data.length - done);
    k.contents.kmap(page, ps).set(data.subarray(done, done + n), off);
    k.mem.stamp[page] = (k.mem.stamp[page]! + 1) >>> 0;
    done += n;
  }
  return null;
}

/** Load `len` bytes from addr into `out`. Returns null, or the fault that stopped it. */
export function copy_from_user(
  k: Kernel,
  task: task_struct,
  addr: number,
  out: Uint8Array,
): AccessFault | null {
  const ps = k.c.PAGE_SIZE;
  for (let done = 0; done < out.length;) {
    const a = addr + done;
    const page = cpu_access_page(k, task, a, false);
    if (typeof page === 'string') return { signal: page, addr: a };
    const off = a % ps;
    const n = Math.min(ps - off, out.length - done);
    const bytes = k.contents.peek(page);
    if (bytes) out.set(bytes.subarray(off, off + n), done);
    else out.fill(0, done, done + n);
    done += n;
  }
  return null;
}

/**
 * A workload's store: the page at addr gets `stamp` (no bytes kept). Returns the page,
 * or the signal.
 */
export function store_stamp(k: Kernel, task: task_struct, addr: number, stamp: number): number | Signal {
  const page = cpu_access_page(k, task, addr, true);
  if (typeof page === 'number') k.mem.stamp[page] = stamp >>> 0;
  return page;
}

/** A workload's load: the stamp of the page at addr, or the signal. */
export function load_stamp(k: Kernel, task: task_struct, addr: number): number | Signal {
  const page = cpu_access_page(k, task, addr, false);
  return typeof page === 'number' ? k.mem.stamp[page]! : page;
}

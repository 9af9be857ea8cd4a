// The simulator doing what bench/native.c has the real kernel do: map and touch N
// anonymous pages (one CPU fault each), fork a child holding them, mprotect them
// read-only, munmap them. Wall-clock nanoseconds per page, medians of RUNS; one JSON line.
import { start_kernel } from '../src-main/kernel/init/main';
import { DEFAULT_CONFIG } from '../src-main/kernel/include/config';
import { do_fork, spawn_task } from '../src-main/kernel/kernel/fork';
import { do_exit } from '../src-main/kernel/kernel/exit';
import {
  do_mmap,
  do_munmap,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from '../src-main/kernel/mm/mmap';
import { do_mprotect } from '../src-main/kernel/mm/mprotect';
import { store_stamp } from '../src-main/kernel/arch/x86/lib/usercopy';

const pages = Number(process.argv[2] ?? 65536);
const runs = Number(process.argv[3] ?? 5);
const PAGE = 4096;

const k = start_kernel({
  config: DEFAULT_CONFIG,
  ram: [{ start: 0, size: Math.max(2 ** 30, pages * PAGE * 4) }],
  reserved: [],
});
const samples = {
  cpu_fault: [] as number[],
  fork_page: [] as number[],
  mprotect_page: [] as number[],
  munmap_page: [] as number[],
};
const perPage = (t0: number): number => ((performance.now() - t0) * 1e6) / pages;

// One unmeasured round first, so the figures are of optimised code, as the C program's are.
for (let r = -1; r < runs; r++) {
  const task = spawn_task(k, 'bench');
  const addr = do_mmap(k, task.mm!, {
    len: pages * PAGE,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS,
  });
  if (addr < 0) throw new Error(`mmap failed: ${addr}`);
  let t0 = performance.now();
  for (let i = 0; i < pages; i++) store_stamp(k, task, addr + i * PAGE, i);
  const fault = perPage(t0);
  t0 = performance.now();
  const child = do_fork(k, task, 'child');
  const fork = perPage(t0);
  if (typeof child === 'number') throw new Error(`fork failed: ${child}`);
  do_exit(k, child);
  t0 = performance.now();
  do_mprotect(k, task.mm!, addr, pages * PAGE, PROT_READ);
  const prot = perPage(t0);
  t0 = performance.now();
  do_munmap(k, task.mm!, addr, pages * PAGE);
  const unmap = perPage(t0);
  do_exit(k, task);
  if (r < 0) continue;
  samples.cpu_fault.push(fault);
  samples.fork_page.push(fork);
  samples.mprotect_page.push(prot);
  samples.munmap_page.push(unmap);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  JSON.stringify({
    pages,
    cpu_fault: median(samples.cpu_fault),
    fork_page: median(samples.fork_page),
    mprotect_page: median(samples.mprotect_page),
    munmap_page: median(samples.munmap_page),
  }),
);

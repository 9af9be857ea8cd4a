// One measurement of a driver plugin's hot paths, through the bundled dmirror plugin
// (plugins/dmirror/dmirror.ts) running in QuickJS. After a warm-up round (the JIT compiles the
// hot paths, the device's page table is first built), each figure is the median of ROUNDS
// rounds. In each round a process's pages, each stamped, go system -> device -> system with
// the plugin's `migrate` and `migrate_to_sys` commands (migrate_vma over the whole range, the
// batch helpers doing each page's work host side), after which the device's page table lacks
// them all, and the device faults them in with `fault_in` (hmm_range_fault in rounds of 256
// pages, a GPU's fault buffer). Then part of them
// go back to the device and the CPU loads each, faulting on its device entry: do_swap_page ->
// the plugin's fault -> migrate_vma -> its alloc_and_copy and finalize_and_map -> back. Stamps
// are checked after every phase and the device's memory must be all free at the end. Runs in
// its own process; prints one JSON line.
import { Machine } from '../src-main/lab/machine';
import { parseMachine } from '../src-main/lab/machine-file';
import type { BoundDevice } from '../src-main/drivers/builtin';
import { PluginHost } from '../src-main/drivers/plugin';
import { spawn_task } from '../src-main/kernel/kernel/fork';
import { do_mmap, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../src-main/kernel/mm/mmap';
import { load_stamp, store_stamp } from '../src-main/kernel/arch/x86/lib/usercopy';
import { median } from './median';
import type { PluginFaultFigures } from './run';

/** 1 GiB of 4 KiB pages moved each way per round. */
const PAGES = 262_144;
/** Measured rounds, after one warm-up round. */
const ROUNDS = 5;
/** CPU faults on device entries (each one a page's migration home through the plugin). */
const FAULTS = 100_000;
const MACHINE = {
  ram: [{ start: 0, size: '2G' }],
  reserved: [],
  devices: [{ name: 'gpu0', kind: 'private', memory: '1G', driver: 'plugin:dmirror' }],
};

const host = new PluginHost();
const spec = parseMachine(MACHINE, 'plugin-faults');
await host.prepare(spec.devices);
const machine = new Machine(spec, host);
const k = machine.kernel;
const PAGE = k.c.PAGE_SIZE;
const drv = (machine.devices.get('gpu0') as BoundDevice).driver!;
const task = spawn_task(k, 'bench');
const addr = do_mmap(k, task.mm!, {
  len: PAGES * PAGE,
  prot: PROT_READ | PROT_WRITE,
  flags: MAP_PRIVATE | MAP_ANONYMOUS,
});
if (addr < 0) throw new Error(`mmap failed: ${addr}`);
for (let i = 0; i < PAGES; i++) store_stamp(k, task, addr + i * PAGE, i + 1);
if (drv.open(task)) throw new Error('open failed');

function command(cmd: string, pages: number, expect: Record<string, number>): number {
  const t0 = performance.now();
  const r = drv.command(task, cmd, { addr, pages, buffer: null });
  const ms = performance.now() - t0;
  for (const [key, v] of Object.entries(expect))
    if ((r as unknown as Record<string, number>)[key] !== v) throw new Error(`${cmd}: ${JSON.stringify(r)}`);
  if (drv.failure) throw new Error(`the plugin failed: ${drv.failure.message}`);
  return ms;
}

function checkStamps(n: number): void {
  let bad = 0;
  for (let i = 0; i < n; i++) if (load_stamp(k, task, addr + i * PAGE) !== i + 1) bad++;
  if (bad) throw new Error(`${bad} pages lost their stamp`);
}

// system -> device -> system, then device faults on all of it (the way home unmapped it from
// the device): a warm-up round, then ROUNDS measured ones.
const toDevice: number[] = [];
const toSystem: number[] = [];
const roundTrips: number[] = [];
const faultIn: number[] = [];
for (let round = 0; round <= ROUNDS; round++) {
  const devMs = command('migrate', PAGES, { ret: 0, cpages: PAGES });
  const sysMs = command('migrate_to_sys', PAGES, { ret: 0, cpages: PAGES });
  if (drv.pageTable(task.mm!)!.size) throw new Error('the device still maps pages it sent home');
  const inMs = command('fault_in', PAGES, { ret: 0, cpages: PAGES, faults: PAGES / 256 });
  if (round === 0) continue;
  toDevice.push(PAGES / (devMs / 1000));
  toSystem.push(PAGES / (sysMs / 1000));
  roundTrips.push((2 * PAGES) / ((devMs + sysMs) / 1000));
  faultIn.push(PAGES / (inMs / 1000));
}
checkStamps(PAGES);
const pt = drv.pageTable(task.mm!)!;
for (let i = 0; i < PAGES; i++) {
  const v = pt.get(addr / PAGE + i);
  if (v === undefined || k.mem.stamp[Math.floor(v / 2)] !== i + 1) throw new Error(`fault_in: page ${i}`);
}

// CPU faults on device entries.
command('migrate', FAULTS, { ret: 0, cpages: FAULTS });
const t0 = performance.now();
checkStamps(FAULTS);
const faultMs = performance.now() - t0;
const mem = drv.memory();
if (mem.free !== mem.pages) throw new Error('device pages leaked');

const figures: PluginFaultFigures = {
  migrationPages: PAGES,
  migrationRounds: ROUNDS,
  migrationsPerSec: median(roundTrips),
  toDevicePagesPerSec: median(toDevice),
  toSystemPagesPerSec: median(toSystem),
  deviceFaults: PAGES,
  deviceFaultsPerSec: median(faultIn),
  faults: FAULTS,
  faultMs,
  faultsPerSec: FAULTS / (faultMs / 1000),
  faultUs: (faultMs * 1000) / FAULTS,
};
console.log(JSON.stringify(figures));

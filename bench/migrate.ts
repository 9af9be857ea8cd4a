// One measurement of migration: a 1 GiB anonymous mapping touched page by page (262,144
// CPU faults through store_stamp), migrated to a 1 GiB dmirror device and back in
// migrate_vma batches: once cold (the first pass), then in a loop of round trips with
// 64-page batches and with one migrate_vma per 2 MiB (512 pages; 4.14's migrate_vma takes any
// range of one vma). Then the pages go to the device again and come home by CPU faults on
// their device entries, and finally the device faults them all into its page table where
// they are, through hmm_range_fault in 256-page batches (a GPU fault batch). Every stamp is
// checked afterwards. Runs in its own process; prints one JSON line.
import { Machine } from '../src-main/lab/machine';
import { parseMachine } from '../src-main/lab/machine-file';
import type { BoundDevice } from '../src-main/drivers/builtin';
import { spawn_task } from '../src-main/kernel/kernel/fork';
import { do_mmap, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../src-main/kernel/mm/mmap';
import { load_stamp, store_stamp } from '../src-main/kernel/arch/x86/lib/usercopy';
import { median } from './median';

export const MIGRATE_MACHINE = {
  ram: [{ start: 0, size: '2G' }],
  reserved: [],
  devices: [{ name: 'gpu0', kind: 'private', memory: '1G', driver: 'dmirror' }],
};

/** Round trips per batch size in the loop; the figures are their medians. */
const LOOPS = 5;
/** The larger migrate_vma batch: one PMD's worth of pages. */
const BIG_BATCH = 512;
/** Pages per hmm_range_fault call when the device faults (UVM's fault batch). */
const RANGE_FAULT_PAGES = 256;

const SIZE = 2 ** 30;
const machine = new Machine(parseMachine(MIGRATE_MACHINE, 'migrate'));
const k = machine.kernel;
const PAGE = k.c.PAGE_SIZE;
const npages = SIZE / PAGE;
const d = (machine.devices.get('gpu0') as BoundDevice).dmirror!;
const task = spawn_task(k, 'bench');
const addr = do_mmap(k, task.mm!, {
  len: SIZE,
  prot: PROT_READ | PROT_WRITE,
  flags: MAP_PRIVATE | MAP_ANONYMOUS,
});
if (addr < 0) throw new Error(`mmap failed: ${addr}`);

/** Pages per second of one migration of the whole mapping (to the device or home). */
function migrate(to: 'device' | 'system'): number {
  const t0 = performance.now();
  const res = to === 'device' ? d.migrate(task, addr, npages) : d.migrate_to_sys(task, addr, npages);
  const ms = performance.now() - t0;
  if (res.ret || res.cpages !== npages) throw new Error(`migrate to ${to}: ${JSON.stringify(res)}`);
  return npages / (ms / 1000);
}

/** Median pages per second of LOOPS round trips with `batch` pages per migrate_vma. */
function loop(batch: number): { toDevice: number; toSystem: number } {
  d.batch = batch;
  const toDevice: number[] = [];
  const toSystem: number[] = [];
  for (let i = 0; i < LOOPS; i++) {
    toDevice.push(migrate('device'));
    toSystem.push(migrate('system'));
  }
  return { toDevice: median(toDevice), toSystem: median(toSystem) };
}

let t0 = performance.now();
for (let i = 0; i < npages; i++) {
  if (typeof store_stamp(k, task, addr + i * PAGE, i + 1) !== 'number')
    throw new Error(`store at page ${i} failed`);
}
const faultMs = performance.now() - t0;

const batch = d.batch;
const toDevice = migrate('device');
const toSystem = migrate('system');
const loopSmall = loop(batch);
const loopBig = loop(BIG_BATCH);
d.batch = batch;

// CPU faults on device entries: back on the device, then every page comes home through a
// CPU load that faults on its device entry (do_swap_page -> the driver's fault callback).
migrate('device');
t0 = performance.now();
let bad = 0;
for (let i = 0; i < npages; i++) if (load_stamp(k, task, addr + i * PAGE) !== i + 1) bad++;
const deviceFaultMs = performance.now() - t0;
if (bad) throw new Error(`${bad} pages lost their stamp`);
if (d.pool.nr_free !== d.pool.nr_pages) throw new Error('device pages leaked');

// Device faults: every page is in system memory and missing from the device page table; the
// device reads them all, faulting them in where they are through hmm_range_fault.
d.range_pages = RANGE_FAULT_PAGES;
t0 = performance.now();
const read = d.read(task, addr, npages);
const rangeFaultMs = performance.now() - t0;
if (read.ret || read.cpages !== npages) throw new Error(`device read: ${JSON.stringify(read)}`);
for (let i = 0; i < npages; i++) if (k.mem.stamp[d.device_page(task.mm!, addr + i * PAGE)] !== i + 1) bad++;
if (bad) throw new Error(`${bad} pages mapped by the device lost their stamp`);

console.log(
  JSON.stringify({
    pages: npages,
    batch,
    faultsPerSec: npages / (faultMs / 1000),
    toDevicePagesPerSec: toDevice,
    toSystemPagesPerSec: toSystem,
    loops: LOOPS,
    loopToDevicePagesPerSec: loopSmall.toDevice,
    loopToSystemPagesPerSec: loopSmall.toSystem,
    bigBatch: BIG_BATCH,
    bigToDevicePagesPerSec: loopBig.toDevice,
    bigToSystemPagesPerSec: loopBig.toSystem,
    deviceFaultsPerSec: npages / (deviceFaultMs / 1000),
    rangeFaultPages: RANGE_FAULT_PAGES,
    rangeFaultsPerSec: npages / (rangeFaultMs / 1000),
  }),
);

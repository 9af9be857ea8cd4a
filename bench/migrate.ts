// One measurement of migration: a 1 GiB anonymous mapping touched page by page (262,144
// CPU faults through store_stamp), migrated to a 1 GiB dmirror device and back in
// migrate_vma batches, then to the device again and home by CPU faults on the device
// entries, every stamp checked afterwards. Runs in its own process; prints
// one JSON line.
import { Machine } from '../src-main/lab/machine';
import { parseMachine } from '../src-main/lab/machine-file';
import type { BoundDevice } from '../src-main/drivers/builtin';
import { spawn_task } from '../src-main/kernel/kernel/fork';
import { do_mmap, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../src-main/kernel/mm/mmap';
import { load_stamp, store_stamp } from '../src-main/kernel/arch/x86/lib/usercopy';

export const MIGRATE_MACHINE = {
  ram: [{ start: 0, size: '2G' }],
  reserved: [],
  devices: [{ name: 'gpu0', kind: 'private', memory: '1G', driver: 'dmirror' }],
};

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

let t0 = performance.now();
for (let i = 0; i < npages; i++) {
  if (typeof store_stamp(k, task, addr + i * PAGE, i + 1) !== 'number')
    throw new Error(`store at page ${i} failed`);
}
const faultMs = performance.now() - t0;

t0 = performance.now();
const toDevice = d.migrate(task, addr, npages);
const toDeviceMs = performance.now() - t0;
if (toDevice.ret || toDevice.cpages !== npages) throw new Error(`migrate: ${JSON.stringify(toDevice)}`);

t0 = performance.now();
const toSystem = d.migrate_to_sys(task, addr, npages);
const toSystemMs = performance.now() - t0;
if (toSystem.ret || toSystem.cpages !== npages)
  throw new Error(`migrate_to_sys: ${JSON.stringify(toSystem)}`);

// Device faults: back on the device, then every page comes home through a CPU load that
// faults on its device entry (do_swap_page -> the driver's fault callback).
const again = d.migrate(task, addr, npages);
if (again.ret || again.cpages !== npages) throw new Error(`migrate: ${JSON.stringify(again)}`);
t0 = performance.now();
let bad = 0;
for (let i = 0; i < npages; i++) if (load_stamp(k, task, addr + i * PAGE) !== i + 1) bad++;
const deviceFaultMs = performance.now() - t0;
if (bad) throw new Error(`${bad} pages lost their stamp`);
if (d.pool.nr_free !== d.pool.nr_pages) throw new Error('device pages leaked');

console.log(
  JSON.stringify({
    pages: npages,
    batch: d.batch,
    faultsPerSec: npages / (faultMs / 1000),
    toDevicePagesPerSec: npages / (toDeviceMs / 1000),
    toSystemPagesPerSec: npages / (toSystemMs / 1000),
    deviceFaultsPerSec: npages / (deviceFaultMs / 1000),
  }),
);

// One measurement of device faults through a driver plugin: 100,000 pages of a process are
// migrated to a device the dmirror plugin (plugins/dmirror/dmirror.ts) serves, then every
// page is loaded by the CPU, each load faulting on its device entry: do_swap_page -> the
// plugin's fault callback in QuickJS -> migrate_vma -> its alloc_and_copy (one dma_copy) and
// finalize_and_map -> back. Every stamp is checked afterwards. Runs in its own process;
// prints one JSON line.
import { Machine } from '../src-main/lab/machine';
import { parseMachine } from '../src-main/lab/machine-file';
import type { BoundDevice } from '../src-main/drivers/builtin';
import { PluginHost } from '../src-main/drivers/plugin';
import { spawn_task } from '../src-main/kernel/kernel/fork';
import { do_mmap, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../src-main/kernel/mm/mmap';
import { load_stamp, store_stamp } from '../src-main/kernel/arch/x86/lib/usercopy';
import type { PluginFaultFigures } from './run';

const FAULTS = 100_000;
const MACHINE = {
  ram: [{ start: 0, size: '2G' }],
  reserved: [],
  devices: [{ name: 'gpu0', kind: 'private', memory: '512M', driver: 'plugin:dmirror' }],
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
  len: FAULTS * PAGE,
  prot: PROT_READ | PROT_WRITE,
  flags: MAP_PRIVATE | MAP_ANONYMOUS,
});
if (addr < 0) throw new Error(`mmap failed: ${addr}`);
for (let i = 0; i < FAULTS; i++) store_stamp(k, task, addr + i * PAGE, i + 1);
if (drv.open(task)) throw new Error('open failed');

let t0 = performance.now();
const moved = drv.command(task, 'migrate', { addr, pages: FAULTS, buffer: null });
const migrateMs = performance.now() - t0;
if (moved.ret || moved.cpages !== FAULTS) throw new Error(`migrate: ${JSON.stringify(moved)}`);

t0 = performance.now();
let bad = 0;
for (let i = 0; i < FAULTS; i++) if (load_stamp(k, task, addr + i * PAGE) !== i + 1) bad++;
const faultMs = performance.now() - t0;
if (bad) throw new Error(`${bad} pages lost their stamp`);
const mem = drv.memory();
if (mem.free !== mem.pages) throw new Error('device pages leaked');
if (drv.failure) throw new Error(`the plugin failed: ${drv.failure.message}`);

const figures: PluginFaultFigures = {
  faults: FAULTS,
  faultMs,
  faultsPerSec: FAULTS / (faultMs / 1000),
  faultUs: (faultMs * 1000) / FAULTS,
  migratePagesPerSec: FAULTS / (migrateMs / 1000),
};
console.log(JSON.stringify(figures));

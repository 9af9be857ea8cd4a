// Issue 7's scale run: a 64 GiB RAM machine with 64 GiB of device-private memory served by
// the built-in dmirror driver (TypeScript, in process: the fastest honest driver; the
// dmirror plugin does the same work in QuickJS several times slower). A process maps 32 GiB private
// anonymous and stamps every page (store_stamp, one CPU fault each); the driver's migrate
// command moves it all to the device in migrate_vma batches; the device's state is checked
// page by page; migrate_to_sys brings it all home; every stamp is loaded back and the
// device memory must be all free. Prints one JSON line: wall time per phase and the
// process's peak resident set. Runs in its own process (bench/run.ts spawns it).
//
//   node --import tsx bench/scale.ts [--ram 64G] [--device 64G] [--touch 32G] [--corrupt N]
//
// --corrupt N damages page N's stamp on the device after the device check, so the final
// check must fail (test/bench/scale.test.ts proves the verification can fail).
import { parseArgs } from 'node:util';
import { Machine } from '../src-main/lab/machine';
import { parseMachine } from '../src-main/lab/machine-file';
import { parseSize } from '../src-main/lab/numbers';
import type { BoundDevice } from '../src-main/drivers/builtin';
import type { ScalePhase } from './run';
import { spawn_task } from '../src-main/kernel/kernel/fork';
import { do_mmap, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../src-main/kernel/mm/mmap';
import { lookup_pte } from '../src-main/kernel/mm/pgtable';
import {
  device_entry_to_page,
  is_device_private_entry,
  is_swap_pte,
  pte_to_swp_entry,
} from '../src-main/kernel/include/swapops';
import { load_stamp, store_stamp } from '../src-main/kernel/arch/x86/lib/usercopy';

const { values: opt } = parseArgs({
  options: {
    ram: { type: 'string', default: '64G' },
    device: { type: 'string', default: '64G' },
    touch: { type: 'string', default: '32G' },
    corrupt: { type: 'string' },
  },
  strict: true,
});

// Peak RSS comes from the kernel's high-water mark (maxRSS, KiB), which catches transient
// peaks such as a typed array and its grown copy that phase-end samples would miss.
const peakRss = (): number => process.resourceUsage().maxRSS * 1024;
const seconds = {} as Record<ScalePhase, number>;
/** The high-water mark after each phase: which phase set the peak. */
const peakRssAfter = {} as Record<ScalePhase, number>;
function phase(name: ScalePhase, run: () => void): void {
  const t0 = performance.now();
  run();
  seconds[name] = (performance.now() - t0) / 1000;
  peakRssAfter[name] = peakRss();
}

const rssAtStart = process.memoryUsage().rss;
let machine!: Machine;
phase('boot', () => {
  machine = new Machine(
    parseMachine(
      {
        ram: [{ start: 0, size: opt.ram }],
        reserved: [],
        devices: [{ name: 'gpu0', kind: 'private', memory: opt.device, driver: 'dmirror' }],
      },
      'scale',
    ),
  );
});
const k = machine.kernel;
const PAGE = k.c.PAGE_SIZE;
const npages = parseSize(opt.touch, '--touch') / PAGE;
if (!Number.isInteger(npages) || npages <= 0)
  throw new Error(`--touch: ${opt.touch} is not a whole number of pages`);
const d = (machine.devices.get('gpu0') as BoundDevice).dmirror!;
const task = spawn_task(k, 'scale');
const mm = task.mm!;

let addr = 0;
phase('mmap', () => {
  addr = do_mmap(k, mm, {
    len: npages * PAGE,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS,
  });
  if (addr < 0) throw new Error(`mmap of ${opt.touch} failed: ${addr}`);
});

phase('touch', () => {
  for (let i = 0; i < npages; i++)
    if (typeof store_stamp(k, task, addr + i * PAGE, i + 1) !== 'number')
      throw new Error(`store at page ${i} failed`);
});

phase('to_device', () => {
  const r = d.migrate(task, addr, npages);
  if (r.ret || r.cpages !== npages) throw new Error(`migrate: ${JSON.stringify(r)}`);
});

// Every CPU PTE must be a device-private entry, and the device's own page table must map
// the same device page holding the page's stamp.
const mirror = d.mirrors.get(mm)!;
phase('verify_device', () => {
  let bad = 0;
  const vpn0 = addr / PAGE;
  for (let i = 0; i < npages; i++) {
    const pte = k.pt.entries[lookup_pte(k, mm, addr + i * PAGE)]!;
    const e = is_swap_pte(pte) ? pte_to_swp_entry(pte) : -1;
    const dpage = e >= 0 && is_device_private_entry(k, e) ? device_entry_to_page(k, e) : -1;
    const dev = mirror.pt.get(vpn0 + i);
    if (dpage < 0 || dev === undefined || Math.floor(dev / 2) !== dpage || k.mem.stamp[dpage] !== i + 1)
      bad++;
  }
  if (bad) throw new Error(`device check: ${bad} of ${npages} pages not on the device with their stamp`);
  if (mirror.pt.size !== npages || d.pool.nr_free !== d.pool.nr_pages - npages)
    throw new Error(
      `device check: ${mirror.pt.size} device PTEs, ${d.pool.nr_free} free of ${d.pool.nr_pages}`,
    );
});

if (opt.corrupt !== undefined) {
  const i = Number(opt.corrupt);
  const dev = Number.isInteger(i) ? mirror.pt.get(addr / PAGE + i) : undefined;
  if (dev === undefined) throw new Error(`--corrupt: no page ${opt.corrupt} on the device`);
  const dpage = Math.floor(dev / 2);
  k.mem.stamp[dpage] = (k.mem.stamp[dpage]! + 1) >>> 0;
}

phase('to_system', () => {
  const r = d.migrate_to_sys(task, addr, npages);
  if (r.ret || r.cpages !== npages) throw new Error(`migrate_to_sys: ${JSON.stringify(r)}`);
});

phase('verify', () => {
  let bad = 0;
  for (let i = 0; i < npages; i++) if (load_stamp(k, task, addr + i * PAGE) !== i + 1) bad++;
  if (bad) throw new Error(`${bad} of ${npages} pages lost their stamp`);
  if (d.pool.nr_free !== d.pool.nr_pages || mirror.pt.size !== 0)
    throw new Error(
      `device memory not free: ${d.pool.nr_free} of ${d.pool.nr_pages}, ${mirror.pt.size} device PTEs`,
    );
});

console.log(
  JSON.stringify({
    pages: k.mem.presentSections * k.c.PAGES_PER_SECTION,
    peak_rss_bytes: peakRss(),
    touched_pages: npages,
    batch: d.batch,
    rss_at_start_bytes: rssAtStart,
    heap_used_bytes: process.memoryUsage().heapUsed,
    seconds,
    peak_rss_after: peakRssAfter,
  }),
);

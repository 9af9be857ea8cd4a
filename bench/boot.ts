// One measurement of booting the scale machine: 64 GiB RAM + 64 GiB device-private
// memory (32M struct pages). Runs in its own process (node --expose-gc) so the memory
// figures are this machine's alone; prints one JSON line.
import { Machine } from '../src-main/lab/machine';
import { parseMachine } from '../src-main/lab/machine-file';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

export const SCALE_MACHINE = {
  ram: [{ start: 0, size: '64G' }],
  reserved: [],
  devices: [{ name: 'gpu0', kind: 'private', memory: '64G' }],
};

gc();
const before = process.memoryUsage();
const t0 = performance.now();
const machine = new Machine(parseMachine(SCALE_MACHINE, 'scale'));
const bootMs = performance.now() - t0;
gc();
const after = process.memoryUsage();
const k = machine.kernel;
const pages = k.mem.presentSections * k.c.PAGES_PER_SECTION;
console.log(
  JSON.stringify({
    bootMs,
    pages,
    heapBytesPerPage: (after.heapUsed - before.heapUsed) / pages,
    arrayBytesPerPage: (after.arrayBuffers - before.arrayBuffers) / pages,
    rssBytes: after.rss,
  }),
);

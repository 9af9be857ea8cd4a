// One measurement of the plugin sandbox (src-main/drivers/sandbox): the cost of a call into a plugin
// and out of it, of objects and of a 512-page batch crossing, of loading a plugin, and the wall time
// the default budget gives an endless loop. Runs in its own process; prints one JSON line.
import { PluginError, PluginSandbox, returns } from '../src-main/drivers/sandbox';
import type { SandboxFigures } from './run';

const PLUGIN = `
import { charge } from 'hmm-lab';
export function fault(addr: number, write: boolean): number {
  return write ? (addr >> 12) & 0xff : 0;
}
export function fault_charged(addr: number, write: boolean): number {
  charge(write ? 2 : 1);
  return (addr >> 12) & 0xff;
}
export function host_loop(n: number): number {
  for (let i = 0; i < n; i++) charge(1);
  return n;
}
export function describe(dev: { id: number; name: string }): { id: number; pages: number } {
  return { id: dev.id, pages: dev.name.length };
}
export function alloc_and_copy(src: number[]): number[] {
  return src.map((pfn) => pfn + 0x100000);
}
export function spin(): void {
  for (;;) {}
}
`;

function perCallUs(n: number, run: (i: number) => void): number {
  for (let i = 0; i < Math.min(n, 1000); i++) run(i); // warm up
  const t0 = performance.now();
  for (let i = 0; i < n; i++) run(i);
  return ((performance.now() - t0) * 1000) / n;
}

let charged = 0;
const api = { charge: (n: unknown) => void (charged += n as number) };
// The first load also initialises the TypeScript compiler and compiles the WebAssembly.
let t0 = performance.now();
await PluginSandbox.load(PLUGIN, 'bench.ts', api);
const firstLoadMs = performance.now() - t0;
const loads: number[] = [];
for (let i = 0; i < 5; i++) {
  t0 = performance.now();
  (await PluginSandbox.load(PLUGIN, 'bench.ts', api)).dispose();
  loads.push(performance.now() - t0);
}
const loadMs = loads.sort((a, b) => a - b)[2]!;
const sb = await PluginSandbox.load(PLUGIN, 'bench.ts', api);

const N = 100_000;
const t1 = performance.now();
for (let i = 0; i < N; i++) sb.call('fault', [i * 4096, true], returns.int);
const calls100kMs = performance.now() - t1;
const callUs = perCallUs(N, (i) => sb.call('fault', [i * 4096, true], returns.int));
const callWithHostUs = perCallUs(N, (i) => sb.call('fault_charged', [i * 4096, true], returns.int));
const t2 = performance.now();
sb.call('host_loop', [N]);
const hostCallUs = ((performance.now() - t2) * 1000) / N;
const objectCallUs = perCallUs(20_000, (i) => sb.call('describe', [{ id: i, name: 'gpu0' }]));
const batch = Array.from({ length: 512 }, (_, i) => 0x200000 + i);
const batch512Us = perCallUs(2_000, () => sb.call('alloc_and_copy', [batch]));

const t3 = performance.now();
try {
  sb.call('spin');
} catch (e) {
  if (!(e instanceof PluginError) || e.kind !== 'timeout') throw e;
}
const timeoutMs = performance.now() - t3;

const figures: SandboxFigures = {
  callUs,
  calls100kMs,
  callWithHostUs,
  hostCallUs,
  objectCallUs,
  batch512Us,
  firstLoadMs,
  loadMs,
  timeoutMs,
};
console.log(JSON.stringify(figures));

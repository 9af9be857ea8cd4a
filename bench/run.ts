// `hmm-lab bench`: each benchmark runs several times in fresh processes and the report
// gives medians. Benchmarks measure; tests never time anything.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BootFigures {
  bootMs: number;
  pages: number;
  heapBytesPerPage: number;
  arrayBytesPerPage: number;
  rssBytes: number;
}

export interface MigrateFigures {
  pages: number;
  batch: number;
  faultsPerSec: number;
  toDevicePagesPerSec: number;
  toSystemPagesPerSec: number;
  deviceFaultsPerSec: number;
}

/** Nanoseconds per page of each operation (bench/native.c and bench/kernel-ops.ts). */
export interface OpFigures {
  pages: number;
  cpu_fault: number;
  fork_page: number;
  mprotect_page: number;
  munmap_page: number;
}

/** The plugin sandbox (bench/sandbox.ts): microseconds per call unless named otherwise. */
export interface SandboxFigures {
  /** Host -> plugin fault(addr, write) -> an int back. */
  callUs: number;
  calls100kMs: number;
  /** The same callback calling one host function. */
  callWithHostUs: number;
  /** One plugin -> host call. */
  hostCallUs: number;
  /** A small object in and out. */
  objectCallUs: number;
  /** 512 page numbers in and 512 out. */
  batch512Us: number;
  firstLoadMs: number;
  loadMs: number;
  /** Wall time until the default budget stops an endless loop. */
  timeoutMs: number;
}

/** Device faults through a driver plugin (bench/plugin-faults.ts). */
export interface PluginFaultFigures {
  faults: number;
  faultMs: number;
  faultsPerSec: number;
  /** Wall time per CPU fault on a device entry served by the plugin's fault callback. */
  faultUs: number;
  /** The dmirror plugin's migrate command, 64-page migrate_vma batches. */
  migratePagesPerSec: number;
}

export interface BenchReport {
  machine: { node: string; platform: string; cpus: number };
  runs: number;
  /** Simulator time per operation over the real kernel's, measured in the same run (null without a C compiler). */
  vs_kernel: Record<Exclude<keyof OpFigures, 'pages'>, number> | null;
  migrations_per_s: number;
  device_faults_per_s: number;
  scale: { pages: number; peak_rss_bytes: number };
  boot: BootFigures;
  migrate: MigrateFigures;
  ops: { simulator: OpFigures; native: OpFigures | null };
  sandbox: SandboxFigures;
  pluginFaults: PluginFaultFigures;
}

const OP_PAGES = 65536;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** The median of each numeric figure over the runs. */
function medians<T extends object>(runs: T[]): T {
  const keys = Object.keys(runs[0]!) as (keyof T)[];
  return Object.fromEntries(keys.map((f) => [f, median(runs.map((r) => r[f] as number))])) as T;
}

function lastJsonLine<T>(out: string): T {
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}

function runScript<T>(script: string, args: string[] = []): T {
  const path = fileURLToPath(new URL(script, import.meta.url));
  return lastJsonLine<T>(
    execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', path, ...args], { encoding: 'utf8' }),
  );
}

/** Build bench/native.c with the system compiler; null when there is none. */
function buildNative(progress: (s: string) => void): string | null {
  const exe = join(mkdtempSync(join(tmpdir(), 'hmm-lab-bench-')), 'native');
  try {
    execFileSync('cc', ['-O2', '-o', exe, fileURLToPath(new URL('./native.c', import.meta.url))], {
      stdio: 'pipe',
    });
    return exe;
  } catch (e) {
    progress(`no C compiler (cc): the native comparison is skipped (${(e as Error).message.split('\n')[0]})`);
    return null;
  }
}

export async function runBenchmarks(opts: {
  runs: number;
  progress: (s: string) => void;
}): Promise<BenchReport> {
  const { runs, progress } = opts;
  const repeat = <T>(label: string, run: () => T): T[] =>
    Array.from({ length: runs }, (_, i) => {
      progress(`${label}: run ${i + 1}/${runs}`);
      return run();
    });
  const boot = medians(
    repeat('boot 64 GiB RAM + 64 GiB device memory', () => runScript<BootFigures>('./boot.ts')),
  );
  const migrate = medians(
    repeat('migrate 1 GiB to a dmirror device and back', () => runScript<MigrateFigures>('./migrate.ts')),
  );
  const sandbox = medians(
    repeat('plugin sandbox: calls into and out of a QuickJS plugin', () =>
      runScript<SandboxFigures>('./sandbox.ts'),
    ),
  );
  const pluginFaults = medians(
    repeat('100,000 device faults through the dmirror plugin', () =>
      runScript<PluginFaultFigures>('./plugin-faults.ts'),
    ),
  );
  // One process each, which takes its own medians over `runs` rounds.
  progress(`mmap/touch/fork/mprotect/munmap of ${OP_PAGES} pages in the simulator`);
  const simulator = runScript<OpFigures>('./kernel-ops.ts', [String(OP_PAGES), String(runs)]);
  const exe = buildNative(progress);
  if (exe) progress(`the same in the real kernel (bench/native.c)`);
  const native = exe
    ? lastJsonLine<OpFigures>(execFileSync(exe, [String(OP_PAGES), String(runs)], { encoding: 'utf8' }))
    : null;
  const ratio = (f: Exclude<keyof OpFigures, 'pages'>): number => simulator[f] / native![f];
  return {
    machine: { node: process.version, platform: `${process.platform}-${process.arch}`, cpus: cpus().length },
    runs,
    vs_kernel: native
      ? {
          cpu_fault: ratio('cpu_fault'),
          fork_page: ratio('fork_page'),
          mprotect_page: ratio('mprotect_page'),
          munmap_page: ratio('munmap_page'),
        }
      : null,
    migrations_per_s: Math.min(migrate.toDevicePagesPerSec, migrate.toSystemPagesPerSec),
    device_faults_per_s: migrate.deviceFaultsPerSec,
    scale: { pages: boot.pages, peak_rss_bytes: boot.rssBytes },
    boot,
    migrate,
    ops: { simulator, native },
    sandbox,
    pluginFaults,
  };
}

const rate = (perSec: number): string => Math.round(perSec).toLocaleString('en-US');
const ns = (v: number): string => `${v.toFixed(0)} ns`;

export function formatReport(r: BenchReport): string {
  const { boot: b, migrate: m, ops, sandbox: s, pluginFaults: pf } = r;
  const us = (v: number): string => `${v.toFixed(2)} us`;
  const opRow = (label: string, f: Exclude<keyof OpFigures, 'pages'>): string =>
    `| ${label} | ${ns(ops.simulator[f])} | ${ops.native ? ns(ops.native[f]) : 'n/a'} | ${r.vs_kernel ? r.vs_kernel[f].toFixed(2) : 'n/a'} |`;
  return [
    `node ${r.machine.node} on ${r.machine.platform}, ${r.machine.cpus} cpus; medians of ${r.runs} runs`,
    '',
    '| benchmark | figure |',
    '|---|---|',
    `| boot 64 GiB RAM + 64 GiB device (${b.pages} struct pages) | ${b.bootMs.toFixed(0)} ms |`,
    `| memmap: JS heap per page | ${b.heapBytesPerPage.toFixed(2)} B |`,
    `| memmap: typed arrays per page (reserved) | ${b.arrayBytesPerPage.toFixed(1)} B |`,
    `| resident set after boot | ${(b.rssBytes / 2 ** 20).toFixed(0)} MiB |`,
    `| 1 GiB anonymous, touched page by page (${m.pages} CPU faults) | ${rate(m.faultsPerSec)} faults/s |`,
    `| migrate_vma to device private memory (dmirror, ${m.batch}-page batches) | ${rate(m.toDevicePagesPerSec)} pages/s |`,
    `| migrate_vma back to system memory | ${rate(m.toSystemPagesPerSec)} pages/s |`,
    `| CPU faults on device entries, each migrating its page home | ${rate(m.deviceFaultsPerSec)} faults/s |`,
    `| plugin call: fault(addr, write) into QuickJS and an int back | ${us(s.callUs)} (100,000 in ${s.calls100kMs.toFixed(0)} ms) |`,
    `| plugin call that calls one host function | ${us(s.callWithHostUs)} |`,
    `| plugin -> host function call | ${us(s.hostCallUs)} |`,
    `| plugin call with a small object in and out | ${us(s.objectCallUs)} |`,
    `| plugin call with 512 page numbers in and out | ${us(s.batch512Us)} |`,
    `| plugin load (compile TS, new engine, evaluate): first / later | ${s.firstLoadMs.toFixed(0)} / ${s.loadMs.toFixed(1)} ms |`,
    `| endless loop stopped by the default budget (1,000 polls) | ${s.timeoutMs.toFixed(0)} ms |`,
    `| ${pf.faults.toLocaleString('en-US')} CPU faults on device entries through the dmirror plugin's fault callback | ${rate(pf.faultsPerSec)} faults/s (${us(pf.faultUs)} each, ${(pf.faultMs / 1000).toFixed(2)} s) |`,
    `| the dmirror plugin's migrate command (64-page migrate_vma batches) | ${rate(pf.migratePagesPerSec)} pages/s |`,
    '',
    `| per page, ${ops.simulator.pages} pages | simulator | real kernel | ratio |`,
    '|---|---|---|---|',
    opRow('CPU fault (mmap + touch)', 'cpu_fault'),
    opRow('fork', 'fork_page'),
    opRow('mprotect', 'mprotect_page'),
    opRow('munmap', 'munmap_page'),
  ].join('\n');
}

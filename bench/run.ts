// `hmm-lab bench`: each benchmark runs several times in fresh processes and the report
// gives medians. Benchmarks measure; tests never time anything.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { bundleForNode } from '../src-main/build/node-bundle';
import { projectPath } from '../src-main/build/project-dir';
import { median } from './median';

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
  /** Round trips after the first pass: medians of `loops`, with `batch` and `bigBatch` pages per call. */
  loops: number;
  loopToDevicePagesPerSec: number;
  loopToSystemPagesPerSec: number;
  bigBatch: number;
  bigToDevicePagesPerSec: number;
  bigToSystemPagesPerSec: number;
  deviceFaultsPerSec: number;
  /** Device faults on pages missing from the device page table, hmm_range_fault per `rangeFaultPages`. */
  rangeFaultPages: number;
  rangeFaultsPerSec: number;
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

/** Migrations and faults through the dmirror plugin in its sandbox (bench/plugin-faults.ts). */
export interface PluginFaultFigures {
  /** Pages moved system -> device -> system per round, and the rounds measured (after a warm-up one). */
  migrationPages: number;
  migrationRounds: number;
  /** Page migrations (either way) per second: the median round's. */
  migrationsPerSec: number;
  toDevicePagesPerSec: number;
  toSystemPagesPerSec: number;
  /** Device faults per round, served through hmm_range_fault in 256-page batches (the fault_in command). */
  deviceFaults: number;
  deviceFaultsPerSec: number;
  /** CPU faults on device entries, each served by the plugin's fault callback. */
  faults: number;
  faultMs: number;
  faultsPerSec: number;
  faultUs: number;
}

/** The Run view in Chromium during a run of 10 million events (bench/renderer.ts): one run. */
export interface RendererFigures {
  /** Events the lab aggregated (RunSeries.events). */
  events: number;
  accesses: number;
  /** Wall time from Play to the run's end. */
  run_ms: number;
  /** `series` events the lab pushed meanwhile: plot updates. */
  updates: number;
  /** From the Chromium trace, renderer main thread: longest gap between animation frames. */
  longest_frame_ms: number;
  /** From the trace: longest RunTask on the renderer main thread, wall time and its CPU time. */
  longest_task_ms: number;
  longest_task_cpu_ms: number;
  /** CPU the renderer main thread used during the run, % of one core. */
  main_thread_cpu_percent: number;
  frames: number;
  tasks_over_50ms: number;
  /** The same measured in the page: rAF gaps and PerformanceObserver long tasks (0: none over 50 ms). */
  in_page: { longest_frame_ms: number; longest_task_ms: number };
  /** The host's 1-minute load average when the run started and ended: other processes' share of the cpus. */
  load_average: [number, number];
  /** The trace JSON (opens in the DevTools Performance panel) and a screenshot after the run. */
  trace: string;
  trace_bytes: number;
  screenshot: string;
}

export type ScalePhase = 'boot' | 'mmap' | 'touch' | 'to_device' | 'verify_device' | 'to_system' | 'verify';

/** Issue 7's scale run (bench/scale.ts): 32 GiB to a device and back on the 64 + 64 GiB machine. */
export interface ScaleFigures {
  /** Struct pages of the simulated machine. */
  pages: number;
  /** The whole process's high-water resident set (the target is 1.5 GiB). */
  peak_rss_bytes: number;
  touched_pages: number;
  /** Pages per migrate_vma call. */
  batch: number;
  /** Node and the loaded modules, before the machine boots. */
  rss_at_start_bytes: number;
  heap_used_bytes: number;
  seconds: Record<ScalePhase, number>;
  /** The high-water mark after each phase: which phase set the peak. */
  peak_rss_after: Record<ScalePhase, number>;
}

export interface BenchReport {
  machine: { node: string; platform: string; cpus: number };
  runs: number;
  /** Simulator time per operation over the real kernel's, measured in the same run (null without a C compiler). */
  vs_kernel: Record<Exclude<keyof OpFigures, 'pages'>, number> | null;
  /** Page migrations per second, system -> device -> system through the dmirror plugin. */
  migrations_per_s: number;
  /** Device faults per second through the dmirror plugin (hmm_range_fault, 256-page rounds). */
  device_faults_per_s: number;
  /** The built-in driver's: migrate_vma the slower way, CPU faults on device entries. */
  builtin_migrations_per_s: number;
  builtin_device_faults_per_s: number;
  scale: ScaleFigures;
  boot: BootFigures;
  migrate: MigrateFigures;
  ops: { simulator: OpFigures; native: OpFigures | null };
  sandbox: SandboxFigures;
  pluginFaults: PluginFaultFigures;
  renderer: RendererFigures;
}

const OP_PAGES = 65536;
const MIN_OP_ROUNDS = 5;

/** The median of each numeric figure over the runs. */
function medians<T extends object>(runs: T[]): T {
  const keys = Object.keys(runs[0]!) as (keyof T)[];
  return Object.fromEntries(keys.map((f) => [f, median(runs.map((r) => r[f] as number))])) as T;
}

function lastJsonLine<T>(out: string): T {
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}

/**
 * A benchmark's figures, from a fresh Node process running it bundled into one module, as the
 * desktop app runs the simulator (electron-vite bundles the main process, and gives the bundle's
 * functions and constants back their `const`: src-main/build/const-bindings.ts). Unbundled, as
 * tsx runs the source, every call and constant across modules goes through a module binding
 * (docs/BENCHMARKS.md, "Bundled, as the app runs").
 */
function runScript<T>(script: string, args: string[] = []): T {
  return lastJsonLine<T>(
    execFileSync(process.execPath, ['--expose-gc', bundle(script), ...args], { encoding: 'utf8' }),
  );
}

/** A file of bench/, from this module's source or from the CLI's bundle (out/cli/). */
const benchFile = (name: string) => projectPath(import.meta.url, 'bench', name);

/** The renderer benchmark, from its source under tsx: it finds the web host by its own path. */
function runSource<T>(script: string): T {
  const path = benchFile(script);
  return lastJsonLine<T>(
    execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', path], { encoding: 'utf8' }),
  );
}

/**
 * bench/<script> bundled into out/bench/<name>.mjs (once a process) as the app's main process
 * is; bundled plugins are found in plugins/ as from the source.
 */
export function bundle(script: string): string {
  const entry = benchFile(script);
  return bundleForNode(entry, projectPath(import.meta.url, 'out/bench', `${basename(entry, '.ts')}.mjs`));
}

/** Build bench/native.c with the system compiler; null when there is none. */
function buildNative(progress: (s: string) => void): string | null {
  const exe = join(mkdtempSync(join(tmpdir(), 'hmm-lab-bench-')), 'native');
  try {
    execFileSync('cc', ['-O2', '-o', exe, benchFile('native.c')], {
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
    repeat('migrations and device faults through the dmirror plugin', () =>
      runScript<PluginFaultFigures>('./plugin-faults.ts'),
    ),
  );
  // One run only: it plays 10 million events in Chromium, which takes minutes.
  progress('the Run view in Chromium during a run of 10 million events (one run)');
  const renderer = runSource<RendererFigures>('./renderer.ts');
  // One run only: 8M pages each way take minutes.
  progress('scale: 32 GiB touched, migrated to a 64 GiB dmirror device and back (one run)');
  const scale = runScript<ScaleFigures>('./scale.ts');
  // One process each, which takes its own medians over at least MIN_OP_ROUNDS rounds: a round
  // takes milliseconds, and one alone can be a collection's pause (munmap 46 to 272 ns a page).
  const rounds = String(Math.max(runs, MIN_OP_ROUNDS));
  progress(`mmap/touch/fork/mprotect/munmap of ${OP_PAGES} pages in the simulator`);
  const simulator = runScript<OpFigures>('./kernel-ops.ts', [String(OP_PAGES), rounds]);
  const exe = buildNative(progress);
  if (exe) progress(`the same in the real kernel (bench/native.c)`);
  const native = exe
    ? lastJsonLine<OpFigures>(execFileSync(exe, [String(OP_PAGES), rounds], { encoding: 'utf8' }))
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
    // Through the bundled dmirror plugin in its sandbox; the built-in driver's as builtin_*.
    migrations_per_s: pluginFaults.migrationsPerSec,
    device_faults_per_s: pluginFaults.deviceFaultsPerSec,
    builtin_migrations_per_s: Math.min(migrate.toDevicePagesPerSec, migrate.toSystemPagesPerSec),
    builtin_device_faults_per_s: migrate.deviceFaultsPerSec,
    scale,
    boot,
    migrate,
    ops: { simulator, native },
    sandbox,
    pluginFaults,
    renderer,
  };
}

const rate = (perSec: number): string => Math.round(perSec).toLocaleString('en-US');
const ns = (v: number): string => `${v.toFixed(0)} ns`;

export function formatReport(r: BenchReport): string {
  const { boot: b, migrate: m, ops, sandbox: s, pluginFaults: pf, renderer: rv } = r;
  const { scale: sc } = r;
  const us = (v: number): string => `${v.toFixed(2)} us`;
  const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
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
    `| resident set after boot | ${mib(b.rssBytes)} |`,
    `| scale: ${sc.touched_pages} pages (${(sc.touched_pages * 4096) / 2 ** 30} GiB) of ${sc.pages} touched, to the device and back, stamps checked: peak resident set | ${mib(sc.peak_rss_bytes)} (target 1536 MiB) |`,
    `| scale phases: touch / migrate to device / device check / migrate home / stamp check | ${(['touch', 'to_device', 'verify_device', 'to_system', 'verify'] as const).map((p) => sc.seconds[p].toFixed(1)).join(' / ')} s |`,
    `| 1 GiB anonymous, touched page by page (${m.pages} CPU faults) | ${rate(m.faultsPerSec)} faults/s |`,
    `| migrate_vma to device private memory (dmirror, ${m.batch}-page batches) | ${rate(m.toDevicePagesPerSec)} pages/s |`,
    `| migrate_vma back to system memory | ${rate(m.toSystemPagesPerSec)} pages/s |`,
    `| migrate_vma round trips in a loop, ${m.batch}-page batches: to device / back (median of ${m.loops}) | ${rate(m.loopToDevicePagesPerSec)} / ${rate(m.loopToSystemPagesPerSec)} pages/s |`,
    `| migrate_vma round trips in a loop, ${m.bigBatch}-page batches: to device / back (median of ${m.loops}) | ${rate(m.bigToDevicePagesPerSec)} / ${rate(m.bigToSystemPagesPerSec)} pages/s |`,
    `| CPU faults on device entries, each migrating its page home | ${rate(m.deviceFaultsPerSec)} faults/s |`,
    `| device faults on pages missing from its page table, hmm_range_fault in ${m.rangeFaultPages}-page batches | ${rate(m.rangeFaultsPerSec)} faults/s |`,
    `| plugin call: fault(addr, write) into QuickJS and an int back | ${us(s.callUs)} (100,000 in ${s.calls100kMs.toFixed(0)} ms) |`,
    `| plugin call that calls one host function | ${us(s.callWithHostUs)} |`,
    `| plugin -> host function call | ${us(s.hostCallUs)} |`,
    `| plugin call with a small object in and out | ${us(s.objectCallUs)} |`,
    `| plugin call with 512 page numbers in and out | ${us(s.batch512Us)} |`,
    `| plugin load (compile TS, new engine, evaluate): first / later | ${s.firstLoadMs.toFixed(0)} / ${s.loadMs.toFixed(1)} ms |`,
    `| endless loop stopped by the default budget (1,000 polls) | ${s.timeoutMs.toFixed(0)} ms |`,
    `| ${pf.faults.toLocaleString('en-US')} CPU faults on device entries through the dmirror plugin's fault callback | ${rate(pf.faultsPerSec)} faults/s (${us(pf.faultUs)} each, ${(pf.faultMs / 1000).toFixed(2)} s) |`,
    `| dmirror plugin: ${pf.migrationPages} pages system -> device -> system (migrate, migrate_to_sys), median of ${pf.migrationRounds} rounds after a warm-up | ${rate(pf.migrationsPerSec)} page migrations/s (to device ${rate(pf.toDevicePagesPerSec)}, home ${rate(pf.toSystemPagesPerSec)}) |`,
    `| dmirror plugin: ${pf.deviceFaults} device faults per round, hmm_range_fault in 256-page batches (fault_in) | ${rate(pf.deviceFaultsPerSec)} faults/s |`,
    `| Run view in Chromium: ${rv.events.toLocaleString('en-US')} events in ${(rv.run_ms / 1000).toFixed(0)} s, ${rv.updates} plot updates; renderer main thread's longest frame / task | ${rv.longest_frame_ms.toFixed(0)} / ${rv.longest_task_ms.toFixed(0)} ms (trace ${relative(process.cwd(), rv.trace)}) |`,
    '',
    `| per page, ${ops.simulator.pages} pages | simulator | real kernel | ratio |`,
    '|---|---|---|---|',
    opRow('CPU fault (mmap + touch)', 'cpu_fault'),
    opRow('fork', 'fork_page'),
    opRow('mprotect', 'mprotect_page'),
    opRow('munmap', 'munmap_page'),
  ].join('\n');
}

// Issue 7: the renderer stays responsive while a run of 10 million events plays. The web host
// (lab in its worker thread, as in the app) serves the built renderer to Chromium; a bench-only
// scenario goes to the lab through the API the Run view uses and is played from the Run view at
// full speed, its plots updating, under a Chromium performance trace. The trace then gives the
// renderer main thread's longest task and longest gap between animation frames; an in-page rAF
// loop and a longtask observer cross-check them. Runs in its own process; prints one JSON line.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';
import type { LabEvent, RunSeries, RunStatus } from '../src-main/api';
import { startWebHost } from '../src-main/hosts/web/main';
import { WsLabClient } from '../src-renderer/src/api/ws-client';
import type { RendererFigures } from './run';

const repo = resolve(import.meta.dirname, '..');
const webRoot = resolve(repo, 'out/web');
const outDir = resolve(repo, 'out/bench');
const tracePath = resolve(outDir, 'renderer-trace.json');
const screenshotPath = resolve(outDir, 'renderer-10m.png');

/** The lab's aggregated events the run must reach (RunSeries.events). */
const TARGET_EVENTS = 10_000_000;
/** Passes of the scenario; each adds a little over 2 million events. */
const PASSES = 5;

/**
 * Each pass maps 4 GiB read-only and a CPU thread reads it (a zero-page fault per page: two
 * events, the fault and its latency, the cheapest events the lab has), while a GPU kernel and a
 * CPU thread fight over a 64 MiB hot set so that migrations, device faults and occupancy move
 * too; then the 4 GiB is unmapped, so the lab's memory stays bounded.
 */
function scenario(): Record<string, unknown> {
  const hot = { pattern: 'hotset', hotFraction: 0.1, hotProbability: 0.9, writes: 0.3 };
  const steps: Record<string, unknown>[] = [
    { op: 'spawn', proc: 'app' },
    { op: 'open', proc: 'app', device: 'gpu0' },
    { op: 'mmap', proc: 'app', name: 'hot', length: '64M', prot: 'rw', flags: ['private', 'anonymous'] },
  ];
  for (let i = 0; i < PASSES; i++) {
    const at = `zero${i}`;
    steps.push(
      { op: 'mmap', proc: 'app', name: at, length: '4G', prot: 'r', flags: ['private', 'anonymous'] },
      {
        op: 'run',
        workload: {
          name: `pass ${i + 1}`,
          actors: [
            { kind: 'cpu', name: 'reader', proc: 'app', at, pattern: 'sequential', writes: 0 },
            {
              kind: 'device',
              name: 'kernel',
              device: 'gpu0',
              proc: 'app',
              at: 'hot',
              ...hot,
              accesses: 200_000,
            },
            { kind: 'cpu', name: 'thread', proc: 'app', at: 'hot', ...hot, accesses: 50_000 },
          ],
        },
      },
      { op: 'munmap', proc: 'app', at },
    );
  }
  return {
    name: 'renderer-10m',
    seed: 11,
    machine: {
      ram: [{ start: 0, size: '4G' }],
      reserved: [],
      devices: [{ name: 'gpu0', kind: 'private', memory: '256M', link: 'pcie4' }],
    },
    steps,
  };
}

/** Trace categories of the DevTools Performance panel that hold tasks, frames and user timing. */
const TRACE_CATEGORIES = [
  'devtools.timeline',
  'disabled-by-default-devtools.timeline',
  'disabled-by-default-devtools.timeline.frame',
  'blink.user_timing',
];
const MARK_START = 'hmm-bench:run-start';
const MARK_END = 'hmm-bench:run-end';

interface TraceEvent {
  name: string;
  ph: string;
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  /** Thread time: the CPU the task had, without the time the thread waited for a core. */
  tdur?: number;
}

/**
 * The renderer main thread's longest task (RunTask), in wall and in CPU time, its share of a core,
 * and the longest gap between main-thread frames (BeginMainThreadFrame: the in-page rAF loop asks
 * for one every frame), between the two marks.
 */
function analyseTrace(events: TraceEvent[]): {
  longestTaskMs: number;
  longestTaskCpuMs: number;
  cpuPercent: number;
  longestFrameMs: number;
  frames: number;
  tasksOver50ms: number;
} {
  const start = events.find((e) => e.name === MARK_START);
  const end = events.find((e) => e.name === MARK_END);
  if (!start || !end) throw new Error('the trace lacks the run marks (blink.user_timing)');
  const main = (e: TraceEvent): boolean =>
    e.pid === start.pid && e.tid === start.tid && e.ts >= start.ts && e.ts <= end.ts;
  const runTasks = events.filter((e) => e.name === 'RunTask' && e.ph === 'X' && main(e));
  const tasks = runTasks.map((e) => e.dur ?? 0);
  const cpu = runTasks.map((e) => e.tdur ?? 0);
  const frames = events
    .filter((e) => e.name === 'BeginMainThreadFrame' && main(e))
    .map((e) => e.ts)
    .sort((a, b) => a - b);
  if (!tasks.length || frames.length < 2) throw new Error('the trace holds no tasks or frames of the page');
  let gap = 0;
  for (let i = 1; i < frames.length; i++) gap = Math.max(gap, frames[i]! - frames[i - 1]!);
  return {
    longestTaskMs: Math.max(...tasks) / 1000,
    longestTaskCpuMs: Math.max(...cpu) / 1000,
    cpuPercent: (100 * cpu.reduce((a, b) => a + b, 0)) / (end.ts - start.ts),
    longestFrameMs: gap / 1000,
    frames: frames.length,
    tasksOver50ms: tasks.filter((d) => d > 50_000).length,
  };
}

/**
 * Installed in the page: the longest gap between rAF callbacks and the longest long task. A
 * string, since tsx would wrap a function's inner functions in a helper the page lacks.
 */
const PAGE_PROBE = `(() => {
  const probe = { maxGap: 0, maxTask: 0, last: 0, on: true };
  window.__benchProbe = probe;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) probe.maxTask = Math.max(probe.maxTask, e.duration);
  }).observe({ type: 'longtask' });
  const frame = (t) => {
    if (probe.last) probe.maxGap = Math.max(probe.maxGap, t - probe.last);
    probe.last = t;
    if (probe.on) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
})()`;
const PROBE_READ = `(() => {
  const probe = window.__benchProbe;
  probe.on = false;
  return { maxGap: probe.maxGap, maxTask: probe.maxTask };
})()`;

async function main(): Promise<RendererFigures> {
  if (!existsSync(resolve(webRoot, 'index.html'))) {
    const { build } = await import('vite');
    await build({ configFile: resolve(repo, 'vite.web.config.ts'), logLevel: 'warn' });
  }
  mkdirSync(outDir, { recursive: true });
  const host = await startWebHost({ port: 0, root: webRoot });
  const lab = new WsLabClient(`${host.url.replace(/^http/, 'ws')}api`, (u) => new WebSocket(u));
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${host.url}#/run`);
    await page.locator('.run-view').waitFor();
    const toolbar = page.getByRole('toolbar', { name: 'Run controls' });
    const state = toolbar.getByRole('status');

    // The scenario goes through the Run view's own request; its `series` event readies the view.
    await lab.request({ type: 'runLoad', scenario: scenario() });
    await lab.request({ type: 'runSpeed', speed: 0 });
    await page.locator('.run-plot').nth(5).waitFor();
    await state.filter({ hasText: 'ready' }).waitFor();
    let updates = 0;
    const unsubscribe = lab.onEvent((e: LabEvent) => {
      if (e.type === 'series') updates++;
    });

    await page.evaluate(PAGE_PROBE);
    await browser.startTracing(undefined, { categories: TRACE_CATEGORIES });
    await page.evaluate((m) => performance.mark(m), MARK_START);
    const loadBefore = loadavg()[0]!;
    const t0 = performance.now();
    await toolbar.getByRole('button', { name: 'Play' }).click();
    let status: RunStatus;
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      status = await lab.request({ type: 'runStatus' });
      if (status.state !== 'playing') break;
    }
    const runMs = performance.now() - t0;
    const loadAfter = loadavg()[0]!;
    await state.filter({ hasText: status.state }).waitFor();
    await page.evaluate((m) => performance.mark(m), MARK_END);
    const probe = await page.evaluate<{ maxGap: number; maxTask: number }>(PROBE_READ);
    const trace = await browser.stopTracing();
    unsubscribe();
    writeFileSync(tracePath, trace);
    if (status.state !== 'done') throw new Error(`the run ${status.state}: ${status.error ?? ''}`);

    const { series } = (await lab.request({ type: 'runSeries' })) as { series: RunSeries };
    if (series.events < TARGET_EVENTS)
      throw new Error(`the run made ${series.events} events, fewer than ${TARGET_EVENTS}`);
    if (status.counters.lost) throw new Error(`${status.counters.lost} reads lost data`);
    const filled = await page.locator('.run-plot[data-filled="true"]').count();
    if (filled !== 6) throw new Error(`${6 - filled} plots drew nothing`);
    if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join('; ')}`);
    await page.screenshot({ path: screenshotPath });

    const parsed = JSON.parse(trace.toString('utf8')) as { traceEvents: TraceEvent[] };
    const t = analyseTrace(parsed.traceEvents);
    return {
      events: series.events,
      accesses: status.counters.accesses,
      run_ms: runMs,
      updates,
      longest_frame_ms: t.longestFrameMs,
      longest_task_ms: t.longestTaskMs,
      longest_task_cpu_ms: t.longestTaskCpuMs,
      main_thread_cpu_percent: t.cpuPercent,
      frames: t.frames,
      tasks_over_50ms: t.tasksOver50ms,
      in_page: { longest_frame_ms: probe.maxGap, longest_task_ms: probe.maxTask },
      load_average: [loadBefore, loadAfter],
      trace: tracePath,
      trace_bytes: trace.length,
      screenshot: screenshotPath,
    };
  } finally {
    await browser.close();
    lab.close();
    await host.close();
  }
}

console.log(JSON.stringify(await main()));

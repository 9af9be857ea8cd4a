// What the lab last said about a device's mirror of a process: the two page tables side by
// side for the chosen range, the mirror trace, and the ranges the latest invalidations hit.
// Replaced by replies and by `mirror` / `processes` events; nothing here is computed from
// kernel state, only matched (an address against a range the lab reported).
import { defineStore } from 'pinia';
import { ref, shallowRef } from 'vue';
import { toLabError } from '../api/errors';
import type { LabConnection } from '../api/client';
import type { LabError, MirrorEvent, MirrorView, OpResult, OpStep } from '../api/lab';

/** Lines of the mirror trace the view keeps. */
export const TRACE_LINES = 300;
/** The most rows one mirror request asks for. */
export const MAX_MIRROR_PAGES = 1024;
export const PAGE = 4096;

/** An invalidation the lab reported for the shown process: rows in [start, end) flash. */
export interface Flash {
  /** Restarts the row's flash when it changes. */
  seq: number;
  kind: MirrorEvent['kind'];
  start: number;
  end: number;
  cleared: number;
  detail: string;
}

/** The last snapshot: its first address and one HMM_DMIRROR_PROT_* byte per page. */
export interface SnapshotBytes {
  start: number;
  /** Simulated time of the snapshot, ns. */
  t: number;
  bytes: number[];
}

export type DeviceCmd = 'read' | 'write' | 'snapshot' | 'migrate' | 'migrate_to_sys' | 'release';
export type CpuOp = 'store' | 'load' | 'munmap' | 'mprotect-r' | 'mprotect-rw' | 'fork';

/** One step the view ran and what the lab answered. */
export interface StepResult {
  step: OpStep;
  result: OpResult;
  /** The first ints a device read brought back (from a `check` of its buffer). */
  head?: number[];
}

export const useMirrorStore = defineStore('mirror', () => {
  const proc = ref('p');
  const device = ref('');
  const at = ref('buf');
  /** First page of the range, within the mapping, and its length in pages. */
  const offset = ref(0);
  const pages = ref(16);
  const child = ref('c');

  const view = shallowRef<MirrorView | null>(null);
  const viewError = ref<LabError | null>(null);
  const events = shallowRef<MirrorEvent[]>([]);
  /** Invalidations of the latest step that reported any, for the shown process. */
  const flashes = shallowRef<Flash[]>([]);
  const snapshot = shallowRef<SnapshotBytes | null>(null);
  const lastResult = shallowRef<StepResult | null>(null);
  const opError = ref<LabError | null>(null);
  const busy = ref(false);
  let lab: LabConnection | null = null;
  let fetching = false;
  let refetch = false;
  // Rows are fetched only while the Mirror view is on screen: during a run, other views'
  // events would otherwise have the hidden view re-fetch every second.
  let onScreen = false;
  let stale = true;

  /** The Mirror view appears (or goes); on appearing it catches up with what it missed. */
  function setShown(on: boolean): void {
    onScreen = on;
    if (on && stale) void refreshView();
  }

  function connect(connection: LabConnection): void {
    lab = connection;
    connection.onEvent((event) => {
      if (event.type === 'mirror') {
        if (event.reset) {
          events.value = [];
          flashes.value = [];
          snapshot.value = null;
        }
        if (event.events.length) addEvents(event.events);
        void refreshView();
      } else if (event.type === 'processes') void refreshView();
    });
    connection.onStatus((s) => {
      if (s === 'open') void refresh();
    });
  }

  function addEvents(list: MirrorEvent[]): void {
    events.value = [...events.value, ...list].slice(-TRACE_LINES);
    const hits = list
      .filter((e) => e.kind === 'invalidate' && e.proc === proc.value && e.start && e.end)
      .map((e): Flash => ({
        seq: e.seq,
        kind: e.kind,
        start: Number(e.start),
        end: Number(e.end),
        cleared: e.cleared ?? 0,
        detail: e.detail,
      }));
    if (hits.length) flashes.value = hits;
  }

  let picks = 0;

  /** Mark the rows a trace line covers (flash them again). */
  function highlight(e: MirrorEvent): void {
    if (!e.start || !e.end) return;
    flashes.value = [
      {
        seq: 1e9 + ++picks,
        kind: e.kind,
        start: Number(e.start),
        end: Number(e.end),
        cleared: e.cleared ?? 0,
        detail: e.detail,
      },
    ];
  }

  /** Forget what the steps run so far left on screen: it belongs to another process or lab. */
  function forgetSteps(): void {
    flashes.value = [];
    snapshot.value = null;
    lastResult.value = null;
    opError.value = null;
  }

  /**
   * Start again from the lab's current state (after connecting or reconnecting): it may be
   * another lab, so what earlier steps left goes, as the trace is replaced.
   */
  async function refresh(): Promise<void> {
    if (!lab) return;
    forgetSteps();
    try {
      events.value = (await lab.request({ type: 'mirrorEvents' })).slice(-TRACE_LINES);
    } catch (err) {
      viewError.value = toLabError(err);
    }
    await refreshView();
  }

  function rangePages(): number {
    return Math.min(MAX_MIRROR_PAGES, Math.max(1, Math.floor(Number(pages.value) || 1)));
  }

  function rangeOffset(): number {
    return Math.max(0, Math.floor(Number(offset.value) || 0));
  }

  /** Fetch the rows of the chosen range; overlapping calls collapse into one more fetch. */
  async function refreshView(): Promise<void> {
    if (!lab) return;
    if (!onScreen) {
      stale = true;
      return;
    }
    stale = false;
    if (fetching) {
      refetch = true;
      return;
    }
    fetching = true;
    try {
      do {
        refetch = false;
        if (!proc.value || !device.value || !at.value) {
          view.value = null;
          continue;
        }
        try {
          view.value = await lab.request({
            type: 'mirror',
            proc: proc.value,
            device: device.value,
            at: at.value,
            offset: rangeOffset(),
            pages: rangePages(),
          });
          viewError.value = null;
        } catch (err) {
          view.value = null;
          viewError.value = toLabError(err);
        }
      } while (refetch);
    } finally {
      fetching = false;
    }
  }

  /** Choose what to show; the rows follow. */
  function choose(
    sel: Partial<{ proc: string; device: string; at: string; offset: number; pages: number }>,
  ): void {
    // Another process or device: the earlier steps' snapshot, flashes and result were not its.
    if (sel.proc !== undefined && sel.proc !== proc.value) {
      proc.value = sel.proc;
      forgetSteps();
    }
    if (sel.device !== undefined && sel.device !== device.value) {
      device.value = sel.device;
      forgetSteps();
    }
    if (sel.at !== undefined) at.value = sel.at;
    if (sel.offset !== undefined) offset.value = sel.offset;
    if (sel.pages !== undefined) pages.value = sel.pages;
    void refreshView();
  }

  async function request(step: OpStep): Promise<OpResult | null> {
    if (!lab) {
      opError.value = { code: 'ENOTCONN', message: 'not connected to a lab' };
      return null;
    }
    try {
      const result = await lab.request({ type: 'op', op: step });
      opError.value = null;
      return result;
    } catch (err) {
      opError.value = toLabError(err);
      return null;
    }
  }

  /** Run steps in order, stopping at a refusal; the last one's answer is the result shown. */
  async function run(steps: OpStep[], show = steps.length - 1): Promise<OpResult | null> {
    busy.value = true;
    let shown: OpResult | null = null;
    try {
      for (const [i, step] of steps.entries()) {
        const r = await request(step);
        if (!r) return null;
        if (i === show) {
          shown = r;
          lastResult.value = { step, result: r };
        }
      }
      return shown;
    } finally {
      busy.value = false;
      void refreshView();
    }
  }

  /** The range fields of a step on the chosen mapping. */
  function span(): { at: string; offset: number; length: number } {
    return { at: at.value, offset: rangeOffset() * PAGE, length: rangePages() * PAGE };
  }

  /** Spawn the process and map the range's pages of anonymous rw memory (a fresh demo). */
  async function setUp(): Promise<void> {
    await run([
      { op: 'spawn', proc: proc.value },
      {
        op: 'mmap',
        proc: proc.value,
        name: at.value,
        length: (rangeOffset() + rangePages()) * PAGE,
        prot: 'rw',
        flags: ['private', 'anonymous'],
      },
      { op: 'open', proc: proc.value, device: device.value },
    ]);
  }

  /** A dmirror command on the range, opening the device in the process first if needed. */
  async function deviceCommand(cmd: DeviceCmd): Promise<void> {
    const { at: mapping, offset: off } = span();
    const n = rangePages();
    const base = { op: 'device', device: device.value, proc: proc.value, cmd };
    const steps: OpStep[] = [];
    if (!view.value?.open) steps.push({ op: 'open', proc: proc.value, device: device.value });
    let buffer: string | undefined;
    if (cmd === 'read' || cmd === 'write' || cmd === 'migrate') {
      buffer = `mirror-${cmd}`;
      // The device writes the negated index, so its bytes tell apart from a CPU store's.
      steps.push({
        op: 'buffer',
        name: buffer,
        size: n * PAGE,
        ...(cmd === 'write' && { fill: { pattern: 'negindex' } }),
      });
    }
    const show = steps.length;
    steps.push(
      cmd === 'release' ? base : { ...base, at: mapping, offset: off, pages: n, ...(buffer && { buffer }) },
    );
    const r = await run(steps, show);
    if (!r) return;
    if (cmd === 'snapshot' && r.bytes && view.value)
      snapshot.value = { start: Number(view.value.start), t: r.t, bytes: r.bytes };
    if ((cmd === 'read' || cmd === 'migrate') && buffer && r.ret === 0 && lastResult.value) {
      const check = await request({ op: 'check', buffer, length: Math.min(n * PAGE, 64) });
      if (check?.data) lastResult.value = { ...lastResult.value, head: check.data.head };
    }
  }

  /** A CPU-side step on the range, the kind that makes the kernel invalidate the mirror. */
  async function cpuOp(kind: CpuOp): Promise<void> {
    const p = proc.value;
    const s = span();
    const steps: Record<CpuOp, OpStep> = {
      store: { op: 'store', proc: p, ...s, fill: { pattern: 'index' } },
      load: { op: 'load', proc: p, ...s },
      munmap: { op: 'munmap', proc: p, ...s },
      'mprotect-r': { op: 'mprotect', proc: p, ...s, prot: 'r' },
      'mprotect-rw': { op: 'mprotect', proc: p, ...s, prot: 'rw' },
      fork: { op: 'fork', proc: p, child: child.value },
    };
    await run([steps[kind]]);
  }

  return {
    proc,
    device,
    at,
    offset,
    pages,
    child,
    view,
    viewError,
    events,
    flashes,
    snapshot,
    lastResult,
    opError,
    busy,
    connect,
    refresh,
    refreshView,
    setShown,
    choose,
    highlight,
    setUp,
    deviceCommand,
    cpuOp,
  };
});

// The Drivers view's state: the driver files the lab lists, the open one and whether it is saved,
// what the lab said when the driver was last loaded (compile diagnostics), the faults it reported
// while running it, and the last "Load & run": its steps, counters and kernel log lines.
//
// Never lose work: every edit is copied at once into localStorage (one recovery copy per file),
// and saved to the lab 800 ms after the last keystroke. A recovery copy newer than the saved
// file is restored when the file is opened again; it is dropped once the lab has saved that text.
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import { toLabError } from '../api/errors';
import type { LabConnection } from '../api/client';
import type {
  DriverDiagnostic,
  DriverError,
  DriverFileInfo,
  LabError,
  LoadDriverResult,
  LogLine,
  OpResult,
  OpStep,
  WorkloadCounters,
} from '../api/lab';
import { useLayoutStore } from './layout';
import { useRunStore } from './run';

/** Autosave this long after the last keystroke, ms. */
export const AUTOSAVE_MS = 800;
/** Kernel log lines kept for the run panel. */
const LOG_LINES = 400;
const RECOVERY_PREFIX = 'hmm-lab:driver-recovery:';
const LAST_OPEN_KEY = 'hmm-lab:driver-open';

export type { DriverDiagnostic, DriverError };

export interface OpenDriver {
  name: string;
  origin: 'user' | 'bundled';
}

/** Text for the editor to show: a new `version` replaces the editor's content. */
export interface EditorContent {
  name: string;
  origin: 'user' | 'bundled';
  source: string;
  version: number;
}

export type SaveState = 'saved' | 'unsaved' | 'saving' | 'error';

/** What the Load & run button runs after a successful load. */
export type Runner = 'ops' | 'scenario';

export interface RunStep {
  label: string;
  state: 'ok' | 'failed';
  /** What the lab answered, in one line. */
  detail: string;
}

export type RunPhase = 'idle' | 'saving' | 'loading' | 'compile-failed' | 'running' | 'done' | 'failed';

export interface DriverRun {
  phase: RunPhase;
  runner: Runner;
  /** The driver file that was loaded. */
  driver: string;
  steps: RunStep[];
  /** The lab's counters: of the steps' workloads (ops), or of the scenario run. */
  counters: Partial<WorkloadCounters> | null;
  /** Why the run stopped early, for people. */
  error: string;
}

const IDLE_RUN: DriverRun = {
  phase: 'idle',
  runner: 'ops',
  driver: '',
  steps: [],
  counters: null,
  error: '',
};

interface Recovery {
  source: string;
  /** When it was written, ms since the epoch. */
  at: number;
}

function readRecovery(name: string): Recovery | null {
  try {
    const raw = localStorage.getItem(RECOVERY_PREFIX + name);
    const r = raw ? (JSON.parse(raw) as Partial<Recovery>) : null;
    return r && typeof r.source === 'string' && typeof r.at === 'number'
      ? { source: r.source, at: r.at }
      : null;
  } catch {
    return null;
  }
}

function writeRecovery(name: string, source: string): void {
  try {
    localStorage.setItem(RECOVERY_PREFIX + name, JSON.stringify({ source, at: Date.now() }));
  } catch {
    // Storage full or disabled: the autosave still runs.
  }
}

function dropRecovery(name: string): void {
  try {
    localStorage.removeItem(RECOVERY_PREFIX + name);
  } catch {
    // nothing to drop
  }
}

/** The counters a Load & run adds up from its workload steps. */
const COUNTERS: readonly (keyof WorkloadCounters)[] = [
  'migratedToDevice',
  'migratedToSystem',
  'cpuFaults',
  'deviceFaults',
  'faultRounds',
  'evictions',
  'lost',
  'failed',
  'accesses',
];

/** Pages of the buffer the default run moves to the device and back. */
export const RUN_PAGES = 64;

export const useDriverStore = defineStore('drivers', () => {
  const files = shallowRef<DriverFileInfo[]>([]);
  const filesError = ref<LabError | null>(null);
  const open = shallowRef<OpenDriver | null>(null);
  const content = shallowRef<EditorContent | null>(null);
  const saveState = ref<SaveState>('saved');
  const saveError = ref('');
  /** One line about the open file: a restored recovery copy, a copy made of a bundled plugin. */
  const notice = ref('');
  /** The lab's compile diagnostics from the last loadDriver of the open file. */
  const diagnostics = shallowRef<DriverDiagnostic[]>([]);
  /** The last runtime fault the lab reported for a driver. */
  const fault = shallowRef<DriverError | null>(null);
  /** Where the editor should jump (a new `seq` moves it again to the same place). */
  const reveal = shallowRef<{ line: number; column: number; seq: number } | null>(null);
  const log = shallowRef<LogLine[]>([]);
  const run = shallowRef<DriverRun>(IDLE_RUN);
  const runner = ref<Runner>('ops');
  const actionError = ref<LabError | null>(null);

  let lab: LabConnection | null = null;
  /** The text in the editor (not reactive: it changes on every keystroke). */
  let text = '';
  /** The text the lab last saved for the open file. */
  let saved = '';
  let timer: ReturnType<typeof setTimeout> | undefined;
  let saving: Promise<boolean> | null = null;
  let contentVersion = 0;
  let revealSeq = 0;
  /** Counts openFile calls: only the latest one's reply is shown. */
  let opening = 0;
  let copying: Promise<boolean> | null = null;
  let runSeq = 0;
  let collecting = false;

  const userFiles = computed(() => files.value.filter((f) => f.origin === 'user'));
  const bundledFiles = computed(() => files.value.filter((f) => f.origin === 'bundled'));
  const busy = computed(() => ['saving', 'loading', 'running'].includes(run.value.phase));
  /** The Run view's loaded scenario, which Load & run can replay instead of its own ops. */
  const scenario = computed(() => {
    const st = useRunStore().status;
    return st && st.state !== 'empty' ? st.scenario : '';
  });

  function connect(connection: LabConnection): void {
    lab = connection;
    connection.onEvent((event) => {
      if (event.type === 'log' && collecting) log.value = [...log.value, event.line].slice(-LOG_LINES);
      else if (event.type === 'driverError') onFault(event.error);
    });
    connection.onStatus((s) => {
      // Back after a disconnect: list again, and save what the lab may have missed.
      if (s !== 'open') return;
      if (files.value.length || open.value) void refreshList();
      if (saveState.value === 'unsaved' || saveState.value === 'error') void save();
    });
  }

  function need(): LabConnection {
    if (!lab) throw { code: 'ENOTCONN', message: 'not connected to a lab' };
    return lab;
  }

  async function refreshList(): Promise<void> {
    try {
      files.value = await need().request({ type: 'listDrivers' });
      filesError.value = null;
    } catch (err) {
      filesError.value = toLabError(err);
    }
  }

  /** First view: the list, and the file that was open last time (with its recovery copy). */
  async function start(): Promise<void> {
    await refreshList();
    if (open.value) return;
    let last: OpenDriver | null = null;
    try {
      last = JSON.parse(localStorage.getItem(LAST_OPEN_KEY) ?? 'null') as OpenDriver | null;
    } catch {
      last = null;
    }
    const found = last && files.value.find((f) => f.name === last.name && f.origin === last.origin);
    const first = found ?? userFiles.value[0] ?? bundledFiles.value[0];
    if (first) await openFile(first.name, first.origin);
  }

  function show(name: string, origin: 'user' | 'bundled', source: string): void {
    text = source;
    content.value = { name, origin, source, version: ++contentVersion };
    open.value = { name, origin };
    diagnostics.value = [];
    try {
      localStorage.setItem(LAST_OPEN_KEY, JSON.stringify({ name, origin }));
    } catch {
      // not remembered across reloads, that is all
    }
  }

  /** Open a file, first saving the one open now. A newer recovery copy wins over the saved file. */
  async function openFile(name: string, origin: 'user' | 'bundled'): Promise<boolean> {
    const ticket = ++opening;
    const before = open.value;
    // A reply that comes back after the user picked another file (or made, renamed or deleted
    // one) is not shown: the latest choice wins.
    const stale = () => ticket !== opening || open.value !== before;
    // The file shown already stays as it is: reading it again would drop what was typed since.
    if (before?.name === name && before.origin === origin) return true;
    try {
      const file = await need().request({ type: 'readDriver', name, bundled: origin === 'bundled' });
      // Saved once the file is read, so what was typed while the lab read it is saved too.
      if (stale() || !(await flush()) || stale()) return false;
      saved = file.source;
      notice.value = '';
      saveError.value = '';
      saveState.value = 'saved';
      const rec = origin === 'user' ? readRecovery(name) : null;
      if (rec && rec.source !== file.source && rec.at > file.mtime) {
        show(name, origin, rec.source);
        notice.value = `Restored edits from ${new Date(rec.at).toLocaleTimeString()} that were not saved.`;
        markEdited();
      } else {
        if (rec) dropRecovery(name);
        show(name, origin, file.source);
      }
      actionError.value = null;
      return true;
    } catch (err) {
      if (stale()) return false;
      actionError.value = toLabError(err);
      // Removed behind the lab's back (another editor, a shell): the list says so too.
      if (actionError.value.code === 'ENOENT') await refreshList();
      return false;
    }
  }

  /** An edit in the editor: a recovery copy now, a save soon. */
  function edit(source: string): void {
    const cur = open.value;
    if (!cur || cur.origin !== 'user' || source === text) return;
    text = source;
    writeRecovery(cur.name, source);
    markEdited();
  }

  function markEdited(): void {
    saveState.value = 'unsaved';
    clearTimeout(timer);
    timer = setTimeout(() => void save(), AUTOSAVE_MS);
  }

  /** Save the open file now; resolves false when the lab refused (the recovery copy stays). */
  async function save(): Promise<boolean> {
    clearTimeout(timer);
    timer = undefined;
    const cur = open.value;
    if (!cur || cur.origin !== 'user') return true;
    if (saving) {
      await saving;
      if (text === saved && saveState.value !== 'error') return true;
    }
    const source = text;
    if (source === saved && saveState.value !== 'error') {
      saveState.value = 'saved';
      return true;
    }
    saveState.value = 'saving';
    saving = (async () => {
      try {
        const info = await need().request({ type: 'writeDriver', name: cur.name, source });
        saved = source;
        files.value = files.value.map((f) => (f.origin === 'user' && f.name === info.name ? info : f));
        saveError.value = '';
        if (open.value?.name === cur.name && text === source) {
          saveState.value = 'saved';
          dropRecovery(cur.name);
        } else saveState.value = 'unsaved';
        return true;
      } catch (err) {
        saveState.value = 'error';
        saveError.value = toLabError(err).message;
        return false;
      } finally {
        saving = null;
      }
    })();
    const ok = await saving;
    // More edits came while saving: save those too.
    if (ok && (saveState.value as SaveState) === 'unsaved' && open.value?.name === cur.name) return save();
    return ok;
  }

  /** Save anything pending before the open file changes. */
  async function flush(): Promise<boolean> {
    if (saveState.value === 'saved' && !saving) return true;
    return save();
  }

  /** A free user file name: `base.ts`, else `base-2.ts`, `base-3.ts`... */
  function freeName(base: string): string {
    const stem = base.replace(/\.ts$/, '');
    const taken = new Set(userFiles.value.map((f) => f.name));
    if (!taken.has(`${stem}.ts`)) return `${stem}.ts`;
    for (let i = 2; ; i++) if (!taken.has(`${stem}-${i}.ts`)) return `${stem}-${i}.ts`;
  }

  async function create(name: string, template?: string): Promise<boolean> {
    if (!(await flush())) return false;
    try {
      const file = await need().request({ type: 'newDriver', name, ...(template && { template }) });
      await refreshList();
      // As in openFile: what was typed meanwhile goes to the file still shown.
      if (!(await flush())) return false;
      saved = file.source;
      saveState.value = 'saved';
      notice.value = template ? `A copy of the bundled ${template}: edit it freely, the original stays.` : '';
      dropRecovery(name);
      show(file.name, 'user', file.source);
      actionError.value = null;
      return true;
    } catch (err) {
      actionError.value = toLabError(err);
      return false;
    }
  }

  /** Editing a bundled plugin edits a user copy of it: one copy, however many keys were pressed. */
  function copyBundled(): Promise<boolean> {
    const cur = open.value;
    if (!cur || cur.origin !== 'bundled') return Promise.resolve(false);
    copying ??= create(freeName(cur.name), cur.name).finally(() => (copying = null));
    return copying;
  }

  async function rename(to: string): Promise<boolean> {
    const cur = open.value;
    if (!cur || cur.origin !== 'user' || to === cur.name) return false;
    if (!(await flush())) return false;
    try {
      await need().request({ type: 'renameDriver', from: cur.name, to });
      dropRecovery(cur.name);
      await refreshList();
      actionError.value = null;
      // Another file opened while the lab renamed: it stays, under its own name.
      if (open.value !== cur) return true;
      open.value = { name: to, origin: 'user' };
      content.value = { ...content.value!, name: to, source: text, version: ++contentVersion };
      localStorage.setItem(LAST_OPEN_KEY, JSON.stringify(open.value));
      return true;
    } catch (err) {
      actionError.value = toLabError(err);
      return false;
    }
  }

  async function remove(): Promise<boolean> {
    const cur = open.value;
    if (!cur || cur.origin !== 'user') return false;
    clearTimeout(timer);
    try {
      await need().request({ type: 'deleteDriver', name: cur.name });
      dropRecovery(cur.name);
      open.value = null;
      content.value = null;
      text = saved = '';
      saveState.value = 'saved';
      await refreshList();
      actionError.value = null;
      // openFile shows its own error when the next file cannot be read.
      const next = userFiles.value[0] ?? bundledFiles.value[0];
      if (next) await openFile(next.name, next.origin);
      return true;
    } catch (err) {
      actionError.value = toLabError(err);
      return false;
    }
  }

  function jumpTo(line: number, column: number): void {
    reveal.value = { line, column, seq: ++revealSeq };
  }

  /**
   * The first fault since the last load, or since the banner was dismissed, is shown and moves
   * the cursor to its line. Later ones (the same bug on another device) are in the kernel log:
   * they neither replace it nor move the cursor under the user's typing.
   */
  function onFault(f: DriverError): void {
    if (fault.value) return;
    fault.value = f;
    if (open.value && f.file === open.value.name) jumpTo(f.line, f.column);
  }

  function dismissFault(): void {
    fault.value = null;
  }

  /**
   * Save, load the open driver into the lab and, when it compiled, run it: the Run view's
   * scenario when the runner says so, else a short sequence of device ops.
   */
  async function loadAndRun(): Promise<void> {
    const cur = open.value;
    if (!cur || busy.value) return;
    const base: DriverRun = { ...IDLE_RUN, runner: runner.value, driver: cur.name };
    run.value = { ...base, phase: 'saving' };
    if (cur.origin === 'user' && !(await flush())) {
      run.value = { ...base, phase: 'failed', error: `not saved: ${saveError.value}` };
      return;
    }
    fault.value = null;
    diagnostics.value = [];
    log.value = [];
    collecting = true;
    run.value = { ...base, phase: 'loading' };
    let reply: LoadDriverResult;
    try {
      reply = await need().request({ type: 'loadDriver', name: cur.name, source: text });
    } catch (err) {
      run.value = { ...base, phase: 'failed', error: toLabError(err).message };
      return;
    }
    if (!reply.ok) {
      diagnostics.value = reply.diagnostics;
      const first = reply.diagnostics[0];
      if (first && first.file === cur.name) jumpTo(first.line, first.column);
      run.value = {
        ...base,
        phase: 'compile-failed',
        error: `${reply.diagnostics.length} compile error${reply.diagnostics.length === 1 ? '' : 's'}`,
      };
      return;
    }
    if (!reply.devices.length) {
      // The lab binds a driver by name: a file of another name is only compiled and loaded.
      run.value = {
        ...base,
        phase: 'done',
        error: `Compiled and loaded, but no device of this machine uses the driver "${cur.name.replace(/\.ts$/, '')}": nothing to run.`,
      };
      return;
    }
    run.value = { ...base, phase: 'running' };
    if (base.runner === 'scenario' && scenario.value) await runScenario(base);
    else await runOps(base, reply.devices);
  }

  /** Spawn a process, fill a buffer, migrate it to the device and read it back on the CPU, then exit. */
  async function runOps(base: DriverRun, bound: string[]): Promise<void> {
    const c = need();
    const layout = useLayoutStore().snapshot;
    const dev = layout?.devices.find((d) => bound.includes(d.name) && d.kind === 'private' && !d.error);
    if (!dev) {
      run.value = {
        ...base,
        phase: 'failed',
        error: `no device private memory served by this driver to run on (it serves ${bound.join(', ')})`,
      };
      return;
    }
    const pageSize = useLayoutStore().snapshot?.pageSize ?? 4096;
    const proc = `drv${++runSeq}`;
    const at = 'drvbuf';
    const sequence: { label: string; op: OpStep }[] = [
      { label: `spawn ${proc}`, op: { op: 'spawn', proc } },
      { label: `open ${dev.name}`, op: { op: 'open', proc, device: dev.name } },
      {
        label: `mmap ${RUN_PAGES} pages`,
        op: {
          op: 'mmap',
          proc,
          name: at,
          length: RUN_PAGES * pageSize,
          prot: 'rw',
          flags: ['private', 'anonymous'],
        },
      },
      { label: 'store (CPU fills the pages)', op: { op: 'store', proc, at } },
      {
        label: `migrate to ${dev.name}`,
        op: { op: 'device', proc, device: dev.name, cmd: 'migrate', at, pages: RUN_PAGES },
      },
      {
        label: 'load back (CPU reads every page)',
        op: {
          op: 'run',
          workload: {
            name: 'load back',
            actors: [{ kind: 'cpu', name: 'reader', proc, at, pattern: 'sequential', writes: 0 }],
          },
        },
      },
    ];
    const steps: RunStep[] = [];
    const counters: Partial<WorkloadCounters> = {};
    let error = '';
    for (const { label, op } of sequence) {
      let r: OpResult;
      try {
        r = await c.request({ type: 'op', op });
      } catch (err) {
        error = `${label}: ${toLabError(err).message}`;
        steps.push({ label, state: 'failed', detail: toLabError(err).message });
        break;
      }
      if (op.op === 'device') {
        counters.migratedToDevice = (counters.migratedToDevice ?? 0) + (r.cpages ?? 0);
        counters.deviceFaults = (counters.deviceFaults ?? 0) + (r.faults ?? 0);
      }
      for (const k of COUNTERS) if (typeof r[k] === 'number') counters[k] = (counters[k] ?? 0) + r[k];
      const failed = (r.ret !== undefined && r.ret !== 0) || !!r.signal || (r.failed ?? 0) > 0;
      steps.push({ label, state: failed ? 'failed' : 'ok', detail: describe(r) });
      run.value = { ...base, phase: 'running', steps: [...steps], counters: { ...counters } };
      if (failed) {
        error = `${label}: ${describe(r)}`;
        break;
      }
    }
    // The process goes, whatever happened, so the next run starts clean.
    try {
      await c.request({ type: 'op', op: { op: 'exit', proc } });
    } catch {
      // it never spawned
    }
    run.value = { ...base, phase: error ? 'failed' : 'done', steps, counters, error };
  }

  /** Replay the Run view's scenario from the start at full speed, and take its counters. */
  async function runScenario(base: DriverRun): Promise<void> {
    const c = need();
    try {
      await c.request({ type: 'runControl', action: 'reset' });
      let st = await c.request({ type: 'runControl', action: 'play', speed: 0 });
      const until = Date.now() + 120_000;
      while (st.state === 'playing' && Date.now() < until) {
        await new Promise((ok) => setTimeout(ok, 150));
        st = await c.request({ type: 'runStatus' });
        run.value = { ...base, phase: 'running', counters: st.counters };
      }
      const failed = st.state === 'failed';
      run.value = {
        ...base,
        phase: failed ? 'failed' : 'done',
        steps: [
          {
            label: `scenario ${st.scenario}`,
            state: failed ? 'failed' : 'ok',
            detail: `${st.stepsDone}/${st.steps} steps, ${st.state}`,
          },
        ],
        counters: st.counters,
        error: st.error ?? '',
      };
    } catch (err) {
      run.value = { ...base, phase: 'failed', error: toLabError(err).message };
    }
  }

  return {
    files,
    filesError,
    userFiles,
    bundledFiles,
    open,
    content,
    saveState,
    saveError,
    notice,
    diagnostics,
    fault,
    reveal,
    log,
    run,
    runner,
    scenario,
    busy,
    actionError,
    connect,
    start,
    refreshList,
    openFile,
    edit,
    save,
    flush,
    freeName,
    create,
    copyBundled,
    rename,
    remove,
    jumpTo,
    dismissFault,
    loadAndRun,
  };
});

/** An op result in one line: its return, signal, pages moved, counters. */
function describe(r: OpResult): string {
  const parts: string[] = [];
  if (r.ret !== undefined) parts.push(`ret ${r.ret}`);
  if (r.signal) parts.push(`${r.signal} at ${r.faultAddr ?? '?'}`);
  if (r.cpages !== undefined) parts.push(`cpages ${r.cpages}`);
  if (r.faults !== undefined && r.op === 'device') parts.push(`faults ${r.faults}`);
  if (r.migratedToSystem !== undefined) parts.push(`${r.migratedToSystem} back to system`);
  if (r.cpuFaults !== undefined) parts.push(`${r.cpuFaults} CPU faults`);
  if (r.lost) parts.push(`${r.lost} lost`);
  if (r.failed) parts.push(`${r.failed} failed`);
  if (r.addr) parts.push(r.addr);
  return parts.join(', ') || 'ok';
}

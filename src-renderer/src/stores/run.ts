// What the lab last said about the workload run: its status and counters, and the plot series
// it aggregated. Replaced wholesale by replies and by `series` events (at most 10 a second),
// those applied at the next animation frame: the socket's task only parses, the frame redraws,
// and a hidden window redraws nothing until it shows again.
import { defineStore } from 'pinia';
import { computed, ref, shallowRef, watch } from 'vue';
import { toLabError } from '../api/errors';
import type { LabConnection } from '../api/client';
import type { LabError, RunDemo, RunEvent, RunPlot, RunSeries, RunStatus, SessionFile } from '../api/lab';
import { pickScenario } from '../run/scenario-files';

/** Speeds offered, in simulated ns per wall-clock second (0: as fast as the lab goes). */
export const SPEEDS: readonly { label: string; value: number }[] = [
  { label: '1 ms / s', value: 1e6 },
  { label: '10 ms / s', value: 1e7 },
  { label: '100 ms / s', value: 1e8 },
  { label: 'max', value: 0 },
];

export const useRunStore = defineStore('run', () => {
  const demos = shallowRef<RunDemo[]>([]);
  const status = shallowRef<RunStatus | null>(null);
  const series = shallowRef<RunSeries | null>(null);
  const error = ref<LabError | null>(null);
  /** The last session load's verdict, for the toolbar. */
  const notice = ref('');
  const busy = ref(false);
  /** The demo picked in the toolbar: kept across views, and the loaded one's once one loads. */
  const demoId = ref('');
  /** A speed picked that the lab has not answered yet: shown meanwhile. */
  const pickedSpeed = ref<number | null>(null);
  /** The speed the toolbar shows: the one being set, else the lab's. */
  const speed = computed(() => pickedSpeed.value ?? status.value?.speed ?? 0);
  let lab: LabConnection | null = null;
  /** The latest `series` event not yet shown. */
  let pending: RunEvent | null = null;

  /** Also before a reply's status is set: an event it follows must not overwrite it later. */
  function applyPending(): void {
    if (!pending) return;
    status.value = pending.status;
    series.value = pending.series;
    pending = null;
  }

  function connect(connection: LabConnection): void {
    lab = connection;
    connection.onEvent((event) => {
      if (event.type !== 'series') return;
      if (!pending) requestAnimationFrame(applyPending);
      pending = event;
    });
    connection.onStatus((s) => {
      if (s === 'open') void refresh();
    });
  }

  // A demo loaded (here, from a session, by another front end or before a reconnect) shows as
  // the one picked; a scenario file leaves the pick as it is.
  watch(
    () => status.value?.scenario,
    (name) => {
      const demo = name ? demos.value.find((d) => d.scenario.name === name) : undefined;
      if (demo) demoId.value = demo.id;
    },
  );

  /** Start again from the lab's current state (after connecting or reconnecting). */
  async function refresh(): Promise<void> {
    if (!lab) return;
    try {
      demos.value = await lab.request({ type: 'runDemos' });
      if (!demos.value.some((d) => d.id === demoId.value)) demoId.value = demos.value[0]?.id ?? '';
      const st = await lab.request({ type: 'runStatus' });
      applyPending();
      status.value = st;
      if (st.state !== 'empty') {
        const snap = await lab.request({ type: 'runSeries' });
        applyPending();
        status.value = snap.status;
        series.value = snap.series;
      } else series.value = null;
    } catch (err) {
      error.value = toLabError(err);
    }
  }

  /** Send one request; the lab's refusal lands in `error`, null comes back. */
  async function call<T>(fn: (c: LabConnection) => Promise<T>): Promise<T | null> {
    if (!lab) {
      error.value = { code: 'ENOTCONN', message: 'not connected to a lab' };
      return null;
    }
    busy.value = true;
    try {
      const r = await fn(lab);
      error.value = null;
      return r;
    } catch (err) {
      error.value = toLabError(err);
      return null;
    } finally {
      busy.value = false;
    }
  }

  /** Boot a scenario's machine in the lab; `source` prefixes a refusal (the file it came from). */
  async function loadScenario(scenario: unknown, machineFile?: unknown, source?: string): Promise<void> {
    notice.value = '';
    const st = await call((c) =>
      c.request({ type: 'runLoad', scenario, ...(machineFile !== undefined && { machineFile }) }),
    );
    if (!st) {
      if (source && error.value)
        error.value = { ...error.value, message: `${source}: ${error.value.message}` };
      return;
    }
    applyPending();
    status.value = st;
  }

  async function load(demoId: string): Promise<void> {
    const demo = demos.value.find((d) => d.id === demoId);
    if (demo) await loadScenario(demo.scenario);
  }

  /** Load a scenario file picked in the app, with the machine file it names. */
  async function openScenario(files: readonly File[]): Promise<void> {
    let pick;
    try {
      pick = await pickScenario(files);
    } catch (e) {
      error.value = { code: 'EINPUT', message: (e as Error).message };
      return;
    }
    await loadScenario(pick.scenario, pick.machineFile, pick.name);
  }

  async function control(action: 'play' | 'pause' | 'step' | 'reset'): Promise<void> {
    const st = await call((c) => c.request({ type: 'runControl', action }));
    if (!st) return;
    applyPending();
    status.value = st;
  }

  /** The speed picked shows at once; the lab's shows again only if it refuses it. */
  async function setSpeed(nsPerSecond: number): Promise<void> {
    pickedSpeed.value = nsPerSecond;
    try {
      const st = await call((c) => c.request({ type: 'runSpeed', speed: nsPerSecond }));
      if (!st) return;
      applyPending();
      status.value = st;
    } finally {
      // A pick made since, still on its way, stays shown.
      if (pickedSpeed.value === nsPerSecond) pickedSpeed.value = null;
    }
  }

  function csv(plot: RunPlot): Promise<string | null> {
    return call((c) => c.request({ type: 'seriesCsv', plot }));
  }

  function saveSession(): Promise<SessionFile | null> {
    return call((c) => c.request({ type: 'saveSession' }));
  }

  /** Load a saved session; its trace text stays here (the lab checks the replay by digest). */
  async function loadSession(file: unknown): Promise<void> {
    let session = file;
    if (session && typeof session === 'object' && 'trace' in session) {
      const { trace, ...rest } = session as { trace: Record<string, unknown> };
      const { text: _text, ...digestOnly } = trace ?? {};
      session = { ...rest, trace: digestOnly };
    }
    const r = await call((c) => c.request({ type: 'loadSession', session }));
    if (!r) return;
    applyPending();
    status.value = r.status;
    notice.value = r.message;
  }

  return {
    demos,
    status,
    series,
    error,
    notice,
    busy,
    demoId,
    speed,
    connect,
    refresh,
    load,
    openScenario,
    control,
    setSpeed,
    csv,
    saveSession,
    loadSession,
  };
});

// What the lab last said about the workload run: its status and counters, and the plot series
// it aggregated. Replaced wholesale by replies and by `series` events (at most 10 a second).
import { defineStore } from 'pinia';
import { ref, shallowRef } from 'vue';
import { toLabError } from '../api/errors';
import type { LabConnection } from '../api/client';
import type { LabError, RunDemo, RunPlot, RunSeries, RunStatus, SessionFile } from '../api/lab';

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
  let lab: LabConnection | null = null;

  function connect(connection: LabConnection): void {
    lab = connection;
    connection.onEvent((event) => {
      if (event.type !== 'series') return;
      status.value = event.status;
      series.value = event.series;
    });
    connection.onStatus((s) => {
      if (s === 'open') void refresh();
    });
  }

  /** Start again from the lab's current state (after connecting or reconnecting). */
  async function refresh(): Promise<void> {
    if (!lab) return;
    try {
      demos.value = await lab.request({ type: 'runDemos' });
      const st = await lab.request({ type: 'runStatus' });
      status.value = st;
      if (st.state !== 'empty') {
        const snap = await lab.request({ type: 'runSeries' });
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

  async function load(demoId: string): Promise<void> {
    const demo = demos.value.find((d) => d.id === demoId);
    if (!demo) return;
    notice.value = '';
    const st = await call((c) => c.request({ type: 'runLoad', scenario: demo.scenario }));
    if (st) status.value = st;
  }

  async function control(action: 'play' | 'pause' | 'step' | 'reset'): Promise<void> {
    const st = await call((c) => c.request({ type: 'runControl', action }));
    if (st) status.value = st;
  }

  async function setSpeed(speed: number): Promise<void> {
    const st = await call((c) => c.request({ type: 'runSpeed', speed }));
    if (st) status.value = st;
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
    connect,
    refresh,
    load,
    control,
    setSpeed,
    csv,
    saveSession,
    loadSession,
  };
});

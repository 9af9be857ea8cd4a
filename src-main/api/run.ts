// Workload runs as the lab reports them: the controls a front end sends (play, pause, step,
// speed), the status and counters of the run, the aggregated plot series and saved sessions.
// Times are simulated nanoseconds; page counts are pages.
import type { RssCounter } from './process';

/** What a `run` step (or a whole run) counted. docs/WORKLOADS.md says what each means. */
export interface WorkloadCounters {
  /** Accesses the actors made (a device access waiting in a fault batch counts once, when issued). */
  accesses: number;
  /** CPU page faults taken by the workload's CPU threads (the kernel's page_fault tracepoint). */
  cpuFaults: number;
  /** Distinct device pages that faulted (entries of the fault batches, duplicates merged). */
  deviceFaults: number;
  /** Fault batches the device driver serviced (each up to `batch` pages). */
  faultRounds: number;
  /** Pages migrated to device memory. */
  migratedToDevice: number;
  /** Pages migrated back to system memory (evictions, CPU faults on device pages, moves between devices). */
  migratedToSystem: number;
  /** Device pages evicted to make room (oversubscription), a subset of migratedToSystem. */
  evictions: number;
  /** Reads that found another stamp than the last write left: data lost. 0 when all is well. */
  lost: number;
  /** Accesses that ended with a signal or a device fault the policy could not resolve. */
  failed: number;
  /** Simulated time the workload took, ns. */
  ns: number;
}

export type RunState = 'empty' | 'ready' | 'playing' | 'paused' | 'done' | 'failed';

/** A finished step judged against its `expect`, as `hmm-lab run` judges it. */
export interface RunStepResult {
  index: number;
  op: string;
  /** No expectation missed (a step without `expect` passes once it ran). */
  ok: boolean;
  /** One line per missed expectation, naming the field: `steps[5].expect.cpages: expected 64, got 63`. */
  failures: string[];
}

/** Where a run stands: what is loaded, how far it went, its counters so far. */
export interface RunStatus {
  state: RunState;
  /** The loaded scenario's name ('' when none). */
  scenario: string;
  seed: number;
  /** Steps of the scenario, and how many have finished. */
  steps: number;
  stepsDone: number;
  /** Accesses planned by the current `run` step's actors, and made so far. */
  accessesPlanned: number;
  accessesDone: number;
  /** Simulated ns per wall-clock second while playing; 0 runs as fast as the lab can. */
  speed: number;
  /** Simulated time now, ns. */
  t: number;
  /** Counters of every `run` step so far, summed. */
  counters: WorkloadCounters;
  /** Every finished step, judged against its `expect`, in order. */
  results: RunStepResult[];
  /** Why the run stopped, when state is 'failed'. */
  error?: string;
}

/** One device's series, aligned with RunSeries.t. */
export interface DeviceSeries {
  name: string;
  /** Device memory, pages. */
  pages: number;
  toDevice: number[];
  toSystem: number[];
  /** Running totals at the end of each bucket. */
  toDeviceTotal: number[];
  toSystemTotal: number[];
  /** Device pages in use at the end of each bucket. */
  occupancy: number[];
}

/** A process's rss counters at the end of each bucket (null before it existed or after it exited). */
export interface ProcessRssSeries {
  proc: string;
  counters: Record<RssCounter, (number | null)[]>;
}

/** A histogram of fault latencies in logarithmic buckets. */
export interface LatencyHistogram {
  /** Lower edge of each bucket, ns; bucket i spans [edges[i], edges[i + 1]). */
  edges: number[];
  cpu: number[];
  device: number[];
}

/**
 * The plots of a run, aggregated in the lab: a fixed number of time buckets whatever the
 * number of events (buckets widen by doubling as simulated time goes on).
 */
export interface RunSeries {
  /** Start of each bucket, ns: the shared x axis. */
  t: number[];
  bucketNs: number;
  devices: DeviceSeries[];
  cpuFaults: number[];
  deviceFaults: number[];
  rss: ProcessRssSeries[];
  latency: LatencyHistogram;
  /** Events aggregated so far (tracepoints and workload reports). */
  events: number;
}

/** The plots a front end may export as CSV. */
export type RunPlot = 'migrations' | 'cumulative' | 'faults' | 'latency' | 'rss' | 'occupancy';

/** A bundled demo: a scenario whose steps end in `run` workloads. */
export interface RunDemo {
  id: string;
  title: string;
  description: string;
  scenario: Record<string, unknown>;
}

/**
 * A saved session (docs/SESSIONS.md): enough to rebuild the run exactly. Loading replays the
 * scenario with its seed up to the saved position and checks the trace it makes.
 */
export interface SessionFile {
  format: 'hmm-lab-session';
  version: 1;
  /** The machine object the scenario boots (inline, as in a machine file). */
  machine: unknown;
  /** The scenario, its machine inline. */
  scenario: Record<string, unknown>;
  /** The driver of each device, by device name. */
  drivers: Record<string, string>;
  /**
   * How far the run had gone: steps finished, and scheduler actions (accesses issued and fault
   * batches serviced) of the `run` step going on then.
   */
  position: { stepsDone: number; actions: number };
  speed: number;
  counters: WorkloadCounters;
  trace: {
    format: 'jsonl';
    /** Records in the trace (the last `records` the lab kept), and how many older ones it dropped. */
    records: number;
    dropped: number;
    /** FNV-1a 64-bit hash of `text`, as 16 hex digits. */
    digest: string;
    /** The JSON-lines trace; may be left out of a file, the digest still checks the replay. */
    text?: string;
  };
}

export type RunRequest =
  | { type: 'runDemos' }
  /**
   * Boot the scenario's machine and get ready to play it. A scenario whose `machine` is a path
   * comes with that machine file's contents in `machineFile` (the lab reads no files).
   */
  | { type: 'runLoad'; scenario: unknown; machineFile?: unknown }
  | { type: 'runControl'; action: 'play' | 'pause' | 'step' | 'reset'; speed?: number }
  | { type: 'runSpeed'; speed: number }
  | { type: 'runStatus' }
  | { type: 'runSeries' }
  /** One plot's series as CSV text (a header line, then one line per bucket). */
  | { type: 'seriesCsv'; plot: RunPlot }
  | { type: 'saveSession'; trace?: boolean }
  | { type: 'loadSession'; session: unknown };

export interface RunResponses {
  runDemos: RunDemo[];
  runLoad: RunStatus;
  runControl: RunStatus;
  runSpeed: RunStatus;
  runStatus: RunStatus;
  runSeries: { status: RunStatus; series: RunSeries };
  seriesCsv: string;
  saveSession: SessionFile;
  loadSession: { status: RunStatus; verified: boolean; message: string };
}

/**
 * `series` is pushed while a run plays, at most 10 a second however many events the kernel
 * emits, and once more whenever the run stops or changes state.
 */
export type RunEvent = { type: 'series'; status: RunStatus; series: RunSeries };

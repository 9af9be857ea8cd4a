// The one typed contract between the lab and every front end: the Electron preload
// bridge, the web host's WebSocket and the tests all speak these messages.
import type { DeviceKind, LayoutSnapshot } from './layout';
import type { OpResult, PageTableView, ProcessInfo, RssSeries } from './process';
import type { MirrorEvent, MirrorView } from './mirror';
import type { RunEvent, RunRequest, RunResponses } from './run';
import type { DriverFilesRequest, DriverFilesResponses } from './drivers-files';
import type { DriverErrorEvent, DriversRequest, DriversResponses } from './drivers';

/**
 * One scenario step (../shared/design/SCENARIOS.md): `{ "op": "mmap", "proc": "p", ... }`.
 * The lab validates it; a bad field is refused with EINPUT naming `op.<field>`.
 */
export type OpStep = { op: string } & Record<string, unknown>;

/** Hotplug a device into the running machine, as a machine file's `devices` entry does at boot. */
export interface DeviceSpec {
  name: string;
  kind: DeviceKind;
  /** Size of the device memory: bytes, hex, or a K/M/G/T suffixed string. */
  memory: string | number;
  /** Physical start, required for `public` and `pmem` devices. */
  start?: string | number;
  driver?: string;
}

export type LabRequest =
  | { type: 'layout' }
  | { type: 'loadMachine'; machine: unknown; name?: string }
  | { type: 'addDevice'; device: DeviceSpec }
  | { type: 'removeDevice'; name: string }
  | { type: 'dmesg' }
  | { type: 'op'; op: OpStep }
  | { type: 'processes' }
  /**
   * Page-table rows of a process for up to 4096 pages from `offset` (pages) into the mapping
   * `at` (a mapping name or a hex address inside a vma); default: its first vma from the start.
   */
  | { type: 'pageTable'; proc: string; at?: string; offset?: number; pages?: number }
  | { type: 'rssSeries' }
  /**
   * The Mirror view: the CPU and `device`'s page tables of process `proc` side by side, for
   * up to 4096 pages from `offset` (pages) into the mapping `at`.
   */
  | { type: 'mirror'; proc: string; device: string; at?: string; offset?: number; pages?: number }
  /** The latest lines of the mirror trace (what `mirror` events carried so far). */
  | { type: 'mirrorEvents' }
  | RunRequest
  | DriverFilesRequest
  | DriversRequest;

/** What each request answers, keyed by request type. */
export interface LabResponses extends RunResponses, DriverFilesResponses, DriversResponses {
  layout: LayoutSnapshot;
  loadMachine: LayoutSnapshot;
  addDevice: LayoutSnapshot;
  removeDevice: LayoutSnapshot;
  dmesg: LogLine[];
  op: OpResult;
  processes: ProcessInfo[];
  pageTable: PageTableView;
  rssSeries: RssSeries[];
  mirror: MirrorView;
  mirrorEvents: MirrorEvent[];
}

export type LabResponse<R extends LabRequest> = LabResponses[R['type']];

/** A kernel log line (printk), with its level and the simulated time it was written. */
export interface LogLine {
  seq: number;
  level: 'emerg' | 'err' | 'warn' | 'info' | 'debug';
  text: string;
}

/**
 * Pushed by the lab whenever its state changes; front ends never poll. `processes` follows
 * every op that may change a process (its `seq` grows by one each time, so a page-table
 * view knows to refresh); `rss` is coalesced, at most a few a second.
 */
export type LabEvent =
  | { type: 'layout'; layout: LayoutSnapshot }
  | { type: 'log'; line: LogLine }
  | { type: 'processes'; processes: ProcessInfo[]; seq: number }
  | { type: 'rss'; series: RssSeries[] }
  /** New lines of the mirror trace after a step; `reset` when a new machine starts it over. */
  | { type: 'mirror'; events: MirrorEvent[]; reset?: boolean }
  | RunEvent
  /** A driver plugin faulted or broke a kernel rule (api/drivers.ts). */
  | DriverErrorEvent;

/** A failed request: the message is for people, `code` the kernel error or "EINPUT" for bad input. */
export interface LabError {
  code: string;
  message: string;
}

/** The API a front end sees, whatever carries it (preload bridge, WebSocket, direct call in tests). */
export interface LabApi {
  request<R extends LabRequest>(req: R): Promise<LabResponse<R>>;
  /** Subscribe to lab events; returns the unsubscribe function. */
  onEvent(listener: (event: LabEvent) => void): () => void;
}

/** Wire envelopes shared by the WebSocket host and the lab worker. */
export type WireRequest = { id: number; req: LabRequest };
export type WireMessage =
  { id: number; ok: true; res: unknown } | { id: number; ok: false; error: LabError } | { event: LabEvent };

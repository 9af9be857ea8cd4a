// Driver plugins in the running lab: the editor loads a driver's source into the machine, and
// the lab reports a plugin's faults and broken kernel rules as they happen. (Where sources are
// kept is drivers-files.ts.) The driver API plugins import is src-main/drivers/api/hmm-lab.d.ts;
// the renderer gives Monaco its text with `import dts from '…/drivers/api/hmm-lab.d.ts?raw'`.

/**
 * Why a plugin failed, or 'rule' for a kernel rule it broke ("BUG: Bad page state ... in
 * dmirror.free"): compile (syntax, a forbidden import), throw, bad-value (a result that may not
 * cross or is not what the callback returns), timeout, memory, stack (its budgets), crash (the
 * engine trapped), stopped (a call to a driver stopped by an earlier fault).
 */
export type DriverErrorKind =
  'compile' | 'throw' | 'bad-value' | 'timeout' | 'memory' | 'stack' | 'crash' | 'stopped' | 'rule';

/** One problem, at a position of the plugin's TypeScript (1-based line and column). */
export interface DriverDiagnostic {
  kind: DriverErrorKind;
  file: string;
  line: number;
  column: number;
  message: string;
}

/** A plugin's fault or broken rule while the machine runs. */
export interface DriverError extends DriverDiagnostic {
  /** The callback that was running: "fault", "free", "commands.read", "<load>". */
  callback: string;
  /** The device and its driver's name. */
  device?: string;
  driver?: string;
}

export type DriversRequest =
  /**
   * Compile `source` and make it the driver of every device whose driver is `name` (a bundled
   * plugin's name such as "dmirror", or a name the machine file gives): each is unbound (its
   * device memory in use migrated home), then probed with the new source; processes that had
   * it open have it open again. The running machine keeps going. The source also serves those
   * devices on machines loaded later in this session. With no such device the source is only
   * checked (compiled and loaded, its probe not run).
   */
  { type: 'loadDriver'; name: string; source: string };

/** `ok: false` when the source does not compile or load, or a device's probe failed. */
export type LoadDriverResult =
  { ok: true; devices: string[] } | { ok: false; diagnostics: DriverDiagnostic[]; devices?: string[] };

export interface DriversResponses {
  loadDriver: LoadDriverResult;
}

/** Pushed when a plugin faults or breaks a kernel rule (its dev_info lines come as `log` events). */
export interface DriverErrorEvent {
  type: 'driverError';
  error: DriverError;
}

// The two errors that cross the sandbox wall: PluginError (the plugin failed; the host reports it)
// and HostError (a host function refused; the plugin sees an exception carrying the errno).
import { errname } from '../../kernel/include/errno';

/**
 * Why a plugin failed.
 * - compile: the TypeScript did not parse, or the module imported something it may not.
 * - throw: an exception escaped the callback (the sandbox stays usable).
 * - bad-value: the callback returned, or passed to a host function, a value that may not cross
 *   (the sandbox stays usable).
 * - timeout, memory, stack: the callback ran past its budget; the sandbox is stopped.
 * - crash: the engine itself failed (a trap in the WebAssembly); the sandbox is stopped.
 * - stopped: a call to a sandbox stopped by an earlier timeout/memory/stack/crash fault.
 */
export type PluginErrorKind =
  'compile' | 'throw' | 'bad-value' | 'timeout' | 'memory' | 'stack' | 'crash' | 'stopped';

/** The faults after which the plugin's own state can no longer be trusted. */
export const STOPPING_KINDS: ReadonlySet<PluginErrorKind> = new Set(['timeout', 'memory', 'stack', 'crash']);

/** A PluginError as plain data, for the wire. Lines and columns are 1-based, in the TypeScript source. */
export interface PluginErrorInfo {
  kind: PluginErrorKind;
  /** The callback that was running ("fault", "driver.free"), or "<load>" for module evaluation. */
  callback: string;
  message: string;
  file: string;
  line: number;
  column: number;
  /** The plugin's stack, mapped to TypeScript positions, when it had one. */
  stack?: string;
  /** The errno of an uncaught HostError. */
  errno?: number;
}

export class PluginError extends Error implements PluginErrorInfo {
  readonly kind: PluginErrorKind;
  readonly callback: string;
  /** The message without the position prefix. */
  readonly reason: string;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly pluginStack?: string;
  readonly errno?: number;

  constructor(info: PluginErrorInfo) {
    super(`${info.file}:${info.line}:${info.column}: ${info.callback}: ${info.message}`);
    this.name = 'PluginError';
    this.kind = info.kind;
    this.callback = info.callback;
    this.reason = info.message;
    this.file = info.file;
    this.line = info.line;
    this.column = info.column;
    if (info.stack !== undefined) this.pluginStack = info.stack;
    if (info.errno !== undefined) this.errno = info.errno;
  }

  toJSON(): PluginErrorInfo {
    const info: PluginErrorInfo = {
      kind: this.kind,
      callback: this.callback,
      message: this.reason,
      file: this.file,
      line: this.line,
      column: this.column,
    };
    if (this.pluginStack !== undefined) info.stack = this.pluginStack;
    if (this.errno !== undefined) info.errno = this.errno;
    return info;
  }
}

/** Thrown by a host function to refuse a call: the plugin sees an Error with `.errno` (negative, -EBUSY). */
export class HostError extends Error {
  readonly errno: number;
  constructor(errno: number, message?: string) {
    super(message ?? errname(errno));
    this.name = 'HostError';
    this.errno = errno;
  }
}

// A driver plugin running in its own QuickJS engine: the host calls the plugin's exported callbacks,
// the plugin calls the host functions it was given, and nothing but plain data crosses either way.
//
// Budgets (SandboxOptions), each turned into a PluginError naming the callback and its source line:
// - time: QuickJS polls its interrupt handler about every 5,000 loop iterations or 3,300 calls; a
//   callback may run `budget` polls (default 1,000: ~5M loop iterations, 0.1-0.3 s). Counting polls
//   rather than reading a clock makes the cut-off point the same on every run and every machine.
// - memory: `memoryLimit` bytes of QuickJS heap (default 32 MiB).
// - stack: `stackSize` bytes of QuickJS stack (default 256 KiB, ~1,300 plain JS frames), well inside
//   the engine's 5 MiB WebAssembly stack. Recursion inside the engine's own C code (JSON of deep
//   nesting, Proxy chains) can exhaust V8's native stack first: that surfaces as a RangeError out of
//   the WebAssembly, reported as kind 'stack'.
//
// After 'throw' and 'bad-value' the sandbox stays usable, holding whatever state the plugin left.
// After 'timeout', 'memory', 'stack' or 'crash' it is stopped: the plugin's state may be half
// updated (or the engine's own, after a trap), so the engine instance is dropped once the outermost
// call unwinds and later calls fail with kind 'stopped'. To go on, load the plugin again.
import type { QuickJSHandle, QuickJSWASMModule } from 'quickjs-emscripten-core';
import { compilePlugin, type CompiledPlugin } from './compile';
import { API_GLOBAL, newEngine, PRELUDE_FILE, type Engine, type HostApi, type HostFunction } from './engine';
import { HostError, PluginError, type PluginErrorKind } from './errors';
import { Kind } from './ffi';
import { newQuickJSInstance } from './quickjs';
import { mapStack, type Position } from './source-map';
import {
  checkPlain,
  DEFAULT_LIMITS,
  flatShape,
  parseFlatShape,
  type CallValue,
  type Expect,
  type FlatValue,
  type ValueLimits,
} from './values';

export type { HostApi, HostFunction };

export interface SandboxOptions {
  /** Interrupt polls one callback may run for (nested callbacks share the outer one's). */
  budget?: number;
  /** Bytes of QuickJS heap. */
  memoryLimit?: number;
  /** Bytes of QuickJS stack. */
  stackSize?: number;
  limits?: ValueLimits;
  /** Seeds the plugin's Math.random. */
  seed?: number;
  /** The module specifier the plugin imports its API from. */
  apiModule?: string;
}

export const DEFAULT_SANDBOX_OPTIONS: Readonly<Required<SandboxOptions>> = {
  budget: 1000,
  memoryLimit: 32 * 2 ** 20,
  stackSize: 256 * 2 ** 10,
  limits: DEFAULT_LIMITS,
  seed: 1,
  apiModule: 'hmm-lab',
};

/** Longest JSON text one crossing may take (the engine builds it; the host refuses more). */
const MAX_JSON = 1 << 20;
/** Polls and extra heap the host may spend reading a failed plugin's exception. */
const DESCRIBE_BUDGET = 20;
const DESCRIBE_HEADROOM = 2 ** 20;
const NO_ARGS: readonly CallValue[] = [];
const NO_FAULT = Symbol('no host fault');

/** QuickJS's stack check measures the engine's 5 MiB WebAssembly stack: a limit past it is no limit. */
const MAX_STACK_SIZE = 4 * 2 ** 20;

function checkOptions(o: Required<SandboxOptions>): void {
  const bad = (what: string): never => {
    throw new RangeError(`sandbox option ${what}`);
  };
  if (!Number.isSafeInteger(o.budget) || o.budget < 1) bad(`budget: ${o.budget}`);
  if (!Number.isSafeInteger(o.memoryLimit) || o.memoryLimit < 2 ** 20) bad(`memoryLimit: ${o.memoryLimit}`);
  if (!Number.isSafeInteger(o.stackSize) || o.stackSize < 2 ** 14 || o.stackSize > MAX_STACK_SIZE) {
    bad(`stackSize: ${o.stackSize} (16 KiB to 4 MiB)`);
  }
}

/** A thrown value as the prelude's describe() read it. */
interface Thrown {
  name: string;
  message: string;
  stack: string;
  errno?: number;
}

/** Saved budget state of the call a nested call interrupts. */
interface Frame {
  limit: number;
  interrupted: boolean;
}

/** A value that may not cross (internal: becomes a bad-value PluginError or a TypeError in the plugin). */
class BadValue {
  constructor(readonly reason: string) {}
}

/** An exception the plugin's code threw while the host was reading a value. */
class VmException {
  constructor(readonly handle: QuickJSHandle) {}
}

export class PluginSandbox {
  readonly filename: string;
  /** The user's TypeScript, exactly as given. */
  readonly source: string;
  private readonly compiled: CompiledPlugin;
  private readonly opts: Readonly<Required<SandboxOptions>>;
  private engine: Engine | undefined;
  private exportList: readonly string[] = [];
  private fault: PluginError | undefined;
  /** Set when the engine trapped: its memory is not to be touched again. */
  private corrupt = false;
  /** An exception out of a host function, rethrown by the call that led to it. */
  private hostFault: unknown = NO_FAULT;
  private polls = 0;
  private limit = Infinity;
  private interrupted = false;
  private depth = 0;

  /** Compile and evaluate a plugin; rejects with a PluginError (callback "<load>") when it fails. */
  static async load(
    source: string,
    filename: string,
    hostApi: HostApi,
    options: SandboxOptions = {},
  ): Promise<PluginSandbox> {
    const opts = { ...DEFAULT_SANDBOX_OPTIONS, ...options };
    checkOptions(opts);
    const sandbox = new PluginSandbox(source, compilePlugin(source, filename), opts);
    sandbox.start(await newQuickJSInstance(), hostApi);
    return sandbox;
  }

  /**
   * load() on an engine instance made beforehand (drivers/plugin/engines.ts keeps some ready), so
   * a machine can bind its plugin drivers without waiting: compiles (compilePlugin keeps the
   * last ones) and evaluates now, or throws the PluginError load() would reject with.
   */
  static loadWith(
    module: QuickJSWASMModule,
    source: string,
    filename: string,
    hostApi: HostApi,
    options: SandboxOptions = {},
  ): PluginSandbox {
    const opts = { ...DEFAULT_SANDBOX_OPTIONS, ...options };
    checkOptions(opts);
    const sandbox = new PluginSandbox(source, compilePlugin(source, filename), opts);
    sandbox.start(module, hostApi);
    return sandbox;
  }

  private constructor(source: string, compiled: CompiledPlugin, opts: Required<SandboxOptions>) {
    this.source = source;
    this.filename = compiled.filename;
    this.compiled = compiled;
    this.opts = opts;
  }

  /** The exported functions, by path: "probe", "ops.fault". */
  get callbacks(): readonly string[] {
    return this.exportList;
  }

  has(path: string): boolean {
    return this.engine?.callbacks.has(path) ?? this.exportList.includes(path);
  }

  /** Where an export is declared in the TypeScript ("fault" -> its name's line and column). */
  siteOf(path: string): Position {
    return this.site(path);
  }

  /** The fault that stopped the sandbox, if one did. */
  get stopped(): PluginError | undefined {
    return this.fault;
  }

  /** Interrupt polls spent since load: with the same plugin and calls, the same on every run. */
  get pollsUsed(): number {
    return this.polls;
  }

  /**
   * Call an exported function. Returns its plain result (checked by `expect` if given) or throws a
   * PluginError; an exception a host function threw (other than HostError) is rethrown as it was.
   */
  call(path: string, args: readonly CallValue[] = NO_ARGS, expect?: Expect): CallValue {
    const e = this.engine;
    if (e === undefined) throw this.stoppedError(path);
    const fn = e.callbacks.get(path);
    if (fn === undefined) throw new TypeError(`${this.filename} exports no function ${path}`);
    const frame = this.enter();
    try {
      const v = this.invoke(e, path, fn, args);
      if (expect) {
        const bad = expect(v);
        if (bad !== undefined) throw this.error('bad-value', path, `returned a bad value: ${bad}`);
      }
      return v;
    } finally {
      this.leave(frame);
    }
  }

  /** Drop the engine. Calls after this fail with kind 'stopped'. */
  dispose(): void {
    this.fault ??= this.error('stopped', '<dispose>', 'the sandbox was disposed');
    if (this.depth === 0) this.engine = undefined;
  }

  // --- calling in ---------------------------------------------------------------------------------

  private invoke(e: Engine, path: string, fn: QuickJSHandle, args: readonly CallValue[]): CallValue {
    const raw = e.raw;
    const argc = args.length;
    if (argc > raw.maxArgs) throw new TypeError(`${path}: more than ${raw.maxArgs} arguments`);
    // Numbers, the common case, go in as fresh pointers; strings and objects through handles. All are
    // made before any is placed, since making an object runs engine code that uses the same slots.
    const ptrs = new Array<number>(argc);
    const owned: number[] = [];
    const handles: QuickJSHandle[] = [];
    try {
      for (let i = 0; i < argc; i++) {
        const v = args[i];
        if (typeof v === 'number') {
          if (!Number.isFinite(v)) throw new TypeError(`${path}() argument ${i + 1} is ${v}`);
          owned.push((ptrs[i] = raw.newNumber(v)));
        } else if (v === undefined) ptrs[i] = raw.undefinedPtr;
        else if (v === null) ptrs[i] = raw.nullPtr;
        else if (typeof v === 'boolean') ptrs[i] = v ? raw.truePtr : raw.falsePtr;
        else {
          const h = this.toHandle(e, v, `${path}() argument ${i + 1}`);
          handles.push(h);
          ptrs[i] = h.value as number;
        }
      }
      raw.setArgs(ptrs);
      const res = this.guard(path, () => raw.call(fn.value as number, argc));
      if (res === 0) throw this.failure(e, path, raw.own(raw.error));
      const v = this.result(e, path, res);
      if (this.depth === 1 && e.rt.hasPendingJob()) this.drainJobs(e, path);
      if (this.hostFault !== NO_FAULT) throw this.hostFault;
      if (this.fault) throw this.fault;
      return v;
    } finally {
      if (!this.corrupt) {
        for (const p of owned) raw.free(p);
        for (const h of handles) h.dispose();
      }
    }
  }

  /** A callback's result, from the owned pointer the call returned (freed here). */
  private result(e: Engine, path: string, res: number): CallValue {
    try {
      return this.fromPtr(e, res, 'result');
    } catch (x) {
      if (x instanceof BadValue) throw this.error('bad-value', path, `returned a bad value: ${x.reason}`);
      if (x instanceof VmException) throw this.failure(e, path, x.handle);
      throw x;
    } finally {
      if (!this.corrupt) e.raw.free(res);
    }
  }

  /** Promise jobs the callback queued run before it returns, inside its budget. */
  private drainJobs(e: Engine, path: string): void {
    const r = this.guard(path, () => e.rt.executePendingJobs(-1));
    if (r.error) throw this.failure(e, path, r.error);
  }

  private enter(): Frame {
    const frame = { limit: this.limit, interrupted: this.interrupted };
    this.limit = Math.min(this.limit, this.polls + this.opts.budget);
    this.interrupted = false;
    this.depth++;
    return frame;
  }

  private leave(frame: Frame): void {
    this.depth--;
    this.limit = frame.limit;
    this.interrupted = frame.interrupted;
    if (this.depth > 0) return;
    this.hostFault = NO_FAULT;
    if (this.fault) this.engine = undefined;
  }

  private shouldInterrupt(): boolean {
    this.polls++;
    if (this.polls > this.limit || this.fault !== undefined || this.hostFault !== NO_FAULT) {
      this.interrupted = true;
      return true;
    }
    return false;
  }

  /** Run engine code; an exception out of the engine itself (not a JS exception inside it) is fatal. */
  private guard<T>(callback: string, run: () => T): T {
    try {
      return run();
    } catch (x) {
      const overflow = x instanceof RangeError && /call stack/i.test(x.message);
      this.corrupt = true;
      const err = this.stop(
        this.error(
          overflow ? 'stack' : 'crash',
          callback,
          overflow
            ? 'recursed past the native stack inside a built-in (deeply nested JSON, arrays or proxies)'
            : `the engine failed: ${x instanceof Error ? x.message : String(x)}`,
        ),
      );
      throw this.hostFault !== NO_FAULT ? this.hostFault : err;
    }
  }

  // --- failures -----------------------------------------------------------------------------------

  /** The error to throw for an exception that escaped plugin code. Consumes the handle. */
  private failure(e: Engine, callback: string, handle: QuickJSHandle): unknown {
    try {
      if (this.hostFault !== NO_FAULT) return this.hostFault;
      if (this.fault) return this.fault;
      const info = this.describe(e, handle);
      const at = info ? this.locate(info.stack, callback) : this.site(callback);
      if (this.interrupted) {
        return this.stop(
          this.error(
            'timeout',
            callback,
            `ran past its budget of ${this.opts.budget} interrupt polls (an endless loop?)`,
            at,
          ),
        );
      }
      if (info === undefined || this.outOfMemory(info)) {
        return this.stop(
          this.error('memory', callback, `ran past its memory limit of ${this.opts.memoryLimit} bytes`, at),
        );
      }
      if (info.name === 'InternalError' && info.message === 'stack overflow') {
        return this.stop(
          this.error('stack', callback, `recursed past its stack limit of ${this.opts.stackSize} bytes`, at),
        );
      }
      const text = info.name && info.name !== 'Error' ? `${info.name}: ${info.message}` : info.message;
      return this.error('throw', callback, text || 'threw', at, info.errno);
    } finally {
      if (!this.corrupt) handle.dispose();
    }
  }

  /**
   * QuickJS throws null when it cannot even allocate the error object, so an uncaught null is taken
   * for exhaustion too (a plugin's own `throw null` reads the same, and is reported as such).
   */
  private outOfMemory(info: Thrown): boolean {
    if (info.name === 'InternalError') return /^out of memory$|^string too long$/.test(info.message);
    return info.name === '' && info.message === 'threw null';
  }

  private stop(err: PluginError): PluginError {
    this.fault ??= err;
    return err;
  }

  /** Read a thrown value inside the engine, with a little budget and heap of its own. */
  private describe(e: Engine, handle: QuickJSHandle): Thrown | undefined {
    const { vm, rt } = e;
    const saved = { limit: this.limit, interrupted: this.interrupted };
    this.limit = this.polls + DESCRIBE_BUDGET;
    rt.setMemoryLimit(this.opts.memoryLimit + DESCRIBE_HEADROOM);
    try {
      const r = vm.callFunction(e.helpers.describe, vm.undefined, handle);
      if (r.error) {
        r.error.dispose();
        return undefined;
      }
      const json = vm.getString(r.value);
      r.value.dispose();
      const d = JSON.parse(json) as { name: unknown; message: unknown; stack: unknown; errno?: unknown };
      if (typeof d.name !== 'string' || typeof d.message !== 'string' || typeof d.stack !== 'string') {
        return undefined;
      }
      const out: Thrown = {
        name: d.name,
        message: d.message,
        stack: d.stack,
      };
      if (typeof d.errno === 'number' && Number.isSafeInteger(d.errno)) out.errno = d.errno;
      return out;
    } catch {
      return undefined;
    } finally {
      rt.setMemoryLimit(this.opts.memoryLimit);
      this.limit = saved.limit;
      this.interrupted = saved.interrupted;
    }
  }

  /** The innermost frame in the plugin's file, and the stack mapped to TypeScript. */
  private locate(stack: string, callback: string): Position & { stack?: string } {
    const { first, frames } = mapStack(stack, this.filename, this.compiled.map, PRELUDE_FILE);
    const at = first ?? this.site(callback);
    return frames.length > 0 ? { ...at, stack: frames.join('\n') } : at;
  }

  /** Where an export is declared: the position for a failure with no stack of its own. */
  private site(callback: string): Position {
    return this.compiled.sites.get(callback) ?? { line: 1, column: 1 };
  }

  private error(
    kind: PluginErrorKind,
    callback: string,
    message: string,
    at: Position & { stack?: string } = this.site(callback),
    errno?: number,
  ): PluginError {
    return new PluginError({
      kind,
      callback,
      message,
      file: this.filename,
      line: at.line,
      column: at.column,
      ...(at.stack === undefined ? {} : { stack: at.stack }),
      ...(errno === undefined ? {} : { errno }),
    });
  }

  private stoppedError(callback: string): PluginError {
    const f = this.fault!;
    return new PluginError({
      kind: 'stopped',
      callback,
      message: `the plugin was stopped by ${f.kind === 'stopped' ? 'dispose()' : `an earlier fault: ${f.message}`}`,
      file: f.file,
      line: f.line,
      column: f.column,
    });
  }

  // --- values -------------------------------------------------------------------------------------

  /** A host value into the engine (the host is trusted; a bad value is its bug: TypeError). */
  private toHandle(e: Engine, v: CallValue | void, where: string): QuickJSHandle {
    const vm = e.vm;
    switch (typeof v) {
      case 'number':
        if (!Number.isFinite(v)) throw new TypeError(`${where} is ${v}`);
        return vm.newNumber(v);
      case 'string':
        if (v.length > this.opts.limits.maxString) {
          throw new TypeError(`${where} is a string of ${v.length} characters`);
        }
        return vm.newString(v);
      case 'boolean':
        return v ? vm.true : vm.false;
      case 'undefined':
        return vm.undefined;
      case 'object': {
        if (v === null) return vm.null;
        if (v instanceof Float64Array) return this.typedHandle(e, v, where);
        const flat = flatShape(v);
        if (flat) return this.flatHandle(e, flat, where);
        const bad = checkPlain(v, this.opts.limits, where);
        if (bad !== undefined) throw new TypeError(bad);
        if (isNumberArray(v))
          return this.helper(e, 'numbersIn', [e.raw.newFloat64s(v), e.raw.newNumber(v.length)], where);
        return this.helper(e, 'decode', [e.raw.newString(JSON.stringify(v))], where);
      }
      default:
        throw new TypeError(`${where} is a ${typeof v}, which cannot enter a plugin`);
    }
  }

  /** A Float64Array into the engine: its bytes copied once, a Float64Array over them inside. */
  // (The host's batches are the kernel's entries: unlike a lone number, no element is checked.)
  private typedHandle(e: Engine, v: Float64Array, where: string): QuickJSHandle {
    if (v.length > this.opts.limits.maxNodes)
      throw new TypeError(`${where}: more than ${this.opts.limits.maxNodes} values`);
    return this.helper(e, 'typedIn', [e.raw.newFloat64s(v)], where);
  }

  /** A flat object into the engine: its values as float64s, its shape by number. */
  private flatHandle(e: Engine, { shape, sig, values }: FlatValue, where: string): QuickJSHandle {
    let id = e.shapesIn.get(sig);
    if (id === undefined) {
      const h = this.helper(
        e,
        'shapeIn',
        [e.raw.newString(JSON.stringify([shape.keys, shape.bools]))],
        where,
      );
      id = e.raw.number(h.value as number);
      h.dispose();
      e.shapesIn.set(sig, id);
    }
    return this.helper(e, 'flatIn', [e.raw.newNumber(id), e.raw.newFloat64s(values)], where);
  }

  /** A prelude helper called with owned arguments (freed here); its result, owned. */
  private helper(e: Engine, name: keyof Engine['helpers'], args: number[], where: string): QuickJSHandle {
    const raw = e.raw;
    for (let i = 0; i < args.length; i++) raw.setArg(i, args[i]!);
    const r = this.guard(where, () => raw.call(e.helpers[name].value as number, args.length));
    for (const a of args) raw.free(a);
    if (r === 0) throw this.failure(e, where, raw.own(raw.error));
    return raw.own(r);
  }

  /** A flat object out of the engine: float64s NaN, its shape's number, its values. */
  private flatValue(e: Engine, numbers: number[], where: string): CallValue {
    const id = numbers[1]!;
    let shape = e.shapesOut.get(id);
    if (!shape) {
      const h = this.helper(e, 'shapeOut', [e.raw.newNumber(id)], where);
      const text = e.raw.kind(h.value as number) === Kind.String ? e.vm.getString(h) : '';
      h.dispose();
      const parsed = parseFlatShape(text, numbers.length - 2, this.opts.limits);
      if (typeof parsed === 'string') throw new BadValue(`${where}: ${parsed}`);
      e.shapesOut.set(id, (shape = parsed));
    }
    const { keys, bools } = shape;
    if (keys.length !== numbers.length - 2)
      throw new BadValue(`${where}: a flat object whose shape does not match its values`);
    const o: Record<string, number | boolean> = {};
    for (let i = 0; i < keys.length; i++) {
      const x = numbers[i + 2]!;
      if (!Number.isFinite(x)) throw new BadValue(`${where}.${keys[i]}: ${x} is not a finite number`);
      o[keys[i]!] = bools[i] === '1' ? x !== 0 : x;
    }
    return o;
  }

  /**
   * A value out of the engine, from a borrowed pointer: plain data, checked again here. Throws
   * BadValue, or VmException when the plugin's code (a getter, a Proxy trap) threw while it was read.
   */
  private fromPtr(e: Engine, ptr: number, where: string): CallValue {
    const { raw, vm } = e;
    switch (raw.kind(ptr)) {
      case Kind.Number: {
        const n = raw.number(ptr);
        if (!Number.isFinite(n)) throw new BadValue(`${where}: ${n} is not a finite number`);
        return n;
      }
      case Kind.Undefined:
        return undefined;
      case Kind.Boolean:
        return raw.isTrue(ptr);
      case Kind.String: {
        const s = vm.getString(raw.borrow(ptr));
        const max = this.opts.limits.maxString;
        if (s.length > max)
          throw new BadValue(`${where}: a string of ${s.length} characters (the limit is ${max})`);
        return s;
      }
      case Kind.Object: {
        raw.setArg(0, ptr);
        const r = this.guard(where, () => raw.call(e.helpers.out.value as number, 1));
        if (r === 0) throw new VmException(raw.own(raw.error));
        if (raw.kind(r) === Kind.Object) {
          const numbers = raw.float64s(r);
          raw.free(r);
          if (numbers.length >= 2 && Number.isNaN(numbers[0])) return this.flatValue(e, numbers, where);
          // The engine checked these, but a Float64Array's bytes left unchecked: check them here.
          const max = this.opts.limits.maxNodes;
          if (numbers.length > max) throw new BadValue(`${where}: more than ${max} values`);
          for (let i = 0; i < numbers.length; i++)
            if (!Number.isFinite(numbers[i]!))
              throw new BadValue(`${where}[${i}]: ${numbers[i]} is not a finite number`);
          return numbers;
        }
        const h = raw.own(r);
        const text = vm.getString(h);
        h.dispose();
        if (text.startsWith('!')) throw new BadValue(where + text.slice(1));
        if (text.length > MAX_JSON) throw new BadValue(`${where}: more than ${MAX_JSON} characters of data`);
        const v = JSON.parse(text) as unknown;
        const bad = checkPlain(v, this.opts.limits, where);
        if (bad !== undefined) throw new BadValue(bad);
        return v as CallValue;
      }
      default:
        throw new BadValue(`${where}: a ${vm.typeof(raw.borrow(ptr))} cannot leave the plugin`);
    }
  }

  // --- calling out --------------------------------------------------------------------------------

  /** A plugin's call of a host function, on the raw path: returns an owned JSValue* (0: undefined). */
  private hostCall(e: Engine, name: string, impl: HostFunction, argc: number, argv: number): number {
    const raw = e.raw;
    try {
      if (this.fault || this.hostFault !== NO_FAULT)
        return this.throwInto(e, e.vm.newError('the plugin is stopping'));
      const args = new Array<CallValue>(argc);
      for (let i = 0; i < argc; i++) {
        try {
          args[i] = this.fromPtr(e, raw.arg(argv, i), `${name}() argument ${i + 1}`);
        } catch (x) {
          if (x instanceof BadValue) return this.throwInto(e, this.vmError(e, 'TypeError', x.reason));
          if (x instanceof VmException) return this.throwInto(e, x.handle);
          throw x;
        }
      }
      let out: CallValue | void;
      try {
        out = impl(...args);
      } catch (x) {
        if (x instanceof HostError)
          return this.throwInto(e, this.hostError(e, `${name}: ${x.message}`, x.errno));
        throw x;
      }
      switch (typeof out) {
        case 'number':
          if (Number.isFinite(out)) return raw.newNumber(out);
          break;
        case 'undefined':
          return 0;
        case 'boolean':
          return raw.dup(out ? raw.truePtr : raw.falsePtr);
      }
      const h = this.toHandle(e, out, `${name}() result`);
      const p = raw.dup(h.value as number);
      h.dispose();
      return p;
    } catch (x) {
      // A host bug (or a nested plugin fault) must not unwind through the engine's C frames: it is
      // kept, the plugin is interrupted, and the call that led here rethrows it.
      if (this.hostFault === NO_FAULT) this.hostFault = x;
      try {
        return this.throwInto(e, e.vm.newError(`${name} failed in the host`));
      } catch {
        return 0;
      }
    }
  }

  private throwInto(e: Engine, error: QuickJSHandle): number {
    const p = e.raw.throwing(error);
    error.dispose();
    return p;
  }

  private vmError(e: Engine, name: string, message: string): QuickJSHandle {
    const err = e.vm.newError({ name, message });
    return err;
  }

  private hostError(e: Engine, message: string, errno: number): QuickJSHandle {
    const { vm } = e;
    const m = vm.newString(message);
    const n = vm.newNumber(errno);
    const r = vm.callFunction(e.helpers.hostError, vm.undefined, m, n);
    m.dispose();
    n.dispose();
    return r.error ?? r.value;
  }

  // --- loading ------------------------------------------------------------------------------------

  private start(module: QuickJSWASMModule, hostApi: HostApi): void {
    const e = newEngine(module, { ...this.opts, maxJson: MAX_JSON }, hostApi, {
      interrupt: () => this.shouldInterrupt(),
      hostCall: (engine, name, impl, argc, argv) => this.hostCall(engine, name, impl, argc, argv),
    });
    this.engine = e;
    const { vm, rt } = e;

    const frame = this.enter();
    try {
      const r = this.guard('<load>', () => vm.evalCode(this.compiled.js, this.filename, { type: 'module' }));
      if (r.error) throw this.loadFailure(e, r.error);
      let ns = r.value;
      if (rt.hasPendingJob()) this.drainJobs(e, '<load>');
      const state = vm.getPromiseState(ns);
      if (state.type === 'rejected') {
        ns.dispose();
        throw this.loadFailure(e, state.error);
      }
      if (state.type === 'pending') {
        ns.dispose();
        throw this.error('throw', '<load>', 'the module never finished evaluating (top-level await)');
      }
      if (!state.notAPromise) {
        ns.dispose();
        ns = state.value;
      }
      vm.unwrapResult(vm.evalCode(`delete globalThis.${API_GLOBAL}`, '<host>', { type: 'global' })).dispose();
      this.readExports(e, ns);
      ns.dispose();
      if (this.fault) throw this.fault;
    } catch (x) {
      this.stop(x instanceof PluginError ? x : this.error('crash', '<load>', String(x)));
      throw x;
    } finally {
      this.leave(frame);
    }
  }

  /** A module that fails to link (an import it may not make) is a compile error at the import. */
  private loadFailure(e: Engine, handle: QuickJSHandle): unknown {
    const err = this.failure(e, '<load>', handle);
    const denied =
      err instanceof PluginError &&
      err.kind === 'throw' &&
      /plugins may import only .*, not '(.*)'$/.exec(err.reason);
    if (!denied) return err;
    return this.error('compile', '<load>', denied[0], this.importSite(denied[1]!));
  }

  private importSite(specifier: string): Position {
    const src = this.source;
    const found = [`'${specifier}'`, `"${specifier}"`].map((q) => src.indexOf(q)).filter((i) => i >= 0);
    if (found.length === 0) return { line: 1, column: 1 };
    const i = Math.min(...found);
    const before = src.slice(0, i).split('\n');
    return { line: before.length, column: before[before.length - 1]!.length + 1 };
  }

  private readExports(e: Engine, ns: QuickJSHandle): void {
    const { vm, helpers } = e;
    const r = vm.callFunction(helpers.exportPaths, vm.undefined, ns);
    if (r.error) throw this.failure(e, '<load>', r.error);
    const paths = JSON.parse(vm.getString(r.value)) as unknown;
    r.value.dispose();
    if (!Array.isArray(paths)) throw this.error('crash', '<load>', 'could not list the exports');
    for (const path of paths) {
      if (typeof path !== 'string') continue;
      const p = vm.newString(path);
      const f = vm.callFunction(helpers.lookup, vm.undefined, ns, p);
      p.dispose();
      if (f.error) throw this.failure(e, '<load>', f.error);
      if (vm.typeof(f.value) === 'function') e.callbacks.set(path, f.value);
      else f.value.dispose();
    }
    this.exportList = Object.freeze([...e.callbacks.keys()]);
  }
}

function isNumberArray(v: unknown): v is number[] {
  if (!Array.isArray(v) || v.length === 0) return false;
  for (const x of v) if (typeof x !== 'number') return false;
  return true;
}

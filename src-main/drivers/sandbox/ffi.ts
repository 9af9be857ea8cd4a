// The hot path into and out of QuickJS, on raw JSValue pointers. quickjs-emscripten's handle API costs
// about 2 us a call and 10 us a host callback (a lifetime per value, scopes, generators); these cost
// a few tenths of a microsecond, which is what lets 100,000 fault callbacks run in a fraction of a second.
// They reach into quickjs-emscripten-core 0.32 internals (the module's FFI table, the context's
// C-to-host callback table), so that package is pinned exactly and RawVm checks they exist.
import {
  WeakLifetime,
  type QuickJSContext,
  type QuickJSHandle,
  type QuickJSWASMModule,
} from 'quickjs-emscripten-core';

/** The FFI functions used here; pointers are plain numbers at run time. */
interface Ffi {
  QTS_Call(ctx: number, fn: number, thisObj: number, argc: number, argv: number): number;
  QTS_ResolveException(ctx: number, value: number): number;
  QTS_FreeValuePointer(ctx: number, value: number): void;
  QTS_NewFloat64(ctx: number, n: number): number;
  QTS_GetFloat64(ctx: number, value: number): number;
  QTS_Typeof(ctx: number, value: number): number;
  QTS_ArgvGetJSValueConstPointer(argv: number, index: number): number;
  QTS_DupValuePointer(ctx: number, value: number): number;
  QTS_Throw(ctx: number, error: number): number;
  QTS_IsEqual(ctx: number, a: number, b: number, op: number): number;
  QTS_GetArrayBuffer(ctx: number, value: number): number;
  QTS_GetArrayBufferLength(ctx: number, value: number): number;
  QTS_NewArrayBuffer(ctx: number, data: number, length: number): number;
}

interface Emscripten {
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
}

/** What the host needs to know of a value's type to take the fast path. */
export const enum Kind {
  Number,
  Undefined,
  Boolean,
  String,
  /** An object, an array or null. */
  Object,
  /** A function, symbol or bigint. */
  Other,
}

/** A host function on the raw path: the arguments array and count; returns an owned JSValue* or 0. */
export type RawHostFunction = (argc: number, argv: number) => number;

type CToHost = (ctx: number, thisPtr: number, argc: number, argv: number, fnId: number) => number;

const ARGV_SLOTS = 32;
const CHAR_N = 0x6e;
const CHAR_U = 0x75;
const CHAR_B = 0x62;
const CHAR_O = 0x6f;
const CHAR_D = 0x64;
const CHAR_S = 0x73;
const CHAR_T = 0x74;

export class RawVm {
  readonly ctx: number;
  readonly undefinedPtr: number;
  readonly nullPtr: number;
  readonly truePtr: number;
  readonly falsePtr: number;
  /** The exception of the last call() that returned 0. */
  error = 0;
  private readonly ffi: Ffi;
  private readonly em: Emscripten;
  private readonly argv: number;
  private argvView: Uint32Array;
  private readonly hosts = new Map<unknown, RawHostFunction>();

  constructor(
    module: QuickJSWASMModule,
    private readonly vm: QuickJSContext,
  ) {
    const internals = module as unknown as { ffi?: Ffi; module?: Emscripten };
    const ctx = (vm as unknown as { ctx?: { value?: number } }).ctx?.value;
    const callbacks = (vm as unknown as { cToHostCallbacks?: { callFunction?: CToHost } }).cToHostCallbacks;
    const getFunction = (vm as unknown as { getFunction?: (id: number) => unknown }).getFunction;
    if (
      !internals.ffi?.QTS_Call ||
      !internals.module?._malloc ||
      typeof ctx !== 'number' ||
      typeof callbacks?.callFunction !== 'function' ||
      typeof getFunction !== 'function'
    ) {
      throw new Error('quickjs-emscripten-core is not the 0.32 this sandbox was written against');
    }
    this.ffi = internals.ffi;
    this.em = internals.module;
    this.ctx = ctx;
    this.undefinedPtr = vm.undefined.value as number;
    this.nullPtr = vm.null.value as number;
    this.truePtr = vm.true.value as number;
    this.falsePtr = vm.false.value as number;
    this.argv = this.em._malloc(ARGV_SLOTS * 4);
    this.argvView = new Uint32Array(this.em.HEAPU8.buffer, this.argv, ARGV_SLOTS);

    // Host functions made by newHostFunction bypass the generic dispatcher; others keep it.
    const generic = callbacks.callFunction;
    callbacks.callFunction = (c, thisPtr, argc, argv, fnId) => {
      const raw = this.hosts.get(getFunction.call(vm, fnId));
      return raw ? raw(argc, argv) : generic(c, thisPtr, argc, argv, fnId);
    };
  }

  /** A function object inside the engine that calls `fn` on the raw path. */
  newHostFunction(name: string, fn: RawHostFunction): QuickJSHandle {
    const key = (): void => undefined;
    this.hosts.set(key, fn);
    return this.vm.newFunction(name, key);
  }

  /** Set argument `i` of the next call (argc <= 32). */
  setArg(i: number, ptr: number): void {
    this.args()[i] = ptr;
  }

  /** Set the arguments of the next call (at most 32), the heap looked at once. */
  setArgs(ptrs: readonly number[]): void {
    const view = this.args();
    for (let i = 0; i < ptrs.length; i++) view[i] = ptrs[i]!;
  }

  /** The argument slots, over the heap as it is now (it moves when the engine's memory grows). */
  private args(): Uint32Array {
    if (this.argvView.buffer !== this.em.HEAPU8.buffer) {
      this.argvView = new Uint32Array(this.em.HEAPU8.buffer, this.argv, ARGV_SLOTS);
    }
    return this.argvView;
  }

  get maxArgs(): number {
    return ARGV_SLOTS;
  }

  /** Call with the arguments set: an owned result pointer, or 0 with `error` owned by the caller. */
  call(fn: number, argc: number): number {
    const ffi = this.ffi;
    const result = ffi.QTS_Call(this.ctx, fn, this.undefinedPtr, argc, this.argv);
    const error = ffi.QTS_ResolveException(this.ctx, result);
    if (error === 0) return result;
    ffi.QTS_FreeValuePointer(this.ctx, result);
    this.error = error;
    return 0;
  }

  kind(ptr: number): Kind {
    const s = this.ffi.QTS_Typeof(this.ctx, ptr);
    const heap = this.em.HEAPU8;
    const c0 = heap[s];
    const c1 = heap[s + 1];
    const c2 = heap[s + 2];
    this.em._free(s);
    if (c0 === CHAR_N) return Kind.Number;
    if (c0 === CHAR_U && c2 === CHAR_D) return Kind.Undefined; // not "unknown"
    if (c0 === CHAR_B && c1 === CHAR_O) return Kind.Boolean;
    if (c0 === CHAR_S && c1 === CHAR_T) return Kind.String;
    if (c0 === CHAR_O) return Kind.Object;
    return Kind.Other;
  }

  /** Only for a pointer of Kind.Number (on anything else QuickJS would run valueOf). */
  number(ptr: number): number {
    return this.ffi.QTS_GetFloat64(this.ctx, ptr);
  }

  isTrue(ptr: number): boolean {
    return this.ffi.QTS_IsEqual(this.ctx, ptr, this.truePtr, 0) === 1;
  }

  newNumber(n: number): number {
    return this.ffi.QTS_NewFloat64(this.ctx, n);
  }

  /** A new string (owned). */
  newString(s: string): number {
    const h = this.vm.newString(s);
    const ptr = this.dup(h.value as number);
    h.dispose();
    return ptr;
  }

  /** An owned copy of a value, as a host function returns it. */
  dup(ptr: number): number {
    return this.ffi.QTS_DupValuePointer(this.ctx, ptr);
  }

  free(ptr: number): void {
    this.ffi.QTS_FreeValuePointer(this.ctx, ptr);
  }

  /** The float64s in an ArrayBuffer (only ever called on one). */
  float64s(ptr: number): number[] {
    const bytes = this.ffi.QTS_GetArrayBufferLength(this.ctx, ptr);
    const data = this.ffi.QTS_GetArrayBuffer(this.ctx, ptr);
    if (data === 0) throw new Error('not an ArrayBuffer');
    const n = bytes / 8;
    let out: number[];
    if (data % 8 === 0) {
      // Straight from the engine's heap: one copy, no intermediate buffers.
      const heap = new Float64Array(this.em.HEAPU8.buffer, data, n);
      out = new Array<number>(n);
      for (let i = 0; i < n; i++) out[i] = heap[i]!;
    } else out = Array.from(new Float64Array(this.em.HEAPU8.slice(data, data + bytes).buffer));
    this.em._free(data);
    return out;
  }

  /** A new ArrayBuffer holding `values` as float64s (owned). */
  newFloat64s(values: readonly number[] | Float64Array): number {
    const n = values.length;
    // QuickJS takes the malloc'd block over and frees it with the ArrayBuffer.
    const data = this.em._malloc(n * 8);
    if (data % 8 === 0) {
      const heap = new Float64Array(this.em.HEAPU8.buffer, data, n);
      if (values instanceof Float64Array) heap.set(values);
      else for (let i = 0; i < n; i++) heap[i] = values[i]!;
    } else this.em.HEAPU8.set(new Uint8Array(Float64Array.from(values).buffer), data);
    return this.ffi.QTS_NewArrayBuffer(this.ctx, data, n * 8);
  }

  /** Argument `i` of a host call (borrowed). */
  arg(argv: number, i: number): number {
    return this.ffi.QTS_ArgvGetJSValueConstPointer(argv, i);
  }

  /** What a host function returns to throw `error` (which stays the caller's to dispose). */
  throwing(error: QuickJSHandle): number {
    return this.ffi.QTS_Throw(this.ctx, error.value as number);
  }

  /** A handle that owns `ptr` (disposing it frees the value). */
  own(ptr: number): QuickJSHandle {
    return (
      this.vm as unknown as { memory: { heapValueHandle(p: number): QuickJSHandle } }
    ).memory.heapValueHandle(ptr);
  }

  /** A handle that borrows `ptr` (disposing it frees nothing). */
  borrow(ptr: number): QuickJSHandle {
    return new WeakLifetime(ptr as never, undefined, undefined, this.vm.runtime) as unknown as QuickJSHandle;
  }
}

// One plugin's engine, set up before the plugin runs: a QuickJS runtime with its memory and stack
// limits and interrupt handler, a context without Date, the prelude's helpers, and the API object the
// plugin imports, built inside the engine from host functions.
import {
  DefaultIntrinsics,
  type QuickJSContext,
  type QuickJSHandle,
  type QuickJSRuntime,
  type QuickJSWASMModule,
} from 'quickjs-emscripten-core';
import { RawVm } from './ffi';
import { PRELUDE_SOURCE, type PreludeHelpers } from './prelude';
import { MAX_FLAT, type CallValue, type FlatShape, type ValueLimits } from './values';

/** A host function: plain values in, a plain value out; throw HostError to fail with an errno. */
export type HostFunction = (...args: CallValue[]) => CallValue | void;

/**
 * The API a plugin imports: host functions and numeric constants (errno values, flags), in plain
 * objects nested at most 4 deep.
 */
export interface HostApi {
  readonly [name: string]: HostFunction | HostApi | number;
}

export interface Engine {
  rt: QuickJSRuntime;
  vm: QuickJSContext;
  raw: RawVm;
  helpers: Record<keyof PreludeHelpers, QuickJSHandle>;
  /** Export path to function, read once at load (as the kernel reads a driver's const ops). */
  callbacks: Map<string, QuickJSHandle>;
  /** The flat shapes the engine was told of (flatShape's sig -> its number there). */
  shapesIn: Map<string, number>;
  /** The flat shapes the engine numbered, learnt as they first arrive. */
  shapesOut: Map<number, FlatShape>;
}

export interface EngineOptions {
  memoryLimit: number;
  stackSize: number;
  seed: number;
  limits: ValueLimits;
  maxJson: number;
  apiModule: string;
}

export interface EngineHooks {
  /** Polled by QuickJS while it runs; true stops the running code with an uncatchable error. */
  interrupt(): boolean;
  /** A plugin's call of a host function: returns an owned JSValue pointer, or 0 for undefined. */
  hostCall(e: Engine, name: string, impl: HostFunction, argc: number, argv: number): number;
}

/** Where the API object waits for the virtual module to take it; deleted once the plugin is loaded. */
export const API_GLOBAL = '__hmm_lab_api__';
export const PRELUDE_FILE = '<prelude>';
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const HELPERS: (keyof PreludeHelpers)[] = [
  'out',
  'numbersIn',
  'typedIn',
  'decode',
  'shapeIn',
  'flatIn',
  'shapeOut',
  'describe',
  'hostError',
  'deepFreeze',
  'exportPaths',
  'lookup',
];

export function newEngine(
  module: QuickJSWASMModule,
  opts: EngineOptions,
  hostApi: HostApi,
  hooks: EngineHooks,
): Engine {
  const rt = module.newRuntime();
  rt.setMemoryLimit(opts.memoryLimit);
  rt.setMaxStackSize(opts.stackSize);
  rt.setInterruptHandler(() => hooks.interrupt());
  const keys = apiKeys(hostApi);
  rt.setModuleLoader((name) =>
    name === opts.apiModule
      ? apiModuleSource(keys)
      : { error: new Error(`plugins may import only '${opts.apiModule}', not '${name}'`) },
  );
  const vm = rt.newContext({ intrinsics: { ...DefaultIntrinsics, Date: false } });
  const e: Engine = {
    rt,
    vm,
    raw: new RawVm(module, vm),
    helpers: prelude(vm, opts),
    callbacks: new Map(),
    shapesIn: new Map(),
    shapesOut: new Map(),
  };
  const api = buildApi(e, hostApi, '', 0, hooks);
  vm.unwrapResult(vm.callFunction(e.helpers.deepFreeze, vm.undefined, api)).dispose();
  vm.setProp(vm.global, API_GLOBAL, api);
  api.dispose();
  return e;
}

function prelude(vm: QuickJSContext, opts: EngineOptions): Engine['helpers'] {
  const fn = vm.unwrapResult(vm.evalCode(PRELUDE_SOURCE, PRELUDE_FILE, { type: 'global', strict: true }));
  const { seed, limits, maxJson } = opts;
  const args = [seed, limits.maxString, limits.maxDepth, limits.maxNodes, maxJson, MAX_FLAT].map((n) =>
    vm.newNumber(n),
  );
  const obj = vm.unwrapResult(vm.callFunction(fn, vm.undefined, args));
  for (const a of args) a.dispose();
  fn.dispose();
  const helpers = Object.fromEntries(HELPERS.map((n) => [n, vm.getProp(obj, n)])) as Engine['helpers'];
  obj.dispose();
  return helpers;
}

/** The API object, built inside the engine from host functions: no host object is ever exposed. */
function buildApi(
  e: Engine,
  tree: HostApi,
  prefix: string,
  depth: number,
  hooks: EngineHooks,
): QuickJSHandle {
  const { vm } = e;
  const obj = vm.newObject();
  for (const [key, v] of Object.entries(tree)) {
    const name = prefix + key;
    let h: QuickJSHandle;
    if (typeof v === 'function') {
      h = e.raw.newHostFunction(key, (argc, argv) => hooks.hostCall(e, name, v, argc, argv));
    } else if (typeof v === 'number' && Number.isFinite(v)) {
      h = vm.newNumber(v);
    } else if (isPlainObject(v) && depth < 4) {
      h = buildApi(e, v, `${name}.`, depth + 1, hooks);
    } else {
      obj.dispose();
      throw new TypeError(
        `host API ${name}: only functions, finite numbers and plain objects of them, at most 4 deep`,
      );
    }
    vm.setProp(obj, key, h);
    h.dispose();
  }
  return obj;
}

function isPlainObject(v: unknown): v is HostApi {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function apiKeys(api: HostApi): string[] {
  const keys = Object.keys(api);
  for (const k of keys) if (!IDENTIFIER.test(k)) throw new TypeError(`host API key ${JSON.stringify(k)}`);
  return keys;
}

/** The virtual API module: the API object as default export and each top-level entry by name. */
function apiModuleSource(keys: string[]): string {
  const lines = [`const api = globalThis.${API_GLOBAL};`];
  keys.forEach((k, i) => lines.push(`const v${i} = api[${JSON.stringify(k)}];`, `export { v${i} as ${k} };`));
  if (!keys.includes('default')) lines.push('export default api;');
  return lines.join('\n');
}

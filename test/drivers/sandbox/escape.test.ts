// Hostile plugins trying to leave the sandbox: every door a Node realm has is absent, code cannot be
// made from strings, and nothing done to the engine's objects reaches the host's.
import { afterEach, describe, expect, it } from 'vitest';
import { HEALTHY, load, loadError, pluginError, positionOf, ts } from './helpers';

afterEach(() => {
  // A polluted host prototype would leak into every later test: assert and clean up.
  const proto = Object.prototype as Record<string, unknown>;
  expect(proto.polluted).toBeUndefined();
  delete proto.polluted;
});

describe('the plugin realm has no host capabilities', () => {
  it('sees no require, process, module, Buffer, fetch, XMLHttpRequest, timers, WebAssembly, Date or eval', async () => {
    const sb = await load(ts`
      export function globals(): string[] {
        const names = ['require', 'process', 'module', 'exports', '__dirname', 'Buffer', 'global',
          'fetch', 'XMLHttpRequest', 'WebSocket', 'setTimeout', 'setInterval', 'setImmediate',
          'queueMicrotask', 'WebAssembly', 'Date', 'performance', 'eval', 'std', 'os', 'Worker'];
        return names.filter((n) => typeof (globalThis as Record<string, unknown>)[n] !== 'undefined');
      }
    `);
    expect(sb.call('globals')).toEqual([]);
  });

  it('has its own globalThis: no host property is visible and what it sets stays inside', async () => {
    const host = globalThis as Record<string, unknown>;
    host.hostSecret = 'secret';
    try {
      const sb = await load(ts`
        export function probe(): unknown {
          (globalThis as Record<string, unknown>).leaked = 1;
          return [typeof (globalThis as Record<string, unknown>).hostSecret, typeof globalThis.constructor];
        }
      `);
      expect(sb.call('probe')).toEqual(['undefined', 'function']);
      expect(host.leaked).toBeUndefined();
    } finally {
      delete host.hostSecret;
    }
  });

  it('cannot import a Node module: a static import fails to load at its line', async () => {
    const source = ts`
      type Fs = typeof import('fs');
      import { readFileSync } from 'node:fs';
      export function read(): string {
        return String(readFileSync('/etc/passwd'));
      }
    `;
    const err = await loadError(load(source));
    expect(err.kind).toBe('compile');
    expect(err.reason).toBe("plugins may import only 'hmm-lab', not 'node:fs'");
    expect({ line: err.line, column: err.column }).toEqual(positionOf(source, "'node:fs'"));
  });

  it('cannot import() a Node module at run time: the promise rejects inside the plugin', async () => {
    const sb = await load(ts`
      let state = 'pending';
      export function start(): void {
        import('fs').then(
          () => { state = 'loaded'; },
          (e: Error) => { state = 'rejected: ' + e.message; },
        );
      }
      export function result(): string { return state; }
    `);
    sb.call('start');
    expect(sb.call('result')).toBe("rejected: plugins may import only 'hmm-lab', not 'fs'");
  });
});

describe('no code from strings', () => {
  it('refuses every function constructor, including those reached through the API objects', async () => {
    const sb = await load(
      ts`
        import * as api from 'hmm-lab';
        const attempts: Record<string, () => unknown> = {
          Function: () => Function('return process')(),
          newFunction: () => new Function('return this')(),
          fnConstructor: () => (function () {}).constructor('return process')(),
          apiConstructor: () => (api.log as Function).constructor('return process')(),
          apiProto: () => Object.getPrototypeOf(api.log).constructor('return globalThis')(),
          objectConstructor: () => (globalThis.constructor as Function).constructor('return process')(),
          async: () => (async function () {}).constructor('return 1'),
          generator: () => Object.getPrototypeOf(function* () {}).constructor('yield 1'),
          asyncGenerator: () => Object.getPrototypeOf(async function* () {}).constructor('yield 1'),
          reflect: () => Reflect.construct(Function, ['return 1']),
          indirectEval: () => (0, (globalThis as Record<string, any>).eval)('1 + 1'),
        };
        export function tryAll(): Record<string, string> {
          const out: Record<string, string> = {};
          for (const [name, attempt] of Object.entries(attempts)) {
            try {
              out[name] = 'ran: ' + String(attempt());
            } catch (e) {
              out[name] = (e as Error).name;
            }
          }
          return out;
        }
      `,
      { log: () => undefined },
    );
    const results = sb.call('tryAll') as Record<string, string>;
    expect(Object.keys(results)).toHaveLength(11);
    for (const [name, outcome] of Object.entries(results))
      expect([name, outcome]).toEqual([name, 'TypeError']);
  });

  it('keeps instanceof Function working after the constructors are gone', async () => {
    const sb = await load(ts`
      export function check(): boolean[] {
        const f = () => 1;
        return [f instanceof Function, typeof Function.prototype.call === 'function', f.call(null) === 1];
      }
    `);
    expect(sb.call('check')).toEqual([true, true, true]);
  });
});

describe('the API object is built inside the engine', () => {
  it('is frozen, and its functions are the engine’s own: no host object or prototype is reachable', async () => {
    const sb = await load(
      ts`
        import * as api from 'hmm-lab';
        import { pfn } from 'hmm-lab';
        export function inspect(): unknown {
          const fn = api.default.pfn as unknown as Record<string, unknown>;
          let assigned = 'refused';
          try {
            (api.default as Record<string, unknown>).pfn = () => 0;
            assigned = 'assigned';
          } catch (e) {
            assigned = (e as Error).name;
          }
          return {
            frozen: Object.isFrozen(api.default) && Object.isFrozen(fn),
            assigned,
            sameFunction: pfn === api.default.pfn,
            protoIsEngineFunction: Object.getPrototypeOf(fn) === Function.prototype,
            apiProtoIsEngineObject: Object.getPrototypeOf(api.default) === Object.prototype,
            ownKeys: Reflect.ownKeys(fn).map(String).sort(),
          };
        }
      `,
      { pfn: () => 42 },
    );
    expect(sb.call('inspect')).toEqual({
      frozen: true,
      assigned: 'TypeError',
      sameFunction: true,
      protoIsEngineFunction: true,
      apiProtoIsEngineObject: true,
      ownKeys: ['length', 'name'],
    });
  });

  it('passes copies: a plugin mutating what a host function returned leaves the host object unchanged', async () => {
    const config = { pages: [1, 2, 3], name: 'gpu0' };
    const received: unknown[] = [];
    const sb = await load(
      ts`
        import { config, keep } from 'hmm-lab';
        export function mutate(): number {
          const c = config() as { pages: number[]; name: string };
          c.pages.push(4);
          c.name = 'evil';
          const mine = { n: 1 };
          keep(mine);
          mine.n = 2;
          return c.pages.length;
        }
      `,
      { config: () => config, keep: (v) => void received.push(v) },
    );
    expect(sb.call('mutate')).toBe(4);
    expect(config).toEqual({ pages: [1, 2, 3], name: 'gpu0' });
    expect(received).toEqual([{ n: 1 }]);
  });
});

describe('prototype pollution stays in the engine', () => {
  it('rewriting the engine’s Object.prototype (directly, via __proto__, via the API) changes nothing in the host', async () => {
    const sb = await load(
      ts`
        import * as api from 'hmm-lab';
        export function pollute(): string {
          (Object.prototype as Record<string, unknown>).polluted = 'direct';
          ({} as Record<string, any>).__proto__.polluted = 'via __proto__';
          Object.getPrototypeOf(Object.getPrototypeOf(api.default.log)).polluted = 'via the API';
          Object.assign({}, JSON.parse('{"__proto__": {"polluted": "via JSON"}}'));
          return ({} as Record<string, string>).polluted;
        }
      `,
      { log: () => undefined },
    );
    expect(sb.call('pollute')).toBe('via the API');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses a result with an own "__proto__" key, which host code would turn into a prototype', async () => {
    const source = ts`
      export function payload(): unknown {
        return JSON.parse('{"ok": 1, "__proto__": {"polluted": true}}');
      }
    `;
    const sb = await load(source);
    const err = pluginError(() => sb.call('payload'));
    expect(err.kind).toBe('bad-value');
    expect(err.reason).toBe('returned a bad value: result.__proto__: a "__proto__" key');
    expect({ line: err.line, column: err.column }).toEqual(positionOf(source, 'payload'));
  });

  it('refuses a "__proto__" key in a host function argument with a TypeError in the plugin', async () => {
    const received: unknown[] = [];
    const sb = await load(
      ts`
        import { keep } from 'hmm-lab';
        export function send(): string {
          try {
            keep(JSON.parse('{"__proto__": {"polluted": true}}'));
            return 'sent';
          } catch (e) {
            return (e as Error).name + ': ' + (e as Error).message;
          }
        }
      `,
      { keep: (v) => void received.push(v) },
    );
    expect(sb.call('send')).toBe('TypeError: keep() argument 1.__proto__: a "__proto__" key');
    expect(received).toEqual([]);
  });

  it('leaves a later plugin untouched by an earlier one’s pollution', async () => {
    const dirty = await load(ts`
      export function pollute(): void {
        (Object.prototype as Record<string, unknown>).polluted = true;
        (Array.prototype as unknown as Record<string, unknown>).push = null;
      }
    `);
    dirty.call('pollute');
    const clean = await load(HEALTHY);
    expect(clean.call('add', [1, 2])).toBe(3);
    const probe = await load(ts`
      export function check(): unknown[] {
        const a: number[] = [];
        a.push(1);
        return [({} as Record<string, unknown>).polluted ?? null, a.length];
      }
    `);
    expect(probe.call('check')).toEqual([null, 1]);
  });
});

// src-main/build/const-bindings.ts: a bundle's top-level functions and never-assigned vars become
// `const`, and the module means what it meant.
import { describe, expect, it } from 'vitest';
import { constBindings } from '../../src-main/build/const-bindings';

function transform(code: string): string {
  return constBindings(code).toString();
}

/** The module's exports, evaluated from its text. */
async function run(code: string): Promise<Record<string, unknown>> {
  return (await import(`data:text/javascript,${encodeURIComponent(code)}`)) as Record<string, unknown>;
}

const BUNDLE = `import { join } from "node:path";
var STEP = 2 ** 3;
var counter = 0;
var early = twice(STEP);
function twice(x) {
  return bump() * 0 + x * 2;
}
function bump() {
  return ++counter;
}
var Box = class {
  constructor(v) { this.v = twice(v); }
};
var [first, second] = [1, 2];
function* gen() { yield STEP; }
async function later() { return STEP; }
export { early, twice, Box, first, second, gen, later, join, counter };
`;

describe('constBindings', () => {
  it('turns top-level functions into consts where the hoisting put them, after the imports', () => {
    const out = transform(BUNDLE);
    expect(out.startsWith('import { join } from "node:path";const twice = function twice(x) {')).toBe(true);
    expect(out).toMatch(/^const bump = function bump\(\) \{$/m);
    expect(out).not.toMatch(/^function (twice|bump)/m);
  });

  it('leaves generators and async functions as declarations', () => {
    const out = transform(BUNDLE);
    expect(out).toMatch(/^function\* gen\(\)/m);
    expect(out).toMatch(/^async function later\(\)/m);
  });

  it('makes a var const unless some code assigns to its name or it is a pattern', () => {
    const out = transform(BUNDLE);
    expect(out).toMatch(/^const STEP = 2 \*\* 3;$/m);
    expect(out).toMatch(/^const early = twice\(STEP\);$/m);
    expect(out).toMatch(/^const Box = class \{$/m);
    // ++counter in bump; a destructuring declaration is left as it is.
    expect(out).toMatch(/^var counter = 0;$/m);
    expect(out).toMatch(/^var \[first, second\] = \[1, 2\];$/m);
  });

  it('keeps var for a name assigned anywhere, by a local of that name too, or declared twice', () => {
    const code = [
      'var a = 1, b = 2;',
      'var c = 3;',
      'var d = 4;',
      'var e = 5;',
      'var f = 6;',
      'var g = 7;',
      'var g = 8;',
      'function h() { let a = 0; a += 1; [c] = [a]; ({ d } = {}); ({ x: e } = {}); for (f of []); return a; }',
      'var i = 9;',
      'export { a, b, c, d, e, f, g, h, i };',
    ].join('\n');
    const out = transform(code);
    for (const name of ['a = 1, b = 2', 'c = 3', 'd = 4', 'e = 5', 'f = 6', 'g = 7', 'g = 8'])
      expect(out).toContain(`\nvar ${name};`);
    expect(out).toContain('\nconst i = 9;');
    expect(out.startsWith('const h = function h()')).toBe(true);
  });

  it('keeps var for a name a var in a block or a loop head declares again', () => {
    const code =
      'var a = 1;\nvar b = 2;\nif (a) { var a = 3; }\nfor (var b of []) ;\nvar c = 4;\nexport { a, b, c };\n';
    const out = transform(code);
    expect(out).toContain('var a = 1;');
    expect(out).toContain('var b = 2;');
    expect(out).toContain('const c = 4;');
  });

  it('leaves a function whose name is assigned as a declaration', () => {
    const out = transform('function f() { return 1; }\nf = () => 2;\nexport { f };\n');
    expect(out).toMatch(/^function f\(\)/m);
  });

  it('gives the same module: calls before the declaration, classes, live counters', async () => {
    const before = await run(BUNDLE);
    const after = await run(transform(BUNDLE));
    expect(after.early).toBe(before.early);
    expect(after.early).toBe(16);
    const BoxAfter = after.Box as new (v: number) => { v: number };
    expect(new BoxAfter(5).v).toBe(10);
    expect([after.first, after.second, after.counter]).toEqual([before.first, before.second, 2]);
    expect([...(after.gen as () => Iterable<number>)()]).toEqual([8]);
    await expect((after.later as () => Promise<number>)()).resolves.toBe(8);
  });

  it('maps each moved function back to its line in the bundle', () => {
    const s = constBindings(BUNDLE);
    const out = s.toString();
    const map = s.generateDecodedMap({ hires: true });
    const line = out.split('\n').findIndex((l) => l.startsWith('const bump = function bump'));
    // Segments: [generated column, source, source line, source column]; bump is on line 8 (index 7).
    const sourceLines = new Set(map.mappings[line]!.map((seg) => seg[2]));
    expect(sourceLines).toContain(7);
  });
});

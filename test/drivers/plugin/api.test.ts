// The driver API's one declaration file (src-main/drivers/api/hmm-lab.d.ts, which Monaco loads)
// against what the host really gives a plugin: every declared function and constant exists, with
// the declared value, and the host gives nothing undeclared.
import { readFileSync } from 'node:fs';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { driverApi } from '../../../src-main/drivers/plugin/host-api';
import type { PluginDriver } from '../../../src-main/drivers/plugin';
import { pluginLab, smallMachine } from './helpers';

const DTS = readFileSync(new URL('../../../src-main/drivers/api/hmm-lab.d.ts', import.meta.url), 'utf8');

/** The module's exported functions and constants (with their literal types), from the declaration. */
function declared(): { functions: Set<string>; constants: Map<string, number | null> } {
  const sf = ts.createSourceFile('hmm-lab.d.ts', DTS, ts.ScriptTarget.ES2022, true);
  const functions = new Set<string>();
  const constants = new Map<string, number | null>();
  sf.forEachChild((n) => {
    if (!ts.isModuleDeclaration(n) || !n.body || !ts.isModuleBlock(n.body)) return;
    for (const st of n.body.statements) {
      if (ts.isFunctionDeclaration(st) && st.name) functions.add(st.name.text);
      if (ts.isVariableStatement(st))
        for (const d of st.declarationList.declarations) {
          const t = d.type;
          const lit =
            t && ts.isLiteralTypeNode(t) && ts.isNumericLiteral(t.literal) ? Number(t.literal.text) : null;
          constants.set((d.name as ts.Identifier).text, lit);
        }
    }
  });
  return { functions, constants };
}

describe("the 'hmm-lab' declaration file is the API plugins get", () => {
  it('declares exactly the functions and constants the host provides, with their values', async () => {
    const l = await pluginLab(
      smallMachine([{ name: 'gpu0', kind: 'private', memory: '64M', driver: 'plugin:dmirror' }]),
    );
    const api = driverApi(l.bound('gpu0').driver as PluginDriver);
    const { functions, constants } = declared();
    const given = Object.entries(api);
    expect(new Set(given.filter(([, v]) => typeof v === 'function').map(([k]) => k))).toEqual(functions);
    expect(new Set(given.filter(([, v]) => typeof v === 'number').map(([k]) => k))).toEqual(
      new Set(constants.keys()),
    );
    for (const [name, value] of constants) if (value !== null) expect(api[name], name).toBe(value);
    expect(api.PAGE_SIZE).toBe(4096);
    expect(api.PMD_SIZE).toBe(2 ** 21);
  });

  it('documents every declaration (Monaco shows the comment on hover)', () => {
    const undocumented: string[] = [];
    const lines = DTS.split('\n');
    lines.forEach((l, i) => {
      const m = /^ {2}export (?:function|const|type|interface) (\w+)/.exec(l);
      if (!m) return;
      // A comment right above, or the constant's group comment a few lines up.
      let j = i - 1;
      while (j >= 0 && /^ {2}export const \w+: [\d.x]+;$/.test(lines[j]!)) j--;
      if (!/\*\/\s*$/.test(lines[j] ?? '') && !l.includes('export const')) undocumented.push(m[1]!);
    });
    expect(undocumented).toEqual([]);
  });

  it('every bundled plugin type-checks against it', () => {
    const files = ['dmirror', 'chunked-vram', 'pmem-dax'].map(
      (n) => new URL(`../../../plugins/${n}/${n}.ts`, import.meta.url).pathname,
    );
    const dts = new URL('../../../src-main/drivers/api/hmm-lab.d.ts', import.meta.url).pathname;
    const program = ts.createProgram([...files, dts], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      lib: ['lib.es2022.d.ts'],
      types: [],
      noUncheckedIndexedAccess: true,
    });
    const diags = ts
      .getPreEmitDiagnostics(program)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(diags).toEqual([]);
  });
});

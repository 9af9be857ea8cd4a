// Compiling a plugin: its TypeScript to one ES module, where each exported callback is declared, and
// refusals before anything runs.
import { describe, expect, it } from 'vitest';
import { compilePlugin, MAX_SOURCE_LENGTH } from '../../../src-main/drivers/sandbox/compile';
import { PluginError } from '../../../src-main/drivers/sandbox';
import { positionOf, ts } from './helpers';

describe('compilePlugin', () => {
  it('emits a module with the types gone and no sourceMappingURL comment', () => {
    const out = compilePlugin('export const n: number = 1;\n', 'a.ts');
    expect(out.js).toBe('export const n = 1;\n');
  });

  it('compiles a source once: again under the same name it is the same plugin, changed it is compiled anew', () => {
    const first = compilePlugin('export const n: number = 1;\n', 'once.ts');
    expect(compilePlugin('export const n: number = 1;\n', 'once.ts')).toBe(first);
    const changed = compilePlugin('export const n: number = 2;\n', 'once.ts');
    expect(changed).not.toBe(first);
    expect(changed.js).toBe('export const n = 2;\n');
    expect(compilePlugin('export const n: number = 1;\n', 'other.ts')).not.toBe(first);
  });

  it('records where each exported callback is declared', () => {
    const source = ts`
      export function probe(): number { return 0; }
      export const ops = {
        fault(): number { return 0; },
        nested: { free: () => 0 },
      };
      export default { release() {} };
    `;
    const { sites } = compilePlugin(source, 'a.ts');
    expect(sites.get('probe')).toEqual(positionOf(source, 'probe'));
    expect(sites.get('ops.fault')).toEqual(positionOf(source, 'fault'));
    expect(sites.get('ops.nested.free')).toEqual(positionOf(source, 'free'));
    expect(sites.get('default.release')).toEqual(positionOf(source, 'release'));
  });

  it('refuses a syntax error with its position, as a PluginError of kind compile', () => {
    let err: unknown;
    try {
      compilePlugin('export const pages: number = ;\n', 'bad.ts');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PluginError);
    expect(err).toMatchObject({ kind: 'compile', file: 'bad.ts', line: 1, column: 30, callback: '<load>' });
  });

  it('refuses a source past the size limit without parsing it', () => {
    expect(() => compilePlugin('x'.repeat(MAX_SOURCE_LENGTH + 1), 'big.ts')).toThrow(/the limit is 1048576/);
  });
});

// The VLQ source-map reader against maps whose answers are known: hand-made segments, and the map
// TypeScript emits for a plugin.
import { describe, expect, it } from 'vitest';
import { SourceMap } from '../../../src-main/drivers/sandbox';
import { compilePlugin } from '../../../src-main/drivers/sandbox';
import { positionOf, ts } from './helpers';

const map = (mappings: string): SourceMap =>
  new SourceMap(JSON.stringify({ version: 3, sources: ['a.ts'], names: [], mappings }));

describe('SourceMap', () => {
  it('decodes relative fields across segments and lines, negative deltas included', () => {
    // Line 1: col 0 -> 1:1; col 4 -> 1:5. Line 2: col 2 -> 3:3; col 8 -> 2:1 (back one line, back 2 cols).
    const m = map('AAAA,IAAI;EAEF,MADF');
    expect(m.originalPosition(1, 1)).toEqual({ line: 1, column: 1 });
    expect(m.originalPosition(1, 7)).toEqual({ line: 1, column: 5 });
    expect(m.originalPosition(2, 3)).toEqual({ line: 3, column: 3 });
    expect(m.originalPosition(2, 20)).toEqual({ line: 2, column: 1 });
  });

  it('takes the first segment for a column left of it, and nothing for an unmapped line', () => {
    const m = map(';;IAAI');
    expect(m.originalPosition(3, 1)).toEqual({ line: 1, column: 5 });
    expect(m.originalPosition(1, 1)).toBeUndefined();
    expect(m.originalPosition(9, 1)).toBeUndefined();
  });

  it('decodes multi-digit numbers (continuation bits)', () => {
    // "gC" is 64 in two digits: 32 after the sign bit. Generated column 32 -> source column 32.
    expect(map('gCAAgC').originalPosition(1, 33)).toEqual({ line: 1, column: 33 });
  });

  it('refuses what is not a version 3 map, and a mappings string with a bad digit', () => {
    expect(() => new SourceMap('{"version":2,"mappings":""}')).toThrow('not a version 3 source map');
    expect(() => map('AA!A')).toThrow('bad source map mappings');
  });

  it('finds the TypeScript position of each statement TypeScript compiled', () => {
    const source = ts`
      type Pfn = number;
      interface Range { start: Pfn; end: Pfn }
      export function npages(r: Range): number {
        const n: number = r.end - r.start;
        return n;
      }
    `;
    const compiled = compilePlugin(source, 'range.ts');
    const jsLines = compiled.js.split('\n');
    const jsLine = jsLines.findIndex((l) => l.includes('const n')) + 1;
    const jsColumn = jsLines[jsLine - 1]!.indexOf('const n') + 1;
    expect(compiled.map.originalPosition(jsLine, jsColumn)).toEqual(positionOf(source, 'const n'));
  });
});

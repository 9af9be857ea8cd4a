// A source map v3 reader, just enough to turn a position in a plugin's compiled JavaScript back into
// its TypeScript: decode the base64 VLQ "mappings", then find the segment covering a column.

/** A 1-based line and column. */
export interface Position {
  line: number;
  column: number;
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < BASE64.length; i++) DIGIT[BASE64.charCodeAt(i)] = i;

/** One generated line: per segment, its generated column and the 0-based source line and column. */
interface Line {
  genColumn: number[];
  srcLine: number[];
  srcColumn: number[];
}

export class SourceMap {
  private readonly lines: Line[] = [];

  /** `json` is the map as TypeScript emits it (one source, no sections). */
  constructor(json: string) {
    const map = JSON.parse(json) as { version?: number; mappings?: unknown };
    if (map.version !== 3 || typeof map.mappings !== 'string') throw new Error('not a version 3 source map');
    this.decode(map.mappings);
  }

  /** The source position of a 1-based generated position, or undefined where nothing maps. */
  originalPosition(line: number, column: number): Position | undefined {
    const l = this.lines[line - 1];
    if (!l || l.genColumn.length === 0) return undefined;
    // The last segment starting at or before the column; a column left of every segment takes the first.
    const col = column - 1;
    let lo = 0;
    let hi = l.genColumn.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (l.genColumn[mid]! <= col) lo = mid;
      else hi = mid - 1;
    }
    return { line: l.srcLine[lo]! + 1, column: l.srcColumn[lo]! + 1 };
  }

  private decode(mappings: string): void {
    // Every field but the generated column is relative to the previous segment across lines.
    let srcLine = 0;
    let srcColumn = 0;
    let line: Line = { genColumn: [], srcLine: [], srcColumn: [] };
    let genColumn = 0;
    const fields: number[] = [];
    let i = 0;
    const n = mappings.length;
    while (i <= n) {
      const c = i < n ? mappings.charCodeAt(i) : 0x3b; // a final ';' closes the last line
      if (c === 0x3b /* ; */ || c === 0x2c /* , */) {
        if (fields.length >= 4) {
          genColumn += fields[0]!;
          srcLine += fields[2]!;
          srcColumn += fields[3]!;
          line.genColumn.push(genColumn);
          line.srcLine.push(srcLine);
          line.srcColumn.push(srcColumn);
        } else if (fields.length === 1) {
          genColumn += fields[0]!; // a segment that maps to no source
        }
        fields.length = 0;
        if (c === 0x3b) {
          this.lines.push(line);
          line = { genColumn: [], srcLine: [], srcColumn: [] };
          genColumn = 0;
        }
        i++;
        continue;
      }
      // One VLQ number: 5 bits a digit, low digit first, continuation in bit 5, sign in bit 0.
      let value = 0;
      let shift = 0;
      for (;;) {
        const d = i < n ? (DIGIT[mappings.charCodeAt(i++)] ?? -1) : -1;
        if (d < 0) throw new Error(`bad source map mappings at ${i - 1}`);
        value += (d & 31) * 2 ** shift;
        shift += 5;
        if ((d & 32) === 0) break;
      }
      fields.push(value % 2 === 1 ? -(value - 1) / 2 : value / 2);
    }
  }
}

/**
 * A QuickJS stack ("    at fault (driver.ts:12:5)" a line) with the frames in `file` mapped through
 * `map`, the frames in `hidden` dropped and the rest kept as they are. `first` is the innermost
 * mapped position.
 */
export function mapStack(
  stack: string,
  file: string,
  map: SourceMap,
  hidden: string,
): { first: Position | undefined; frames: string[] } {
  let first: Position | undefined;
  const frames: string[] = [];
  for (const line of stack.split('\n')) {
    const m = /^\s*at (.*?) \((.*?)(?::(\d+):(\d+))?\)$/.exec(line);
    if (!m) continue;
    const [, fn, where, l, c] = m;
    if (where === hidden) continue;
    const p = where === file && l !== undefined ? map.originalPosition(Number(l), Number(c)) : undefined;
    if (!p) {
      frames.push(`    at ${fn} (${where})`);
      continue;
    }
    first ??= p;
    frames.push(`    at ${fn} (${file}:${p.line}:${p.column})`);
  }
  return { first, frames };
}

/** Bad user input (a machine or scenario file, a request): names where and what was expected. */
export class InputError extends Error {
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`${path}: ${detail}`);
  }
}

/** How deep a machine or scenario file may nest: far beyond any real one. */
export const MAX_DEPTH = 64;

/**
 * Refuse input nested deeper than MAX_DEPTH, naming the first value too deep, before anything
 * recursive (a check, an error message quoting the value) runs out of stack on it.
 */
export function checkDepth(input: unknown, source: string): void {
  const nested = (v: unknown): v is object => typeof v === 'object' && v !== null;
  if (!nested(input)) return;
  // Objects and arrays only: a long array of numbers costs a loop, and no paths.
  const stack: [object, string, number][] = [[input, source, 0]];
  while (stack.length) {
    const [v, path, depth] = stack.pop()!;
    if (depth > MAX_DEPTH) throw new InputError(path, `nested deeper than ${MAX_DEPTH} levels`);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) if (nested(v[i])) stack.push([v[i], `${path}[${i}]`, depth + 1]);
    } else for (const [k, e] of Object.entries(v)) if (nested(e)) stack.push([e, `${path}.${k}`, depth + 1]);
  }
}

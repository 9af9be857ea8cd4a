// Shared by the sandbox tests: load a plugin from a template string, catch the PluginError a call
// throws.
import { expect } from 'vitest';
import {
  PluginError,
  PluginSandbox,
  type HostApi,
  type SandboxOptions,
} from '../../../src-main/drivers/sandbox';

/** Strip the common indentation of a template-literal plugin, so line numbers are the file's own. */
export function ts(strings: TemplateStringsArray, ...values: unknown[]): string {
  const raw = String.raw({ raw: strings }, ...values).replace(/^\n/, '');
  const lines = raw.split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

export function load(
  source: string,
  api: HostApi = {},
  options: SandboxOptions = {},
  filename = 'driver.ts',
): Promise<PluginSandbox> {
  return PluginSandbox.load(source, filename, api, options);
}

/** The PluginError that `run` throws (fails the test if it throws anything else, or nothing). */
export function pluginError(run: () => unknown): PluginError {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(PluginError);
    return e as PluginError;
  }
  throw new Error('expected a PluginError, got a result');
}

export async function loadError(promise: Promise<unknown>): Promise<PluginError> {
  try {
    await promise;
  } catch (e) {
    expect(e).toBeInstanceOf(PluginError);
    return e as PluginError;
  }
  throw new Error('expected the load to fail');
}

/** 1-based line and column of the first occurrence of `needle` in `source`. */
export function positionOf(source: string, needle: string, nth = 0): { line: number; column: number } {
  let at = -1;
  for (let i = 0; i <= nth; i++) {
    at = source.indexOf(needle, at + 1);
    if (at < 0) throw new Error(`"${needle}" not in the source`);
  }
  const before = source.slice(0, at).split('\n');
  return { line: before.length, column: before[before.length - 1]!.length + 1 };
}

/** A plugin that only proves the sandbox still answers. */
export const HEALTHY = ts`
  export function add(a: number, b: number): number {
    return a + b;
  }
`;

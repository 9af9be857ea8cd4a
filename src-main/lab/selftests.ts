// The bundled conformance scenarios: the kernel's HMM selftests
// (tools/testing/selftests/mm/hmm-tests.c) ported to scenario files in test/selftests/, one
// per TEST_F, with an index (hmm-tests.json) that lists every test of the C file in the order
// the kselftest harness runs them: the scenario that ports it, or why it is skipped.
// `hmm-lab test-driver` runs them and reports in kselftest's TAP (docs/SELFTESTS.md).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectPath } from '../build/project-dir';
import { InputError } from './input-error';
import type { ScenarioReport } from './scenario';

/** test/selftests/ of the project this module is part of. */
export const SELFTESTS_DIR = projectPath(import.meta.url, 'test/selftests');

/** One TEST_F of hmm-tests.c: its fixture ("hmm", "hmm2") and name, and its port or why it has none. */
export interface SelftestEntry {
  fixture: string;
  test: string;
  /** The scenario file, relative to the index. */
  scenario?: string;
  /** Why the test is not ported. */
  skip?: string;
}

export interface SelftestResult {
  /** kselftest's name: "hmm.anon_read". */
  name: string;
  status: 'pass' | 'fail' | 'skip';
  /** Every failed expectation (or the error that stopped the scenario); the skip reason. */
  messages: string[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Read and check the index; errors name the file and the JSON path. */
export function loadSelftestIndex(dir = SELFTESTS_DIR): SelftestEntry[] {
  const file = join(dir, 'hmm-tests.json');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InputError(file, `cannot read the selftest index: ${(e as Error).message}`);
  }
  if (!isObject(json) || !Array.isArray(json.tests))
    throw new InputError(`${file}: tests`, 'expected an array of tests');
  return json.tests.map((t, i) => {
    const path = `${file}: tests[${i}]`;
    if (!isObject(t) || typeof t.fixture !== 'string' || typeof t.test !== 'string')
      throw new InputError(path, 'expected {"fixture", "test", and "scenario" or "skip"}');
    if ((typeof t.scenario === 'string') === (typeof t.skip === 'string'))
      throw new InputError(path, 'expected exactly one of "scenario" (a file) and "skip" (a reason)');
    return {
      fixture: t.fixture,
      test: t.test,
      ...(typeof t.scenario === 'string' ? { scenario: t.scenario } : { skip: t.skip as string }),
    };
  });
}

/**
 * Run every ported selftest with `run` (a scenario file's path -> its report; the CLI's
 * runner, so drivers are bound as for `hmm-lab run`). An InputError while running one (a
 * driver that fails to probe, say) fails that test with its message.
 */
export function runSelftests(
  run: (file: string) => ScenarioReport,
  dir = SELFTESTS_DIR,
  entries = loadSelftestIndex(dir),
): SelftestResult[] {
  return entries.map((e): SelftestResult => {
    const name = `${e.fixture}.${e.test}`;
    if (!e.scenario) return { name, status: 'skip', messages: [e.skip ?? ''] };
    try {
      const report = run(join(dir, e.scenario));
      const messages = report.steps.flatMap((st) => st.failures);
      return { name, status: report.passed ? 'pass' : 'fail', messages };
    } catch (err) {
      if (err instanceof InputError) return { name, status: 'fail', messages: [err.message] };
      throw err;
    }
  });
}

/** A TAP directive or description may not hold a newline or a '#' that starts a new one. */
function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/**
 * The results as kselftest_harness prints them: "TAP version 13", the plan, a line per test
 * (failures first as "# " diagnostics, the first also as the directive; skips as "# SKIP"),
 * and the totals line.
 */
export function formatTap(results: readonly SelftestResult[]): string[] {
  const lines = ['TAP version 13', `1..${results.length}`];
  results.forEach((r, i) => {
    const n = i + 1;
    if (r.status === 'pass') lines.push(`ok ${n} ${r.name}`);
    else if (r.status === 'skip') lines.push(`ok ${n} ${r.name} # SKIP ${oneLine(r.messages[0] ?? '')}`);
    else {
      for (const m of r.messages) lines.push(`# ${r.name}: ${oneLine(m)}`);
      lines.push(`not ok ${n} ${r.name} # ${oneLine(r.messages[0] ?? 'failed')}`);
    }
  });
  const count = (s: SelftestResult['status']): number => results.filter((r) => r.status === s).length;
  const [pass, fail, skip] = [count('pass'), count('fail'), count('skip')];
  // The harness counts a skipped test as passed in this line, as here.
  lines.push(
    `# ${fail ? 'FAILED' : 'PASSED'}: ${pass + skip} / ${results.length} tests passed.`,
    `# Totals: pass:${pass} fail:${fail} xfail:0 xpass:0 skip:${skip} error:0`,
  );
  return lines;
}

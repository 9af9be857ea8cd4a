// The kernel's HMM selftests (tools/testing/selftests/mm/hmm-tests.c) as scenario files: each
// *.scenario.json here is one TEST_F, run through parseScenario/runScenario on the built-in
// dmirror, and must pass. docs/SELFTESTS.md lists the port and its deviations.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseScenario, runScenario } from '../../src-main/lab/scenario';
import { loadSelftestIndex } from '../../src-main/lab/selftests';

const dir = dirname(fileURLToPath(import.meta.url));
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.scenario.json'))
  .sort();
const readJson = (file: string): unknown => JSON.parse(readFileSync(join(dir, file), 'utf8'));

describe('hmm-tests.c as scenarios', () => {
  for (const file of files) {
    const test = file.replace(/\.scenario\.json$/, '');
    it(test, { timeout: 60_000 }, () => {
      const scenario = parseScenario(readJson(file), file, readJson);
      expect(scenario.name).toBe(test);
      const report = runScenario(scenario);
      expect(report.steps.flatMap((st) => st.failures)).toEqual([]);
      expect(report.passed).toBe(true);
    });
  }

  it('the index lists every TEST_F once, with its scenario or why it is skipped', () => {
    const index = loadSelftestIndex(dir);
    const names = index.map((e) => e.test);
    expect(new Set(names).size).toBe(names.length);
    expect(
      index
        .filter((e) => e.scenario)
        .map((e) => e.scenario)
        .sort(),
    ).toEqual(files);
    for (const e of index) expect(e.scenario ?? e.skip).toBeTruthy();
  });
});

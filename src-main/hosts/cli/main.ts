// The `hmm-lab` command: a thin adapter from argv to lab/. Exit codes are the
// contract's: 0 success, 1 an expectation failed, 2 bad input (message on stderr).
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { LayoutSnapshot, ResourceNode } from '../../api';
import { parseMachine, type MachineSpec } from '../../lab/machine-file';
import { Machine } from '../../lab/machine';
import { layoutSnapshot } from '../../lab/layout';
import { InputError } from '../../lab/input-error';
import { parseScenario, runScenario, type Scenario } from '../../lab/scenario';
import { formatTrace, traceFormatFor } from '../../lab/trace';
import { formatTap, loadSelftestIndex, runSelftests } from '../../lab/selftests';
import {
  bundledPlugin,
  bundledPlugins,
  checkPluginFile,
  deviceKey,
  isPluginPath,
  PluginHost,
  pluginFile,
  prepareEngines,
  SPARE_ENGINES,
} from '../../lab/drivers';

const USAGE = `usage: hmm-lab <command> [options]

commands:
  layout [--machine FILE] [--json]   boot a machine and print its iomem_resource tree
                                     (no --machine: the default 16 GiB x86-64 machine)
  run SCENARIO... [--json] [--trace FILE] [--driver NAME=PATH]...
                                     run scenario files, report each step against its
                                     expectations; --trace writes the run's trace (.json:
                                     Chrome/Perfetto, .jsonl: JSON lines, else ftrace text);
                                     --driver makes the plugin at PATH the driver of the
                                     device (or of the devices of the driver) named NAME
  test-driver DRIVER                 run the bundled conformance scenarios (the kernel's
                                     hmm-tests, test/selftests) with DRIVER serving the
                                     dmirror devices: "dmirror" (built-in), a bundled plugin
                                     ("plugin:dmirror") or a .ts plugin; prints kselftest TAP
  bench [--json] [--runs N]          run the benchmarks (medians of N fresh runs, default 5)
  help                               this text

Exit codes: 0 success, 1 an expectation failed, 2 bad input.`;

export class UsageError extends Error {}

/** Read and parse a machine file; errors name the file. */
export function loadMachineFile(path: string): MachineSpec {
  const json = readJson(path);
  try {
    // A plugin driver's path is relative to the machine file.
    return { ...parseMachine(json, path), dir: dirname(resolve(path)) };
  } catch (e) {
    if (e instanceof InputError) throw new InputError(`${path}: ${e.path}`, e.detail);
    throw e;
  }
}

/** Why a probe fails, in the words of the code that failed. */
const PROBE_ERRORS: Record<string, string> = {
  '-ERANGE': 'hmm_devmem_add found no free physical range of that size',
  '-ENOMEM': 'out of memory (the memmap cannot grow that far)',
  '-EBUSY': 'the range collides with another resource',
  '-EEXIST': 'the range is already present',
  '-EINVAL': 'invalid range',
  '-ENXIO': 'the range mixes System RAM and other resources',
};

/** /proc/iomem style: "start-end : name", children indented two spaces. */
export function formatIomem(layout: LayoutSnapshot): string {
  const width = Math.ceil(layout.physAddrBits / 4);
  const lines: string[] = [];
  const walk = (nodes: ResourceNode[], depth: number): void => {
    for (const r of nodes) {
      const desc = r.desc === 'NONE' ? '' : `  [${r.desc}]`;
      lines.push(
        `${'  '.repeat(depth)}${r.start.slice(2).padStart(width, '0')}-${r.end.slice(2).padStart(width, '0')} : ${r.name}${desc}`,
      );
      walk(r.children, depth + 1);
    }
  };
  walk(layout.resources, 0);
  for (const d of layout.devices) {
    const where = d.start ? `${d.start}-${d.end} ${d.pgmapType ?? ''}`.trimEnd() : 'no memory mapped';
    lines.push(`device ${d.name} (${d.kind}, driver ${d.driver}): ${d.error ?? where}`);
  }
  return lines.join('\n');
}

async function layoutCommand(
  args: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { machine: { type: 'string' }, json: { type: 'boolean' } },
    strict: true,
  });
  const spec = values.machine ? loadMachineFile(values.machine) : parseMachine({}, 'default');
  const plugins = pluginHost([], err);
  await plugins.prepare(spec.devices);
  const machine = new Machine(spec, plugins);
  const failures = machine.probeFailures();
  if (failures.length) {
    const f = failures[0]!;
    const i = spec.devices.findIndex((d) => d.name === f.name);
    const why = PROBE_ERRORS[f.error] ? ` (${PROBE_ERRORS[f.error]})` : '';
    throw new InputError(
      `${spec.name}: machine.devices[${i}]`,
      `device "${f.name}" failed to probe: ${f.error}${why}`,
    );
  }
  const layout = layoutSnapshot(machine);
  out(values.json ? JSON.stringify(layout, null, 2) : formatIomem(layout));
  return 0;
}

/** Read a JSON file; errors name the file. */
function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError(path, `cannot read: ${errorCode(e)}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(path, `not valid JSON: ${(e as Error).message}`);
  }
}

/** Parse one scenario file; a plugin path in its machine is relative to the machine file. */
function readScenarioFile(path: string): Scenario {
  return namingFile(path, () => {
    let machineFile: string | null = null;
    const scenario = parseScenario(readJson(path), 'scenario', (m) =>
      readJson((machineFile = resolve(dirname(path), m))),
    );
    scenario.machine.dir = dirname(machineFile ?? resolve(path));
    return scenario;
  });
}

/** Run one parsed scenario; input errors name its file. */
function runScenarioFile(path: string, scenario: Scenario, trace: boolean, plugins?: PluginHost) {
  return namingFile(path, () => runScenario(scenario, { trace, ...(plugins && { plugins }) }));
}

/** `work()`, with an input error about a part of the scenario file at `path` naming the file. */
function namingFile<T>(path: string, work: () => T): T {
  try {
    return work();
  } catch (e) {
    if (e instanceof InputError && !e.path.startsWith(path))
      throw new InputError(`${path}: ${e.path}`, e.detail);
    throw e;
  }
}

/**
 * The plugin host of a command: `--driver NAME=PATH` makes the plugin at PATH the driver of
 * the device named NAME (or of every device whose driver is NAME); reports go to stderr.
 */
function pluginHost(drivers: readonly string[] | undefined, err: (s: string) => void): PluginHost {
  const host = new PluginHost();
  for (const d of drivers ?? []) {
    const eq = d.indexOf('=');
    if (eq <= 0 || eq === d.length - 1)
      throw new UsageError(
        `--driver: expected NAME=PATH (a device or driver name and a .ts plugin), got "${d}"`,
      );
    const name = d.slice(0, eq);
    const path = d.slice(eq + 1);
    let src;
    try {
      src = pluginFile(path);
    } catch (e) {
      throw new InputError(path, `cannot read: ${errorCode(e)}`);
    }
    checkPluginFile(src, path);
    host.overrides.set(deviceKey(name), src);
    host.overrides.set(name, src);
  }
  host.onReport((r) =>
    err(
      r.kind === 'rule'
        ? `${r.device}: ${r.message}`
        : `${r.device}: ${r.file}:${r.line}:${r.column}: ${r.callback}: ${r.message} (${r.kind})`,
    ),
  );
  return host;
}

async function runCommand(
  args: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      json: { type: 'boolean' },
      trace: { type: 'string' },
      driver: { type: 'string', multiple: true },
    },
    allowPositionals: true,
    strict: true,
  });
  if (!positionals.length) throw new UsageError('run: name at least one scenario file');
  if (values.trace !== undefined && positionals.length > 1)
    throw new UsageError('run: --trace takes a single scenario');
  const plugins = pluginHost(values.driver, err);
  // Parsed once, before anything runs: a bad file costs no run. Each scenario boots its own
  // machine: an engine for each of its plugin devices.
  const scenarios = positionals.map((file) => ({ file, scenario: readScenarioFile(file) }));
  let engines = SPARE_ENGINES;
  for (const { scenario } of scenarios)
    engines += scenario.machine.devices.filter((d) => plugins.servesPlugin(d)).length;
  await prepareEngines(engines);
  // Opened before the run, so a path that cannot be written costs no run.
  const traceFd = values.trace === undefined ? undefined : openTrace(values.trace);
  try {
    const reports = scenarios.map(({ file, scenario }) => ({
      file,
      ...runScenarioFile(file, scenario, traceFd !== undefined, plugins),
    }));
    if (values.json)
      out(
        JSON.stringify(
          reports.map(({ trace: _trace, ...r }) => r),
          null,
          2,
        ),
      );
    else
      for (const r of reports) {
        const failed = r.steps.filter((st) => !st.ok);
        out(
          `${r.passed ? 'PASS' : 'FAIL'} ${r.name} (${r.file}): ${r.steps.length} steps, ${(r.t / 1000).toFixed(1)} us simulated`,
        );
        for (const st of failed) for (const f of st.failures) out(`  ${f}`);
      }
    if (traceFd !== undefined) {
      const path = values.trace!;
      try {
        writeFileSync(traceFd, formatTrace(reports[0]!.trace ?? [], traceFormatFor(path)));
      } catch (e) {
        throw new InputError(path, `cannot write the trace: ${errorCode(e)}`);
      }
    }
    return reports.every((r) => r.passed) ? 0 : 1;
  } finally {
    if (traceFd !== undefined) closeSync(traceFd);
  }
}

/** The file --trace names, opened for writing. */
function openTrace(path: string): number {
  if (!path) throw new UsageError('run: --trace: expected a file name');
  try {
    return openSync(path, 'w');
  } catch (e) {
    throw new InputError(path, `cannot write the trace: ${errorCode(e)}`);
  }
}

function errorCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

/**
 * `test-driver DRIVER`: the ported hmm-tests (lab/selftests.ts) with DRIVER serving every
 * dmirror device, through the runner of `run`; TAP on stdout, 1 when a test failed.
 */
async function testDriverCommand(
  args: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const { positionals } = parseArgs({ args, options: {}, allowPositionals: true, strict: true });
  if (positionals.length !== 1) throw new UsageError('test-driver: name one driver');
  const driver = positionals[0]!;
  // The built-in dmirror, a bundled plugin ("plugin:dmirror") or a plugin file serves the devices.
  let plugins: PluginHost | undefined;
  if (driver !== 'dmirror') {
    const src = isPluginPath(driver) ? null : bundledPlugin(driver);
    if (!src && !isPluginPath(driver))
      throw new InputError(
        driver,
        `expected "dmirror", a bundled plugin (${bundledPlugins().join(', ')}) or a .ts path`,
      );
    plugins = pluginHost(src ? [] : [`dmirror=${driver}`], err);
    if (src) plugins.overrides.set('dmirror', src);
    // One engine for the device of each conformance scenario.
    await prepareEngines(SPARE_ENGINES + loadSelftestIndex().length);
  }
  const results = runSelftests((file) => runScenarioFile(file, readScenarioFile(file), false, plugins));
  for (const line of formatTap(results)) out(line);
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}

async function benchCommand(
  args: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { json: { type: 'boolean' }, runs: { type: 'string' } },
    strict: true,
  });
  const runs = values.runs === undefined ? 5 : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 100)
    throw new UsageError(`--runs: expected an integer from 1 to 100, got ${values.runs}`);
  const { runBenchmarks, formatReport } = await import('../../../bench/run');
  const report = await runBenchmarks({ runs, progress: (s) => err(s) });
  out(values.json ? JSON.stringify(report, null, 2) : formatReport(report));
  return 0;
}

/** Run the CLI; resolves to the exit code. `out`/`err` receive whole lines. */
export async function main(
  argv: string[],
  out = (s: string) => console.log(s),
  err = (s: string) => console.error(s),
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'layout':
        return await layoutCommand(rest, out, err);
      case 'run':
        return await runCommand(rest, out, err);
      case 'test-driver':
        return await testDriverCommand(rest, out, err);
      case 'bench':
        return await benchCommand(rest, out, err);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        out(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof InputError) err(`hmm-lab: ${e.message}`);
    else if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))
      err(`hmm-lab: ${(e as Error).message}\n\n${USAGE}`);
    else throw e;
    return 2;
  }
}

// Opening a scenario file in the app: the files picked are read here (the lab reads no files),
// the scenario found among them and, when its `machine` names a machine file, that one too,
// matched by its base name since a browser gives no paths. Only "default" needs no file: the
// lab knows no other machine by name.

/** A scenario ready for `runLoad`, and the name of its file for messages. */
export interface ScenarioPick {
  name: string;
  scenario: unknown;
  /** The machine file the scenario names by path, parsed. */
  machineFile?: unknown;
}

const SCENARIO_SUFFIX = '.scenario.json';

async function readJson(file: File): Promise<unknown> {
  const text = await file.text();
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file.name}: not valid JSON (${(e as Error).message})`);
  }
}

/** The scenario among `files` and the machine file it names; errors say plainly what is wrong or missing. */
export async function pickScenario(files: readonly File[]): Promise<ScenarioPick> {
  const named = files.filter((f) => f.name.endsWith(SCENARIO_SUFFIX));
  // A lone file is the scenario whatever its name.
  const file = files.length === 1 ? files[0] : named.length === 1 ? named[0] : undefined;
  if (!file)
    throw new Error(
      named.length > 1
        ? `open one scenario at a time (picked ${named.map((f) => f.name).join(', ')})`
        : `pick a *${SCENARIO_SUFFIX} file, with the machine file it names if it names one`,
    );
  const scenario = await readJson(file);
  const machine =
    typeof scenario === 'object' && scenario !== null
      ? (scenario as Record<string, unknown>).machine
      : undefined;
  if (typeof machine !== 'string' || machine === 'default') return { name: file.name, scenario };
  const base = machine.split(/[\\/]/).pop() ?? machine;
  const machineFile = files.find((f) => f !== file && f.name === base);
  if (!machineFile)
    throw new Error(
      `${file.name} names the machine file "${machine}", which is not among the files picked: open ${base} together with the scenario`,
    );
  return { name: file.name, scenario, machineFile: await readJson(machineFile) };
}

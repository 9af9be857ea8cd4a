// The published JSON Schemas (docs/schema/) against the files the lab ships and the parser
// that reads them: every bundled machine and scenario file validates, and the schemas list
// exactly the ops, fields and values the parser takes; wrong files are refused by both.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { describe, expect, it } from 'vitest';
import { errname } from '../../src-main/kernel/include/errno';
import { COST_KEYS, LINK_KINDS } from '../../src-main/lab/clock';
import { RUN_DEMOS } from '../../src-main/lab/demos';
import { InputError } from '../../src-main/lab/input-error';
import {
  DEMO_MACHINE,
  DEVICE_FIELDS,
  KINDS,
  parseMachine,
  PMEM_MODES,
  TOP_FIELDS,
} from '../../src-main/lab/machine-file';
import { OP_FIELDS } from '../../src-main/lab/ops';
import { parseScenario, runScenario, SCENARIO_FIELDS } from '../../src-main/lab/scenario';
import { ACTOR_FIELDS, PATTERNS, WORKLOAD_FIELDS } from '../../src-main/lab/workload';

type Schema = Record<string, unknown> & {
  properties: Record<string, Schema>;
  required?: string[];
  $defs: Record<string, Schema>;
  enum?: unknown[];
};

const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));
const machineSchema = readJson('docs/schema/machine.schema.json') as Schema;
const scenarioSchema = readJson('docs/schema/scenario.schema.json') as Schema;

// Strict: an unknown keyword in the schemas is an error here (a typo would check nothing).
// if/then/else may constrain fields the enclosing schema types and defines.
const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
ajv.addSchema(machineSchema).addSchema(scenarioSchema);
const validateMachine = ajv.getSchema('machine.schema.json')!;
const validateScenario = ajv.getSchema('scenario.schema.json')!;

function schemaErrors(validate: typeof validateMachine, doc: unknown): string {
  return validate(doc) ? '' : ajv.errorsText(validate.errors, { separator: '\n' });
}

/** Files in `dir` (relative to the repository) whose names end with `suffix`. */
function files(dir: string, suffix: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(suffix))
    .sort()
    .map((f) => join(dir, f));
}

const plugins = readdirSync('plugins').map((p) => join('plugins', p));
const bundledScenarios = [
  ...files('test/selftests', '.scenario.json'),
  ...plugins.flatMap((p) => files(p, '.scenario.json')),
];
const bundledMachines = [
  ...files('test/selftests', '.machine.json'),
  ...plugins.flatMap((p) => files(p, '.machine.json')),
];

/** The ```json blocks of a doc page that are machine files (they have no steps). */
function machineExamples(doc: string): unknown[] {
  const blocks = [...readFileSync(doc, 'utf8').matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.map((b) => JSON.parse(b) as Record<string, unknown>).filter((j) => !('steps' in j));
}

describe('docs/schema: the bundled files validate', () => {
  it('finds the bundled files', () => {
    expect(bundledScenarios.length).toBeGreaterThan(30);
    expect(bundledScenarios).toContain('plugins/chunked-vram/oversubscribe.scenario.json');
    expect(bundledMachines).toContain('test/selftests/dmirror.machine.json');
  });

  for (const file of bundledScenarios)
    it(`scenario ${file}`, () => {
      const doc = readJson(file);
      expect(schemaErrors(validateScenario, doc)).toBe('');
      // The parser takes it too (its machine file read beside it).
      parseScenario(doc, file, (m) => readJson(join(dirname(file), m)));
    });

  for (const file of bundledMachines)
    it(`machine ${file}`, () => {
      expect(schemaErrors(validateMachine, readJson(file))).toBe('');
    });

  for (const demo of RUN_DEMOS)
    it(`the Run view's demo ${demo.id}`, () => {
      expect(schemaErrors(validateScenario, demo.scenario)).toBe('');
    });

  it("the app's demo machine and the machine examples of README.md and docs/COSTS.md", () => {
    const examples = [DEMO_MACHINE, ...machineExamples('README.md'), ...machineExamples('docs/COSTS.md')];
    expect(examples).toHaveLength(3);
    for (const m of examples) {
      expect(schemaErrors(validateMachine, m)).toBe('');
      parseMachine(m, 'example');
    }
  });

  it('a file naming its schema with "$schema" is taken by the schema and the parser', () => {
    const machine = { $schema: '../docs/schema/machine.schema.json', devices: [] };
    const scenario = {
      $schema: '../docs/schema/scenario.schema.json',
      name: 'x',
      machine,
      steps: [{ op: 'spawn', proc: 'p' }],
    };
    expect(schemaErrors(validateScenario, scenario)).toBe('');
    expect(runScenario(parseScenario(scenario, 'scenario', readJson)).passed).toBe(true);
  });
});

/** A def's property names and required names, without the fields every step has. */
function fieldsOf(def: Schema, common: string[] = []): { all: string[]; required: string[] } {
  return {
    all: Object.keys(def.properties).filter((k) => !common.includes(k)),
    required: (def.required ?? []).filter((k) => !common.includes(k)),
  };
}

describe('docs/schema lists what the parser takes', () => {
  const defs = scenarioSchema.$defs;

  it('every op of lab/ops.ts with its fields and required fields, and no other op', () => {
    expect(defs.step!.properties.op!.enum).toEqual(Object.keys(OP_FIELDS));
    for (const [op, fields] of Object.entries(OP_FIELDS)) {
      const names = Object.keys(fields);
      expect({ op, ...fieldsOf(defs[`op-${op}`]!, ['op', 'expect', 'comment']) }).toEqual({
        op,
        all: names.map((f) => f.replace(/\?$/, '')),
        required: names.filter((f) => !f.endsWith('?')),
      });
    }
  });

  it('the scenario, workload and actor fields, and the access patterns', () => {
    expect(Object.keys(scenarioSchema.properties).sort()).toEqual([...SCENARIO_FIELDS].sort());
    expect(Object.keys(defs.workload!.properties).sort()).toEqual([...WORKLOAD_FIELDS].sort());
    expect(Object.keys(defs.actor!.properties).sort()).toEqual([...ACTOR_FIELDS].sort());
    expect(defs.actor!.properties.pattern!.enum).toEqual(PATTERNS);
  });

  it('the machine fields, device kinds, pmem modes, cost keys and links', () => {
    const mdefs = machineSchema.$defs;
    expect(Object.keys(machineSchema.properties).sort()).toEqual([...TOP_FIELDS].sort());
    expect(Object.keys(mdefs.device!.properties).sort()).toEqual([...DEVICE_FIELDS].sort());
    expect(mdefs.device!.properties.kind!.enum).toEqual(KINDS);
    expect(mdefs.device!.properties.mode!.enum).toEqual(PMEM_MODES);
    expect(Object.keys(mdefs.costs!.properties).sort()).toEqual([...COST_KEYS].sort());
    expect(Object.keys(mdefs.costs!.properties.links!.properties)).toEqual(LINK_KINDS);
    expect(mdefs.link!.enum).toEqual(LINK_KINDS);
  });

  it("expect.ret's error names are the kernel's", () => {
    const names = Array.from({ length: 200 }, (_, i) => errname(-(i + 1))).filter((n) => n.startsWith('-E'));
    const [, named] = defs.expect!.properties.ret!.anyOf as [unknown, { pattern: string }];
    expect(named.pattern.match(/E[A-Z0-9]+/g)!.sort()).toEqual(names.map((n) => n.slice(1)).sort());
  });
});

// A small valid scenario the wrong files below are made from.
const MACHINE = {
  ram: [{ start: 0, size: '1G' }],
  reserved: [],
  devices: [{ name: 'gpu0', kind: 'private', memory: '64M' }],
};
const SPAWN = { op: 'spawn', proc: 'p' };
const OPEN = { op: 'open', proc: 'p', device: 'gpu0' };
const MMAP = {
  op: 'mmap',
  proc: 'p',
  name: 'buf',
  length: '1M',
  prot: 'rw',
  flags: ['private', 'anonymous'],
};
const CPU = { kind: 'cpu', proc: 'p', at: 'buf' };
const scenario = (...steps: unknown[]): Record<string, unknown> => ({
  name: 'wrong',
  machine: MACHINE,
  steps,
});
const withRun = (actor: Record<string, unknown>): Record<string, unknown> =>
  scenario(SPAWN, OPEN, MMAP, { op: 'run', workload: { actors: [actor] } });

const WRONG_SCENARIOS: [string, unknown, string][] = [
  ['no steps', { name: 'wrong' }, 'scenario.steps: expected an array of steps'],
  ['a negative seed', { ...scenario(SPAWN), seed: -1 }, 'scenario.seed: expected a non-negative integer'],
  ['an unknown top-level field', { ...scenario(SPAWN), step: [] }, 'scenario.step: unknown field'],
  ['a step that is no object', scenario(SPAWN, 'mmap'), 'steps[1]: expected a step object'],
  ['an unknown op', scenario(SPAWN, { op: 'fly', proc: 'p' }), 'steps[1].op: unknown op "fly"'],
  [
    'a missing field',
    scenario(SPAWN, { op: 'mmap', proc: 'p', name: 'b', prot: 'rw', flags: ['shared'] }),
    'steps[1] (mmap).length: expected a size like 4096, "0x1000" or "256M", got nothing',
  ],
  [
    'a bad size string',
    scenario(SPAWN, { ...MMAP, length: '1MB' }),
    'steps[1] (mmap).length: expected a size like 4096, "0x1000" or "256M", got "1MB"',
  ],
  [
    'a bad prot',
    scenario(SPAWN, { ...MMAP, prot: 'rwx' }),
    'steps[1] (mmap).prot: expected one of "none", "r", "rw"',
  ],
  [
    'a bad flag',
    scenario(SPAWN, { ...MMAP, flags: ['private', 'anon'] }),
    'steps[1] (mmap).flags[1]: expected one of',
  ],
  [
    'fixed without addr',
    scenario(SPAWN, { ...MMAP, flags: ['fixed', 'shared'] }),
    'steps[1] (mmap).addr: expected an address',
  ],
  [
    'an unknown step field',
    scenario(SPAWN, { ...MMAP, size: 4096 }),
    'steps[1] (mmap).size: unknown field for "mmap"',
  ],
  [
    'a bad fill',
    scenario(SPAWN, MMAP, { op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'up' } }),
    'steps[2] (store).fill.pattern: expected "index" or "negindex"',
  ],
  [
    'newOffset without newAddr',
    scenario(SPAWN, MMAP, { op: 'mremap', proc: 'p', at: 'buf', newLength: '2M', newOffset: 0 }),
    'steps[2] (mremap).newOffset: expected only with newAddr',
  ],
  [
    'a device command without its range',
    scenario(SPAWN, OPEN, { op: 'device', device: 'gpu0', proc: 'p', cmd: 'migrate' }),
    'steps[2] (device).at: expected a name',
  ],
  [
    'a device write without a buffer',
    scenario(SPAWN, OPEN, MMAP, { op: 'device', device: 'gpu0', proc: 'p', cmd: 'write', at: 'buf' }),
    'steps[3] (device).buffer: expected a buffer',
  ],
  [
    'an expect that is no object',
    scenario({ ...SPAWN, expect: 0 }),
    'steps[0] (spawn).expect: expected an object',
  ],
  [
    'an unknown error name in expect.ret',
    scenario(SPAWN, { ...MMAP, expect: { ret: '-EWHAT' } }),
    'steps[1] (mmap).expect.ret: expected 0, an errno like -22 or a kernel error name',
  ],
  [
    'a bad fill in expect.data',
    scenario(SPAWN, MMAP, { op: 'load', proc: 'p', at: 'buf', expect: { data: { byte: 256 } } }),
    'steps[2] (load).expect.data.byte: expected an integer from 0 to 255',
  ],
  [
    'a run without a workload',
    scenario({ op: 'run' }),
    'steps[0] (run).workload: expected a workload object',
  ],
  [
    'an actor of an unknown kind',
    withRun({ ...CPU, kind: 'gpu' }),
    'steps[3] (run).workload.actors[0].kind: expected "cpu" or "device"',
  ],
  [
    'an unknown actor field',
    withRun({ ...CPU, speed: 2 }),
    'steps[3] (run).workload.actors[0].speed: unknown field',
  ],
  [
    'a device kernel without its device',
    withRun({ ...CPU, kind: 'device' }),
    'steps[3] (run).workload.actors[0].device: expected a name',
  ],
  [
    'a stride without the strided pattern',
    withRun({ ...CPU, stride: '64K' }),
    'steps[3] (run).workload.actors[0].stride: only a "strided" pattern has a stride',
  ],
  [
    'a hot set without the hotset pattern',
    withRun({ ...CPU, pattern: 'random', hotFraction: 0.2 }),
    'steps[3] (run).workload.actors[0].hotFraction: only a "hotset" pattern has a hot set',
  ],
  [
    'a share of writes above 1',
    withRun({ ...CPU, writes: 2 }),
    'steps[3] (run).workload.actors[0].writes: expected a number from 0 to 1',
  ],
  [
    'no actors',
    scenario(SPAWN, MMAP, { op: 'run', workload: { actors: [] } }),
    'steps[2] (run).workload.actors: expected a non-empty array of actors',
  ],
  [
    'a bad inline machine',
    { ...scenario(SPAWN), machine: { devices: [{ name: 'gpu0', kind: 'gpu', memory: '1G' }] } },
    'scenario.machine.devices[0].kind: expected one of private, public, pmem',
  ],
];

const WRONG_MACHINES: [string, unknown, string][] = [
  ['an unknown field', { rams: [] }, 'machine.rams: unknown field'],
  ['a page shift out of range', { pageShift: 11 }, 'machine.pageShift: expected an integer from 12 to 21'],
  ['a range without size', { ram: [{ start: 0 }] }, 'machine.ram[0].size: missing'],
  ['a bad size string', { ram: [{ start: 0, size: '12Q' }] }, 'machine.ram[0].size: expected a size like'],
  ['a reserved range without name', { reserved: [{ start: 0, size: '4K' }] }, 'machine.reserved[0].name'],
  [
    'a device of an unknown kind',
    { devices: [{ name: 'g', kind: 'gpu', memory: '1G' }] },
    'machine.devices[0].kind: expected one of private, public, pmem',
  ],
  [
    'a device without memory',
    { devices: [{ name: 'g', kind: 'private' }] },
    'machine.devices[0].memory: missing',
  ],
  [
    'a device name with a space',
    { devices: [{ name: 'my gpu', kind: 'private', memory: '1G' }] },
    'machine.devices[0].name: expected a device name',
  ],
  [
    'a private device with a start',
    { devices: [{ name: 'g', kind: 'private', memory: '1G', start: '8G' }] },
    'machine.devices[0].start: a private device has no start',
  ],
  [
    'a public device without start',
    { devices: [{ name: 'c', kind: 'public', memory: '1G' }] },
    'machine.devices[0].start: missing',
  ],
  [
    'a mode on a device that is not pmem',
    { devices: [{ name: 'c', kind: 'public', memory: '1G', start: '8G', mode: 'raw' }] },
    'machine.devices[0].mode: only a pmem device has a mode',
  ],
  [
    'an unknown pmem mode',
    { devices: [{ name: 'p', kind: 'pmem', memory: '1G', start: '8G', mode: 'dax' }] },
    'machine.devices[0].mode: expected one of fsdax, sector, raw',
  ],
  ['an unknown link', { link: 'pcie6' }, 'machine.link: expected one of pcie3, pcie4, pcie5, nvlink-c2c'],
  ['an unknown cost', { costs: { cpuFaultNS: 1 } }, 'machine.costs.cpuFaultNS: unknown field'],
  [
    'a cost that is not positive',
    { costs: { syscallNs: 0 } },
    'machine.costs.syscallNs: expected a positive number',
  ],
  [
    'a DMA efficiency above 1',
    { costs: { dmaEfficiency: 1.5 } },
    'machine.costs.dmaEfficiency: expected at most 1',
  ],
  [
    'an unknown link bandwidth',
    { costs: { links: { pcie6: 100 } } },
    'machine.costs.links.pcie6: unknown field',
  ],
];

/** The parser's refusal: the InputError of parsing (and for a scenario, running) a file. */
function refusal(parse: () => unknown): InputError | 'accepted' {
  try {
    parse();
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  return 'accepted';
}

const refuseScenario = (doc: unknown): InputError | 'accepted' =>
  refusal(() =>
    runScenario(
      parseScenario(doc, 'scenario', () => {
        throw new Error('no machine files here');
      }),
    ),
  );

/** The parser's path as a JSON pointer: `steps[3] (run).workload.actors[0]` -> /steps/3/workload/actors/0. */
function pointer(path: string): string {
  const parts = path
    .replace(/^(scenario|machine)\.?/, '')
    .replace(/ \(\w+\)/, '')
    .replace(/\[(\d+)\]/g, '.$1')
    .split('.')
    .filter(Boolean);
  return parts.map((p) => `/${p}`).join('');
}

/**
 * The schema refuses `doc` where the parser does: its deepest error lies on the path to the
 * field the parser names (the schema reports a missing or forbidden field at its object).
 */
function expectSameRefusal(validate: typeof validateMachine, doc: unknown, e: InputError | 'accepted'): void {
  expect(e).toBeInstanceOf(InputError);
  expect(validate(doc)).toBe(false);
  const deepest = validate.errors!.map((err) => err.instancePath).sort((a, b) => b.length - a.length)[0]!;
  const path = (e as InputError).path;
  expect(`${pointer(path)}/`.startsWith(`${deepest}/`), `schema at ${deepest}, parser at ${path}`).toBe(true);
}

describe('wrong files are refused by the schema and by the parser alike', () => {
  it('the base scenario and machine of the wrong files are right', () => {
    const ok = withRun(CPU);
    expect(schemaErrors(validateScenario, ok)).toBe('');
    expect(refuseScenario(ok)).toBe('accepted');
    expect(schemaErrors(validateMachine, MACHINE)).toBe('');
  });

  for (const [what, doc, message] of WRONG_SCENARIOS)
    it(`scenario with ${what}`, () => {
      const e = refuseScenario(doc);
      expect(e === 'accepted' ? e : e.message).toContain(message);
      expectSameRefusal(validateScenario, doc, e);
    });

  for (const [what, doc, message] of WRONG_MACHINES)
    it(`machine with ${what}`, () => {
      const e = refusal(() => parseMachine(doc, 'm'));
      expect(e === 'accepted' ? e : e.message).toContain(message);
      expectSameRefusal(validateMachine, doc, e);
    });
});

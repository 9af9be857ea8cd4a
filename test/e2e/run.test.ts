// The Run view in Chromium against the web host and a real lab: the oversubscription demo is
// loaded and played, the lab's aggregated series fill the plots while it runs, pause stops it,
// and the counters, CSV export and saved session agree with what the lab reports. Scenario
// files open from the toolbar with their machine file, and every step is judged as the CLI does.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunStatus, SessionFile } from '../../src-main/api';
import { SELFTESTS_DIR } from '../../src-main/lab/selftests';
import { doubleClickAfterReply, labRoute, openLab, showView, type LabPage } from './harness';

let ctx: LabPage;
let page: Page;

const toolbar = () => page.getByRole('toolbar', { name: 'Run controls' });
const plot = (id: string) => page.locator(`.run-plot[data-plot="${id}"]`);
const counter = (key: string) => page.locator(`.run-counters [data-counter="${key}"]`);
const num = async (key: string): Promise<number> =>
  Number((await counter(key).innerText()).replace(/,/g, ''));

const steps = () => page.locator('.run-steps');
const selftest = (name: string): string => join(SELFTESTS_DIR, name);
/** A file for the file input, made in the test. */
const jsonFile = (name: string, value: unknown) => ({
  name,
  mimeType: 'application/json',
  buffer: Buffer.from(JSON.stringify(value)),
});
/** The selftest `migrate` (its machine named by path), to be changed by a test. */
const migrate = async () =>
  JSON.parse(await readFile(selftest('migrate.scenario.json'), 'utf8')) as {
    steps: Record<string, unknown>[];
  };
/** The machine file the selftests name. */
const machine = async () =>
  jsonFile('dmirror.machine.json', JSON.parse(await readFile(selftest('dmirror.machine.json'), 'utf8')));

/** Go to another view and back to Run through the nav. */
async function leaveAndComeBack(): Promise<void> {
  await showView(page, 'mirror');
  await showView(page, 'run');
}

/** The page's connection to the lab, to hold its speed requests. */
const route = labRoute();

beforeAll(async () => {
  ctx = await openLab('#/run', '.run-view', { beforeLoad: route.attach });
  page = ctx.page;
});

afterAll(async () => {
  await ctx?.close();
});

describe('Run view', () => {
  it('opens from the nav with the demo workloads to pick', async () => {
    await expect(page.locator('.nav-item.active').innerText()).resolves.toContain('Run');
    await expect(page.locator('.view-header h1').innerText()).resolves.toBe('Run');
    const select = toolbar().locator('select[name=demo]');
    await expect.poll(() => select.locator('option').count()).toBeGreaterThanOrEqual(3);
    await expect(select.inputValue()).resolves.toBe('oversubscription');
    await expect(page.locator('.run-view .intro').innerText()).resolves.toContain('256 MiB');
  });

  it('fits its controls on one row at 1280 px, the session ones grouped under a label', async () => {
    const rows = await toolbar()
      .locator('button, select')
      .evaluateAll((els) =>
        els.map((e) => {
          const r = e.getBoundingClientRect();
          return Math.round((r.top + r.bottom) / 2);
        }),
      );
    expect(rows.length).toBeGreaterThanOrEqual(8);
    expect(Math.max(...rows) - Math.min(...rows)).toBeLessThanOrEqual(2);
    const session = toolbar().getByRole('group', { name: 'Session' });
    await expect(session.getByRole('button', { name: 'Save session' }).isVisible()).resolves.toBe(true);
    await expect(session.getByRole('button', { name: 'Open session…' }).isVisible()).resolves.toBe(true);
  });

  it('load boots the demo machine: the plots appear empty, the run is ready', async () => {
    await toolbar().getByRole('button', { name: 'Load' }).click();
    await expect.poll(() => toolbar().getByRole('status').innerText()).toContain('ready');
    await expect(page.locator('.run-plot').count()).resolves.toBe(6);
    await expect(plot('migrations').getAttribute('data-filled')).resolves.toBe('false');
    await expect.poll(() => page.locator('.nav .machine-name').innerText()).toContain('oversubscription');
  });

  it('play at full speed: the plots fill while the GPU kernel oversubscribes its memory; pause stops the run', async () => {
    await toolbar().locator('select[name=speed]').selectOption({ label: 'max' });
    // Double-clicked: the second click lands on Pause, in Play's place, and is not taken as one.
    await doubleClickAfterReply(page, toolbar().getByRole('button', { name: 'Play' }), () =>
      expect.poll(() => toolbar().getByRole('status').innerText()).toContain('playing'),
    );
    // Wait for the GPU kernel's evictions: device memory full, pages going both ways.
    await expect.poll(() => num('evictions'), { timeout: 40_000, interval: 250 }).toBeGreaterThan(20_000);
    // And Pause double-clicked: the second click, on Play, does not play again.
    await doubleClickAfterReply(page, toolbar().getByRole('button', { name: 'Pause' }), () =>
      expect.poll(() => toolbar().getByRole('status').innerText()).toContain('paused'),
    );

    for (const id of ['migrations', 'cumulative', 'faults', 'latency', 'rss', 'occupancy'])
      await expect.poll(() => plot(id).getAttribute('data-filled'), { timeout: 5000 }).toBe('true');
    // Every plot drew on its canvas.
    await expect(page.locator('.run-plot .uplot canvas').count()).resolves.toBe(6);

    const status = (await ctx.lab.request({ type: 'runStatus' })) as RunStatus;
    expect(status.state).toBe('paused');
    expect(status.counters.lost).toBe(0);
    expect(status.counters.evictions).toBeGreaterThan(0);
    await expect.poll(() => num('evictions')).toBe(status.counters.evictions);
    await expect(counter('lost').innerText()).resolves.toBe('0');

    // The device is full: the occupancy legend reads its 32,768 pages in use (the cards redraw
    // one an animation frame, so the last update may still be on its way).
    await expect
      .poll(() => plot('occupancy').locator('[data-series="gpu0 in use"] .value').innerText())
      .toBe('32,768');
    // The cumulative plot's latest values are the lab's counters.
    const toDevice = () => plot('cumulative').locator('[data-series="gpu0 → device"] .value').innerText();
    await expect
      .poll(async () => Number((await toDevice()).replace(/,/g, '')))
      .toBe(status.counters.migratedToDevice);
  });

  it('hovering a plot reads the values under the cursor', async () => {
    const chart = plot('faults').locator('.uplot .u-over');
    const box = (await chart.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    await expect.poll(() => plot('faults').locator('.head .x').innerText()).toMatch(/^t \d/);
    const hovered = await plot('faults').locator('.head .x').innerText();
    await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2);
    await expect.poll(() => plot('faults').locator('.head .x').innerText()).not.toBe(hovered);
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
    await ctx.screenshot('run.png');
    await page.mouse.move(5, 5);
  });

  it('step runs one slice and stays paused', async () => {
    const before = await num('accesses');
    await toolbar().getByRole('button', { name: 'Step' }).click();
    await expect.poll(() => num('accesses')).toBeGreaterThan(before);
    await expect(toolbar().getByRole('status').innerText()).resolves.toContain('paused');
  });

  it('exports a plot as CSV (from the lab) and as PNG (from the chart canvas)', async () => {
    const [csvFile] = await Promise.all([
      page.waitForEvent('download'),
      plot('migrations').getByRole('button', { name: 'CSV' }).click(),
    ]);
    expect(csvFile.suggestedFilename()).toBe('oversubscription-migrations.csv');
    const csv = await readFile(await csvFile.path(), 'utf8');
    expect(csv.split('\n')[0]).toBe('t_ns,gpu0 to device,gpu0 to system');
    const [png] = await Promise.all([
      page.waitForEvent('download'),
      plot('latency').getByRole('button', { name: 'PNG' }).click(),
    ]);
    expect(png.suggestedFilename()).toBe('oversubscription-latency.png');
  });

  it('saves the session to a file and loads it back: the replay matches the saved trace', async () => {
    const [file] = await Promise.all([
      page.waitForEvent('download'),
      toolbar().getByRole('button', { name: 'Save session' }).click(),
    ]);
    expect(file.suggestedFilename()).toBe('oversubscription.hmmlab-session.json');
    const path = await file.path();
    const saved = JSON.parse(await readFile(path, 'utf8')) as SessionFile;
    expect(saved).toMatchObject({
      format: 'hmm-lab-session',
      version: 1,
      drivers: { gpu0: 'plugin:dmirror' },
    });
    const counters = saved.counters;

    await toolbar().getByRole('button', { name: 'Reset' }).click();
    await expect.poll(() => num('accesses')).toBe(0);
    await page.locator('input[name=session]').setInputFiles(path);
    await expect
      .poll(() => page.locator('.run-view .message.note').innerText(), { timeout: 60_000 })
      .toContain('the trace matches the saved one');
    await expect.poll(() => num('evictions')).toBe(counters.evictions);
    await expect(num('accesses')).resolves.toBe(counters.accesses);
  });

  it('opening a scenario without the machine file it names says which file is missing', async () => {
    await page.locator('input[name=scenario]').setInputFiles(selftest('migrate.scenario.json'));
    await expect
      .poll(() => page.locator('.run-view .message.error').innerText())
      .toBe(
        'migrate.scenario.json names the machine file "dmirror.machine.json", which is not among the files picked: open dmirror.machine.json together with the scenario',
      );
  });

  it('opens a scenario file with its machine file and plays it: every step PASS', async () => {
    await page
      .locator('input[name=scenario]')
      .setInputFiles([selftest('migrate.scenario.json'), selftest('dmirror.machine.json')]);
    await expect.poll(() => toolbar().getByRole('status').innerText()).toContain('ready');
    await expect(page.locator('.run-view .message.error').count()).resolves.toBe(0);
    await toolbar().getByRole('button', { name: 'Play' }).click();
    await expect.poll(() => toolbar().getByRole('status').innerText()).toContain('done');
    await expect.poll(() => steps().locator('li').count()).toBe(9);
    await expect(steps().locator('li.pass').count()).resolves.toBe(9);
    await expect(steps().locator('.summary').innerText()).resolves.toContain('9 passed, 0 failed');
    await expect(steps().locator('li[data-step="5"]').innerText()).resolves.toMatch(/5\s+device\s+PASS/);
    await page.screenshot({ path: '/tmp/run-scenario.png' });
  });

  it('a missed expectation is FAIL with the text the CLI prints', async () => {
    const scenario = await migrate();
    scenario.steps[5]!.expect = { ret: 0, cpages: 1000 };
    await page
      .locator('input[name=scenario]')
      .setInputFiles([jsonFile('wrong.scenario.json', scenario), await machine()]);
    await expect.poll(() => toolbar().getByRole('status').innerText()).toContain('ready');
    await toolbar().getByRole('button', { name: 'Play' }).click();
    await expect.poll(() => steps().locator('.summary').innerText()).toContain('8 passed, 1 failed');
    await expect(steps().locator('li.fail').innerText()).resolves.toContain(
      'steps[5].expect.cpages: expected 1000, got 1024',
    );
    await page.screenshot({ path: '/tmp/run-scenario-fail.png' });
  });

  it("a broken scenario is refused with the parser's error naming step and field", async () => {
    const scenario = await migrate();
    scenario.steps[3]!.length = 'lots';
    await page
      .locator('input[name=scenario]')
      .setInputFiles([jsonFile('broken.scenario.json', scenario), await machine()]);
    await expect
      .poll(() => page.locator('.run-view .message.error').innerText())
      .toMatch(/^broken\.scenario\.json: steps\[3\] \(mmap\)\.length: expected a size/);
    // The run loaded before stays.
    await expect(steps().locator('.summary').innerText()).resolves.toContain('8 passed, 1 failed');
  });

  it('the workload picked stays picked when the view is left and opened again, and Load loads it', async () => {
    const demo = toolbar().locator('select[name=demo]');
    await demo.selectOption('hotset');
    await toolbar().getByRole('button', { name: 'Load' }).click();
    await expect.poll(() => page.locator('.nav .machine-name').innerText()).toContain('hotset');
    // Another one picked, not loaded.
    await demo.selectOption('two-gpus');
    await leaveAndComeBack();
    await expect(demo.inputValue()).resolves.toBe('two-gpus');
    // Back on the one loaded, left and opened again: still it, and Load loads it again.
    await demo.selectOption('hotset');
    await leaveAndComeBack();
    await expect(demo.inputValue()).resolves.toBe('hotset');
    await toolbar().getByRole('button', { name: 'Load' }).click();
    await expect.poll(() => toolbar().getByRole('status').innerText()).toContain('ready');
    const status = (await ctx.lab.request({ type: 'runStatus' })) as RunStatus;
    expect(status.scenario).toBe('hotset');
  });

  it('a speed picked during play shows at once, before the lab answers; one the lab refuses goes back, with its error', async () => {
    const speed = toolbar().locator('select[name=speed]');
    await speed.selectOption({ label: '1 ms / s' });
    await expect
      .poll(async () => ((await ctx.lab.request({ type: 'runStatus' })) as RunStatus).speed)
      .toBe(1e6);
    await toolbar().getByRole('button', { name: 'Play' }).click();
    await expect.poll(() => toolbar().getByRole('status').innerText()).toContain('playing');

    route.hold('runSpeed');
    await speed.selectOption({ label: '10 ms / s' });
    // The toolbar redrew for the request on its way (its buttons disabled meanwhile).
    await expect.poll(() => toolbar().getByRole('button', { name: 'Step' }).isDisabled()).toBe(true);
    await expect(speed.inputValue()).resolves.toBe('10000000');
    route.release();
    await expect.poll(() => toolbar().getByRole('button', { name: 'Step' }).isDisabled()).toBe(false);
    await expect(speed.inputValue()).resolves.toBe('10000000');
    expect(((await ctx.lab.request({ type: 'runStatus' })) as RunStatus).speed).toBe(1e7);

    route.hold('runSpeed');
    await speed.selectOption({ label: '100 ms / s' });
    await expect.poll(() => toolbar().getByRole('button', { name: 'Step' }).isDisabled()).toBe(true);
    await expect(speed.inputValue()).resolves.toBe('100000000');
    // Sent on with a speed the lab refuses.
    route.release((req) => ({ ...req, speed: -1 }));
    await expect
      .poll(() => page.locator('.run-view .message.error').innerText())
      .toContain('expected simulated ns per second');
    await expect(speed.inputValue()).resolves.toBe('10000000');
    expect(((await ctx.lab.request({ type: 'runStatus' })) as RunStatus).speed).toBe(1e7);

    await toolbar().getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => toolbar().getByRole('status').innerText()).toContain('paused');
  });

  it('logs no errors (CSP violations included)', () => {
    expect(ctx.pageErrors).toEqual([]);
  });
});

// The Run view in Chromium against the web host and a real lab: the oversubscription demo is
// loaded and played, the lab's aggregated series fill the plots while it runs, pause stops it,
// and the counters, CSV export and saved session agree with what the lab reports.
import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { RunStatus, SessionFile } from '../../src-main/api';
import { startWebHost, type WebHost } from '../../src-main/hosts/web/main';
import { WsLabClient } from '../../src-renderer/src/api/ws-client';

const repo = resolve(import.meta.dirname, '../..');
const webRoot = resolve(repo, 'out/web');
const screenshot = resolve(repo, 'docs/run.png');

let host: WebHost;
let browser: Browser;
let page: Page;
let lab: WsLabClient;
const pageErrors: string[] = [];

const toolbar = () => page.getByRole('toolbar', { name: 'Run controls' });
const plot = (id: string) => page.locator(`.run-plot[data-plot="${id}"]`);
const counter = (key: string) => page.locator(`.run-counters [data-counter="${key}"]`);
const num = async (key: string): Promise<number> =>
  Number((await counter(key).innerText()).replace(/,/g, ''));

beforeAll(async () => {
  if (!existsSync(resolve(webRoot, 'index.html'))) {
    const { build } = await import('vite');
    await build({ configFile: resolve(repo, 'vite.web.config.ts'), logLevel: 'warn' });
  }
  host = await startWebHost({ port: 0, root: webRoot });
  lab = new WsLabClient(`${host.url.replace(/^http/, 'ws')}api`, (u) => new WebSocket(u));
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
  await page.goto(`${host.url}#/run`);
  await page.locator('.run-view').waitFor();
});

afterAll(async () => {
  await browser?.close();
  lab?.close();
  await host?.close();
});

describe('Run view', () => {
  it('opens from the nav with the demo workloads to pick', async () => {
    await expect(page.locator('.nav-item.active').innerText()).resolves.toContain('Run');
    await expect(page.locator('.view-header h1').innerText()).resolves.toBe('Run');
    const select = toolbar().locator('select[name=demo]');
    await expect.poll(() => select.locator('option').count()).toBeGreaterThanOrEqual(3);
    await expect(select.inputValue()).resolves.toBe('oversubscription');
    await expect(page.locator('.run-view .intro').innerText()).resolves.toContain('512 MiB');
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
    await toolbar().getByRole('button', { name: 'Play' }).click();
    await expect.poll(() => toolbar().getByRole('status').innerText()).toContain('playing');
    // Wait for the GPU kernel's evictions: device memory full, pages going both ways.
    await expect.poll(() => num('evictions'), { timeout: 40_000, interval: 250 }).toBeGreaterThan(20_000);
    await toolbar().getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => toolbar().getByRole('status').innerText()).toContain('paused');

    for (const id of ['migrations', 'cumulative', 'faults', 'latency', 'rss', 'occupancy'])
      await expect.poll(() => plot(id).getAttribute('data-filled'), { timeout: 5000 }).toBe('true');
    // Every plot drew on its canvas.
    await expect(page.locator('.run-plot .uplot canvas').count()).resolves.toBe(6);

    const status = (await lab.request({ type: 'runStatus' })) as RunStatus;
    expect(status.state).toBe('paused');
    expect(status.counters.lost).toBe(0);
    expect(status.counters.evictions).toBeGreaterThan(0);
    await expect.poll(() => num('evictions')).toBe(status.counters.evictions);
    await expect(counter('lost').innerText()).resolves.toBe('0');

    // The device is full: the occupancy legend reads its 65,536 pages in use.
    await expect(plot('occupancy').locator('[data-series="gpu0 in use"] .value').innerText()).resolves.toBe(
      '65,536',
    );
    // The cumulative plot's latest values are the lab's counters.
    const toDevice = await plot('cumulative').locator('[data-series="gpu0 → device"] .value').innerText();
    expect(Number(toDevice.replace(/,/g, ''))).toBe(status.counters.migratedToDevice);
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
    mkdirSync(dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot });
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
    expect(saved).toMatchObject({ format: 'hmm-lab-session', version: 1, drivers: { gpu0: 'dmirror' } });
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

  it('logs no errors (CSP violations included)', () => {
    expect(pageErrors).toEqual([]);
  });
});

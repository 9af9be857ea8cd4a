// The Mirror view in Chromium against the web host and a real lab: a device read makes the
// device's entries appear next to the CPU's, a CPU store (copy on write) and a munmap make
// them vanish with the invalidation in the trace, and a snapshot's bytes are shown per page.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MirrorView } from '../../src-main/api';
import { DEMO_MACHINE } from '../../src-main/lab/machine-file';
import type { WsLabClient } from '../../src-renderer/src/api/ws-client';
import { labRoute, openLab, type LabPage } from './harness';

let t: LabPage;
let page: Page;
let lab: WsLabClient;

const controls = () => page.getByRole('form', { name: 'Mirror controls' });
const deviceButton = (name: string) =>
  controls().getByRole('group', { name: 'Device commands' }).getByRole('button', { name, exact: true });
const cpuButton = (name: string) =>
  controls().getByRole('group', { name: 'CPU steps' }).getByRole('button', { name, exact: true });
const rows = () => page.locator('.mirror-table .m-row');
const traceLines = () => page.getByRole('log', { name: 'Mirror trace' }).locator('.line');

async function attrs(name: string): Promise<(string | null)[]> {
  return rows().evaluateAll((els, attr) => els.map((e) => e.getAttribute(attr)), name);
}

/** Wait until the rows' device column shows exactly these (memory kinds, 'none' for no entry). */
async function waitForDevice(expected: string[]): Promise<void> {
  await expect.poll(() => attrs('data-dev'), { timeout: 10_000 }).toEqual(expected);
}

async function setRange(offset: number, pages: number): Promise<void> {
  await controls().locator('input[name=offset]').fill(String(offset));
  await controls().locator('input[name=offset]').dispatchEvent('change');
  await controls().locator('input[name=pages]').fill(String(pages));
  await controls().locator('input[name=pages]').dispatchEvent('change');
}

/** Process p with a 16-page anonymous rw mapping buf, set up through the lab. */
async function setUpBuf(): Promise<void> {
  await lab.request({ type: 'op', op: { op: 'spawn', proc: 'p' } });
  await lab.request({
    type: 'op',
    op: {
      op: 'mmap',
      proc: 'p',
      name: 'buf',
      length: 16 * 4096,
      prot: 'rw',
      flags: ['private', 'anonymous'],
    },
  });
}

/** The page's connection to the lab, to cut it off and reconnect it. */
const route = labRoute();

/** Wait for the rows to be those the lab has for p's buf from page `offset`, `pages` long. */
async function expectRowsOf(offset: number, pages: number): Promise<void> {
  const view = await lab.request({ type: 'mirror', proc: 'p', device: 'gpu0', at: 'buf', offset, pages });
  await expect.poll(() => attrs('data-addr')).toEqual(view.rows.map((r) => r.addr));
}

/** Wait for the rows of `proc` (and `device`, as the summary names it) to be shown. */
async function waitForShown(proc: string, device: string): Promise<void> {
  const summary = () => page.locator('.mirror-table .summary').innerText();
  await expect.poll(summary).toContain(`${proc} (pid`);
  await expect.poll(summary).toContain(device);
}

/** The rows' snapshot column. */
const snaps = () => rows().locator('.snap').allInnerTexts();

/** Take a snapshot of the shown range and wait for its column. */
async function takeSnapshot(): Promise<void> {
  await deviceButton('snapshot').click();
  await expect.poll(() => controls().getByRole('status').innerText()).toContain('snapshot:');
  await expect.poll(async () => (await snaps()).filter(Boolean).length).toBeGreaterThan(0);
}

/** Nothing of the steps run before shows: no snapshot column, no flash, no result line. */
async function expectNoEarlierSteps(): Promise<void> {
  await expect.poll(snaps).toEqual(Array(await rows().count()).fill(''));
  await expect(page.getByText('snapshot column: taken at').count()).resolves.toBe(0);
  await expect(attrs('data-invalidated')).resolves.toEqual(Array(await rows().count()).fill(null));
  await expect(controls().getByRole('status').count()).resolves.toBe(0);
}

beforeAll(async () => {
  t = await openLab('#/mirror', '.mirror-view', { beforeLoad: route.attach });
  ({ page, lab } = t);
});

afterAll(async () => {
  await t?.close();
});

describe('Mirror view', () => {
  it('opens from the nav; a process and a mapping set up through the lab show 16 rows and no device entry', async () => {
    await expect(page.locator('.nav-item.active').innerText()).resolves.toContain('Mirror');
    await expect(page.locator('.view-header h1').innerText()).resolves.toBe('Mirror');
    await setUpBuf();
    await controls().locator('select[name=proc]').selectOption('p');
    await setRange(0, 16);
    await waitForDevice(Array(16).fill('none'));
    await expect.poll(() => attrs('data-cpu')).toEqual(Array(16).fill('none'));
    await expect(page.locator('.mirror-table .summary').innerText()).resolves.toContain('no mirror');
  });

  it('a device read opens the device, faults the range in and the device entries appear on the right', async () => {
    await deviceButton('read').click();
    await waitForDevice(Array(16).fill('zero'));
    await expect.poll(() => attrs('data-cpu')).toEqual(Array(16).fill('zero'));
    await expect
      .poll(() => controls().getByRole('status').innerText())
      .toContain('read: ret 0 · cpages 16 · faults 1');
    await expect(page.locator('.mirror-table .summary').innerText()).resolves.toContain('gpu0 mirrors it');
    const kinds = await traceLines().evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')));
    expect(kinds).toEqual(['register', 'fault', 'command']);
    const view = (await lab.request({
      type: 'mirror',
      proc: 'p',
      device: 'gpu0',
      at: 'buf',
      pages: 16,
    })) as MirrorView;
    await expect(rows().first().innerText()).resolves.toContain(`0x${view.rows[0]!.dev!.pfn.toString(16)}`);
  });

  it('a CPU store copies on write: those device entries vanish, the rows flash and the trace shows the invalidation', async () => {
    await setRange(0, 8);
    await cpuButton('store').click();
    await setRange(0, 16);
    await waitForDevice([...Array(8).fill('none'), ...Array(8).fill('zero')]);
    await expect
      .poll(() => attrs('data-invalidated'))
      .toEqual([...Array(8).fill('cow'), ...Array(8).fill(null)]);
    await expect(rows().first().locator('.flash').count()).resolves.toBe(1);
    await expect(rows().first().innerText()).resolves.toContain('invalidated (cow)');
    const inval = traceLines().filter({ hasText: 'dropped 8' });
    await expect(inval.getAttribute('data-kind')).resolves.toBe('invalidate');
    await expect(inval.innerText()).resolves.toContain('+8 pages');
    await expect(inval.innerText()).resolves.toContain('×8');
  });

  it('read again, migrate four pages, then munmap two: device-private rows, and the unmapped rows go', async () => {
    await deviceButton('read').click();
    await waitForDevice([...Array(8).fill('system'), ...Array(8).fill('zero')]);
    await setRange(10, 4);
    await deviceButton('→ device').click();
    await expect
      .poll(() => controls().getByRole('status').innerText())
      .toContain('migrate: ret 0 · cpages 4');
    await setRange(0, 16);
    await waitForDevice([
      ...Array(8).fill('system'),
      ...Array(2).fill('zero'),
      ...Array(4).fill('device'),
      ...Array(2).fill('zero'),
    ]);
    await expect(rows().nth(10).getAttribute('data-cpu')).resolves.toBe('device-private');
    await expect(rows().nth(10).innerText()).resolves.toContain('gpu0 (local)');

    await setRange(14, 2);
    await cpuButton('munmap').click();
    await setRange(0, 16);
    await expect
      .poll(() => attrs('data-cpu'))
      .toEqual([
        ...Array(8).fill('present'),
        ...Array(2).fill('zero'),
        ...Array(4).fill('device-private'),
        ...Array(2).fill('unmapped'),
      ]);
    await expect(traceLines().last().innerText()).resolves.toContain('unmap');
    await expect(traceLines().last().innerText()).resolves.toContain('dropped 2');
  });

  it('a snapshot shows one byte per page: WRITE, ZERO|READ and LOCAL|WRITE', async () => {
    await setRange(0, 14);
    await deviceButton('snapshot').click();
    const snaps = () => rows().locator('.snap').allInnerTexts();
    await expect
      .poll(snaps)
      .toEqual([...Array(8).fill('WRITE'), ...Array(2).fill('ZERO|READ'), ...Array(4).fill('LOCAL|WRITE')]);
    await expect.poll(() => controls().getByRole('status').innerText()).toContain('bytes 0x02 0x02');
    await expect(page.locator('.mirror-table .badge.ok').innerText()).resolves.toBe('coherent');

    // The teacher's picture: a fresh invalidation on a mirrored range, next to the snapshot.
    await setRange(4, 2);
    await cpuButton('mprotect r').click();
    await setRange(0, 14);
    // All 14 rows, not the 2 of the range before it (whose rows flash too).
    await expect
      .poll(() => attrs('data-invalidated'))
      .toEqual([...Array(4).fill(null), 'protection', 'protection', ...Array(8).fill(null)]);
    await t.screenshot('mirror.png');
    expect(t.pageErrors).toEqual([]);
  });

  it('a range being typed survives the controls redrawing for a lab event, and applies once committed', async () => {
    const offsetField = controls().locator('input[name=offset]');
    await offsetField.fill('2');
    // A process spawned meanwhile: the controls redraw to list it.
    await lab.request({ type: 'op', op: { op: 'spawn', proc: 'q' } });
    await expect
      .poll(() => controls().locator('select[name=proc] option').allInnerTexts())
      .toEqual(['p', 'q']);
    await expect(offsetField.inputValue()).resolves.toBe('2');
    await offsetField.press('Tab');
    await expectRowsOf(2, 14);
    expect(t.pageErrors).toEqual([]);
  });

  it('Enter in a range field applies it and runs no step', async () => {
    const trace = await traceLines().count();
    const result = await controls().locator('.result').innerText();
    const pagesField = controls().locator('input[name=pages]');
    await pagesField.fill('3');
    await pagesField.press('Enter');
    await expectRowsOf(2, 3);
    await expect(pagesField.evaluate((e) => e.matches(':focus'))).resolves.toBe(true);
    await expect(traceLines().count()).resolves.toBe(trace);
    await expect(controls().locator('.result').innerText()).resolves.toBe(result);
    expect(t.pageErrors).toEqual([]);
  });

  it("another process's rows show without the snapshot, flashes and result of the steps run on the first", async () => {
    await setRange(0, 16);
    await cpuButton('mprotect rw').click();
    await takeSnapshot();
    await lab.request({ type: 'op', op: { op: 'fork', proc: 'p', child: 'c' } });
    await controls().locator('select[name=proc]').selectOption('c');
    // The child has not opened the device: no mirror.
    await waitForShown('c', 'gpu0: no mirror');
    await expectNoEarlierSteps();
    expect(t.pageErrors).toEqual([]);
  });

  it('after the lab restarts, the view reconnects to a fresh lab showing nothing of the steps run on the old one', async () => {
    await controls().locator('select[name=proc]').selectOption('p');
    await setRange(0, 16);
    await waitForShown('p', 'gpu0');
    await takeSnapshot();
    await setRange(4, 2);
    await cpuButton('mprotect r').click();
    await setRange(0, 16);
    await expect.poll(() => attrs('data-invalidated')).toContain('protection');

    // The lab restarts (a new machine, the same process and mapping set up again) while the
    // page is cut off from it, then the page reconnects.
    route.muted = true;
    await lab.request({ type: 'loadMachine', machine: DEMO_MACHINE });
    await setUpBuf();
    const before = route.connections;
    await route.disconnect();
    route.muted = false;
    await expect.poll(() => route.connections, { timeout: 10_000 }).toBeGreaterThan(before);

    await expect.poll(() => attrs('data-cpu'), { timeout: 10_000 }).toEqual(Array(16).fill('none'));
    await waitForDevice(Array(16).fill('none'));
    await expectNoEarlierSteps();
    // The trace is the fresh lab's.
    const fresh = await lab.request({ type: 'mirrorEvents' });
    await expect.poll(() => traceLines().count()).toBe(fresh.length);
    expect(t.pageErrors).toEqual([]);
  });

  it("another device's rows show without the snapshot and result of the steps run through the first", async () => {
    await lab.request({
      type: 'addDevice',
      device: { name: 'gpu1', kind: 'private', memory: '256M', driver: 'dmirror' },
    });
    await deviceButton('read').click();
    await waitForDevice(Array(16).fill('zero'));
    await takeSnapshot();
    await controls().locator('select[name=device]').selectOption('gpu1');
    await waitForShown('p', 'gpu1: no mirror');
    await expectNoEarlierSteps();
    expect(t.pageErrors).toEqual([]);
  });
});

// The Processes view in Chromium against the web host and a real lab: ops run from the op bar
// change the kernel, and the process list, page-table inspector and rss plot show what the lab
// then reports.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PageTableView, ProcessInfo } from '../../src-main/api';
import type { WsLabClient } from '../../src-renderer/src/api/ws-client';
import { labRoute, openLab, showView, type LabPage } from './harness';

let t: LabPage;
let page: Page;
let lab: WsLabClient;
/** The page's lab requests go through here, to be held as a slow lab would. */
const route = labRoute();

const form = () => page.getByRole('form', { name: 'Run an op' });
const opButton = (name: string) =>
  form().getByRole('group', { name: 'Ops' }).getByRole('button', { name, exact: true });
const rows = () => page.locator('.page-table-inspector .pt-row');

async function statesInPage(): Promise<string[]> {
  return rows().evaluateAll((els) => els.map((e) => e.getAttribute('data-state') ?? ''));
}

/** Wait until the inspector rows show exactly these states. */
async function waitForStates(expected: string[]): Promise<void> {
  await expect.poll(statesInPage, { timeout: 10_000 }).toEqual(expected);
}

async function rowAttrs(name: string): Promise<(string | null)[]> {
  return rows().evaluateAll((els, attr) => els.map((e) => e.getAttribute(attr)), name);
}

beforeAll(async () => {
  t = await openLab('#/processes', '.processes-view', { beforeLoad: route.attach });
  ({ page, lab } = t);
});

afterAll(async () => {
  await t?.close();
});

describe('Processes view', () => {
  it('opens from the nav with an empty process list', async () => {
    await expect(page.locator('.nav-item.active').innerText()).resolves.toContain('Processes');
    await expect(page.locator('.view-header h1').innerText()).resolves.toBe('Processes');
    await expect(page.locator('.process-list .empty').innerText()).resolves.toContain('No processes');
    // The hint under the op bar reads to its end, however narrow the window.
    const hint = form().locator('.result.muted');
    await expect(hint.evaluate((el) => el.scrollWidth <= el.clientWidth)).resolves.toBe(true);
    await expect(hint.innerText()).resolves.toMatch(/\(copy on write\)\.$/);
  });

  it('spawn and mmap from the op bar: the process and its vma appear, the inspector shows 16 none rows', async () => {
    await form().locator('input[name=proc]').fill('p');
    await form().locator('input[name=at]').fill('buf');
    await form().locator('input[name=pages]').fill('16');
    await opButton('spawn').click();
    await page.locator('.proc[data-proc="p"]').waitFor();
    await opButton('mmap').click();
    await page.locator('.proc[data-proc="p"] .vma[data-vma="buf"]').waitFor();

    const [p] = (await lab.request({ type: 'processes' })) as ProcessInfo[];
    const vma = p!.vmas.find((v) => v.name === 'buf')!;
    await expect(page.locator('.vma[data-vma="buf"]').getAttribute('aria-pressed')).resolves.toBe('true');
    await waitForStates(Array(16).fill('none'));
    await expect(rows().first().getAttribute('data-addr')).resolves.toBe(vma.start);
    await expect(page.locator('.page-table-inspector .head').innerText()).resolves.toContain('rw-p');
  });

  it('load faults in the zero page; store makes the rows present and writable, as the lab reports them', async () => {
    await form().locator('input[name=pages]').fill('4');
    await opButton('load').click();
    await waitForStates([...Array(4).fill('zero'), ...Array(12).fill('none')]);

    await form().locator('input[name=pages]').fill('16');
    await form().locator('select[name=fill]').selectOption('index');
    await opButton('store').click();
    await waitForStates(Array(16).fill('present'));

    const view = (await lab.request({ type: 'pageTable', proc: 'p', at: 'buf' })) as PageTableView;
    const first = rows().first();
    const text = await first.innerText();
    expect(text).toContain(`0x${view.rows[0]!.pfn!.toString(16)}`);
    expect(text).toContain('W D');
    await expect(page.locator('.proc[data-proc="p"] [data-counter="anon"] dd').innerText()).resolves.toBe(
      '16',
    );
  });

  it('the rss plot shows the anon pages over simulated time', async () => {
    const legend = page.locator('.rss-plot .legend li[data-proc="p"] [data-counter="anon"]');
    await expect.poll(() => legend.locator('.mono').innerText(), { timeout: 10_000 }).toBe('16');
    await expect(legend.innerText()).resolves.toContain('16');
    await expect(page.locator('.rss-plot canvas').count()).resolves.toBeGreaterThan(0);
    const series = await lab.request({ type: 'rssSeries' });
    expect(series[0]!.points.anon.at(-1)![1]).toBe(16);
  });

  it('hovering a row shows its page-table entry in a tooltip', async () => {
    await rows().nth(2).hover();
    const tip = page.getByTestId('pte-tooltip');
    await tip.waitFor();
    const text = await tip.innerText();
    expect(text).toContain('present');
    expect(text).toContain('refcount');
    await page.mouse.move(5, 5);
  });

  it('a page leaves for the device and comes back: migrate turns rows device-private, a CPU load and migrate_to_sys bring them back', async () => {
    await form().locator('input[name=pages]').fill('8');
    await opButton('→ device').click();
    await waitForStates([...Array(8).fill('device-private'), ...Array(8).fill('present')]);
    await expect(form().getByRole('status').innerText()).resolves.toContain('cpages 8');
    const view = (await lab.request({ type: 'pageTable', proc: 'p', at: 'buf' })) as PageTableView;
    expect(view.rows[0]).toMatchObject({ state: 'device-private', device: 'gpu0' });
    await expect(rows().first().innerText()).resolves.toContain('gpu0');

    // A CPU load of page 2 faults it back through the device's fault callback.
    await form().locator('input[name=at]').fill('buf');
    await form().locator('input[name=pages]').fill('3');
    await opButton('load').click();
    await waitForStates([
      ...Array(3).fill('present'),
      ...Array(5).fill('device-private'),
      ...Array(8).fill('present'),
    ]);

    await rows().nth(4).hover();
    await page.getByTestId('pte-tooltip').waitFor();
    await expect(page.getByTestId('pte-tooltip').innerText()).resolves.toContain('gpu0');
    await t.screenshot('processes.png');
    await page.mouse.move(5, 5);

    await form().locator('input[name=pages]').fill('16');
    await opButton('← system').click();
    await waitForStates(Array(16).fill('present'));
    await expect(form().getByRole('status').innerText()).resolves.toContain('cpages 5');
  });

  it('fork shares the pages read-only; a store in the child copies them', async () => {
    await form().locator('input[name=child]').fill('c');
    await opButton('fork').click();
    await page.locator('.proc[data-proc="c"]').waitFor();
    // The parent's view: every page now shared with the child and write-protected.
    await expect.poll(() => rowAttrs('data-refcount'), { timeout: 10_000 }).toEqual(Array(16).fill('2'));
    await expect.poll(() => rowAttrs('data-write'), { timeout: 10_000 }).toEqual(Array(16).fill('false'));

    await form().locator('input[name=proc]').fill('c');
    await form().locator('input[name=pages]').fill('4');
    await form().locator('select[name=fill]').selectOption('byte 0xff');
    await opButton('store').click();
    await page.locator('.proc[data-proc="c"] .vma[data-vma="buf"]').click();
    await expect
      .poll(async () => [(await rowAttrs('data-refcount'))[0], (await rowAttrs('data-write'))[0]], {
        timeout: 10_000,
      })
      .toEqual(['1', 'true']);
    const child = (await lab.request({ type: 'pageTable', proc: 'c', at: 'buf' })) as PageTableView;
    expect(child.rows.slice(0, 4).map((r) => [r.refcount, r.write])).toEqual(Array(4).fill([1, true]));
    await expect(page.locator('.page-table-inspector .head').innerText()).resolves.toContain('c');

    await form().locator('input[name=proc]').fill('p');
    await page.locator('.proc[data-proc="p"] .vma[data-vma="buf"]').click();
  });

  it('a refused op shows the lab error naming the field', async () => {
    await form().locator('input[name=at]').fill('nope');
    await opButton('load').click();
    const alert = form().getByRole('alert');
    await alert.waitFor();
    await expect(alert.innerText()).resolves.toContain('op.at: no mapping named "nope"');
    // An error is never cut off: it wraps.
    await expect(alert.evaluate((el) => el.scrollWidth <= el.clientWidth)).resolves.toBe(true);
    await expect(
      alert.evaluate((el) => el.ownerDocument.defaultView!.getComputedStyle(el).whiteSpace),
    ).resolves.toBe('normal');
    await form().locator('input[name=at]').fill('buf');
  });

  it('munmap empties the inspector; exit removes the process', async () => {
    await form().locator('input[name=proc]').fill('c');
    await opButton('munmap').click();
    await page.locator('.proc[data-proc="c"] .vma').waitFor({ state: 'detached' });
    await opButton('exit').click();
    await page.locator('.proc[data-proc="c"]').waitFor({ state: 'detached' });
    await expect(statesInPage()).resolves.toHaveLength(16);
  });

  it('a slow mmap selects the mapping it made, whatever Process is typed while it waits', async () => {
    await form().locator('input[name=proc]').fill('q');
    await opButton('spawn').click();
    await page.locator('.proc[data-proc="q"]').waitFor();
    await form().locator('input[name=at]').fill('qbuf');
    await form().locator('input[name=pages]').fill('8');
    route.hold('op');
    await opButton('mmap').click();
    await expect.poll(() => route.held).toBe(1);
    await form().locator('input[name=proc]').fill('p');
    route.release();
    const qbuf = page.locator('.proc[data-proc="q"] .vma[data-vma="qbuf"]');
    await expect.poll(() => qbuf.getAttribute('aria-pressed'), { timeout: 10_000 }).toBe('true');
    await waitForStates(Array(8).fill('none'));
  });

  it('a slow device command migrates the pages it was asked for, whatever is typed while it waits', async () => {
    await form().locator('input[name=proc]').fill('q');
    await opButton('store').click();
    await waitForStates(Array(8).fill('present'));
    // The device is opened in q first: hold that, and type another process, mapping and count.
    route.hold('op');
    await opButton('→ device').click();
    await expect.poll(() => route.held).toBe(1);
    await form().locator('input[name=proc]').fill('p');
    await form().locator('input[name=at]').fill('buf');
    await form().locator('input[name=pages]').fill('2');
    route.release();
    await waitForStates(Array(8).fill('device-private'));
    await expect(form().getByRole('status').innerText()).resolves.toContain('device q qbuf');
    await expect(form().getByRole('status').innerText()).resolves.toContain('cpages 8');
  });

  it('the op bar keeps what was typed while another view is open', async () => {
    const typed = { proc: 'q', at: 'qbuf', pages: '3', child: 'qc' };
    for (const [field, value] of Object.entries(typed))
      await form().locator(`input[name=${field}]`).fill(value);
    await form().locator('select[name=fill]').selectOption('negindex');
    await showView(page, 'layout');
    await showView(page, 'processes');
    for (const [field, value] of Object.entries(typed))
      await expect(form().locator(`input[name=${field}]`).inputValue()).resolves.toBe(value);
    await expect(form().locator('select[name=fill]').inputValue()).resolves.toBe('negindex');
  });

  it('logs no errors (CSP violations included)', () => {
    expect(t.pageErrors).toEqual([]);
  });
});

// The Drivers view in Chromium against the web host and a real lab: Monaco (bundled, with the
// TypeScript language service and the hmm-lab declarations), driver files in a data folder with
// autosave and a recovery copy, and Load & run of an edited bundled plugin: its dev_info line in
// the log, the lab's migration counters, then an endless loop stopped with its line while the lab
// goes on answering.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LayoutSnapshot } from '../../src-main/api';
import type { WsLabClient } from '../../src-renderer/src/api/ws-client';
import { labRoute, openLab, repo, type LabPage } from './harness';

/** A bundled plugin's source, as the lab ships it (plugins/<name>/<name>.ts). */
const bundledSource = (name: string) => readFileSync(resolve(repo, `plugins/${name}/${name}.ts`), 'utf8');

let t: LabPage;
let page: Page;
let lab: WsLabClient;
let dataDir: string;
/** The page's globals page.evaluate uses (this tsconfig has no DOM types). */
type PageElement = { tagName: string; className: string };
type PageGlobals = {
  localStorage: { getItem(k: string): string | null; setItem(k: string, v: string): void };
  document: {
    activeElement: PageElement | null;
    elementFromPoint(x: number, y: number): PageElement | null;
  };
  dispatchEvent(e: unknown): boolean;
  Event: new (type: string) => unknown;
};

const userFile = (name: string) => join(dataDir, 'drivers', name);
const fileButton = (origin: 'user' | 'bundled', name: string) =>
  page.locator(`.driver-file-list .file[data-origin="${origin}"][data-name="${name}"]`);
const openName = () => page.getByTestId('open-driver').innerText();
const saveState = () => page.locator('[data-save-state]').getAttribute('data-save-state');
const editorLines = () => page.locator('.driver-editor .monaco-editor .view-lines');
const activeLine = () => page.locator('.driver-editor .line-numbers.active-line-number').innerText();
const errorSquiggles = () => page.locator('.driver-editor .squiggly-error').count();
const counter = (key: string) => page.locator(`.driver-run-panel [data-counter="${key}"]`);
const phase = () => page.getByTestId('run-phase').getAttribute('class');

/** Where the keyboard is, for an error: the focused element, and what is under a point. */
async function focusReport(x: number, y: number): Promise<string> {
  return page.evaluate(
    ({ px, py }) => {
      const d = (globalThis as unknown as PageGlobals).document;
      const tag = (e: PageElement | null) =>
        e ? `<${e.tagName.toLowerCase()} class="${e.className}">` : 'none';
      return `focus on ${tag(d.activeElement)}, under (${px}, ${py}) ${tag(d.elementFromPoint(px, py))}`;
    },
    { px: x, py: y },
  );
}

/**
 * Put the cursor at the end of line n (Monaco's Go to Line), ready to type. Each step waits for
 * what it did: on a loaded machine keys pressed while the Go to Line box is still open or closing
 * land in the box, not in the editor.
 */
async function endOfLine(n: number): Promise<void> {
  const goToLine = page.locator('.quick-input-widget');
  const focused = page.locator('.driver-editor .monaco-editor.focused');
  // A click only when the editor lacks the keyboard (after a file was picked, say): a jump to a
  // fault's line has already given it, and clicks on the text meet that line's marker and hover.
  if (!(await focused.count())) {
    // A hover left under the pointer would take the click, and the editor would not get the keys.
    await page.mouse.move(0, 0);
    await expect.poll(() => page.locator('.monaco-hover:not(.hidden):visible').count()).toBe(0);
    // The text spans the whole file: click the middle of the part on screen.
    const box = (await editorLines().boundingBox())!;
    const top = Math.max(box.y, 0);
    const bottom = Math.min(box.y + box.height, page.viewportSize()!.height);
    const at = { x: Math.round(box.x + box.width / 2), y: Math.round((top + bottom) / 2) };
    await editorLines().click({ position: { x: at.x - box.x, y: at.y - box.y } });
    await focused.waitFor({ timeout: 10_000 }).catch(async () => {
      throw new Error(`the editor did not take the keyboard on a click: ${await focusReport(at.x, at.y)}`);
    });
  }
  await page.keyboard.press('Control+G');
  await goToLine.waitFor({ state: 'visible' });
  await page.keyboard.type(String(n));
  await page.keyboard.press('Enter');
  await goToLine.waitFor({ state: 'hidden' });
  await expect.poll(activeLine).toBe(String(n));
  await focused.waitFor();
  await page.keyboard.press('End');
}

/** Insert lines after line n, as typed text (no auto-closing brackets, no auto-indent). */
async function insertAfter(n: number, text: string): Promise<void> {
  await endOfLine(n);
  await page.keyboard.insertText(`\n${text}`);
  // The cursor ends on the last inserted line: the text is in the editor, not elsewhere.
  await expect.poll(activeLine).toBe(String(n + text.split('\n').length));
}

/** Delete `count` lines from line n (Monaco's Delete Line). */
async function deleteLines(n: number, count: number): Promise<void> {
  await endOfLine(n);
  for (let i = 0; i < count; i++) await page.keyboard.press('Control+Shift+K');
}

/** The line (1-based) that opens the body of `export function name(`, in source. */
function bodyLine(source: string, name: string): number {
  const lines = source.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^export function ${name}\\(`).test(l));
  if (start < 0) throw new Error(`no export function ${name} in the plugin`);
  const open = lines.findIndex((l, i) => i >= start && l.trimEnd().endsWith('{'));
  return open + 1;
}

/** Open a file from the list, and wait until it is the one shown. */
async function openDriver(origin: 'user' | 'bundled', name: string): Promise<void> {
  await fileButton(origin, name).click();
  await expect.poll(openName).toBe(name);
}

/** Fill the name form of New or Rename with `name` and submit it (Create, or Rename). */
async function submitName(button: 'New' | 'Rename', name: string): Promise<void> {
  await page.getByRole('button', { name: button, exact: true }).click();
  await page.locator('input[name=driver-name]').fill(name);
  const submit = page.locator('.name-form button[type=submit]');
  await expect(submit.innerText()).resolves.toBe(button === 'New' ? 'Create' : 'Rename');
  await submit.click();
}

/** Delete the open file, confirmed. */
async function deleteOpenDriver(): Promise<void> {
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByRole('alertdialog').getByRole('button', { name: 'Delete' }).click();
}

/** The window gets the focus back, as when the user returns from another window. */
async function refocus(): Promise<void> {
  await page.evaluate(() => {
    const w = globalThis as unknown as PageGlobals;
    w.dispatchEvent(new w.Event('focus'));
  });
}

/** A file made, then removed, outside the lab: the list shows each once the window has the focus back. */
async function madeAndRemovedOutside(name: string): Promise<void> {
  writeFileSync(userFile(name), '// written by another editor\n');
  await refocus();
  await fileButton('user', name).waitFor();
  rmSync(userFile(name));
  await refocus();
  await expect.poll(() => fileButton('user', name).count()).toBe(0);
}

/**
 * Once this returns, the page has had the lab's answers to everything it sent before: the lab
 * answers in order, and the lists asked for after them have come back.
 */
const settled = () => madeAndRemovedOutside('fence.ts');

async function waitSaved(): Promise<void> {
  await expect.poll(saveState, { timeout: 10_000 }).toBe('saved');
}

/** The page's lab requests go through here, to be held or answered by the test. */
const route = labRoute();

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'hmm-lab-e2e-drivers-'));
  t = await openLab('#/drivers', '.drivers-view', { dataDir, beforeLoad: route.attach });
  ({ page, lab } = t);
});

afterAll(async () => {
  await t?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('Drivers view', () => {
  it('opens from the nav and lists the bundled plugins read-only, with no user drivers yet', async () => {
    await expect(page.locator('.nav-item.active').innerText()).resolves.toContain('Drivers');
    await expect(page.locator('.view-header h1').innerText()).resolves.toBe('Drivers');
    await fileButton('bundled', 'dmirror.ts').waitFor();
    await expect(page.locator('.driver-file-list .file[data-origin="user"]').count()).resolves.toBe(0);
    // The first bundled plugin opens on its own, read-only, in Monaco.
    await editorLines().waitFor({ timeout: 30_000 });
    await expect(page.locator('.editor-head .badge').innerText()).resolves.toContain('read-only');
  });

  it('editing a bundled plugin makes a user copy in the data folder; the bundled one stays', async () => {
    await openDriver('bundled', 'dmirror.ts');
    await page.getByRole('button', { name: 'Edit a copy' }).click();
    await fileButton('user', 'dmirror.ts').waitFor();
    await expect(fileButton('user', 'dmirror.ts').getAttribute('aria-pressed')).resolves.toBe('true');
    await expect(page.locator('.editor-head .badge').count()).resolves.toBe(0);
    expect(readFileSync(userFile('dmirror.ts'), 'utf8')).toBe(bundledSource('dmirror'));
  });

  it('keys pressed in a bundled plugin make one copy of it, opened to edit', async () => {
    await openDriver('bundled', 'pmem-dax.ts');
    await editorLines().click();
    route.hold('newDriver');
    await page.keyboard.type('abc');
    await settled();
    expect(route.held).toBe(1);
    route.release();
    await expect.poll(() => fileButton('user', 'pmem-dax.ts').getAttribute('aria-pressed')).toBe('true');
    await expect(page.locator('.drivers-view .banner.error').count()).resolves.toBe(0);
    expect(readFileSync(userFile('pmem-dax.ts'), 'utf8')).toBe(bundledSource('pmem-dax'));
    await deleteOpenDriver();
    await expect.poll(openName).toBe('dmirror.ts');
  });

  it('TypeScript checks as you type against the hmm-lab declarations, with their docs on hover', async () => {
    await expect.poll(errorSquiggles, { timeout: 20_000 }).toBe(0);
    const source = readFileSync(userFile('dmirror.ts'), 'utf8');
    const lines = source.split('\n').length;
    await insertAfter(
      lines,
      "const oops: string = 42;\nimport { dev_info as e2e_check } from 'hmm-lab';\ne2e_check(7);",
    );
    // The recovery copy is written at once, before the autosave.
    const recovered = await page.evaluate(() =>
      (globalThis as unknown as PageGlobals).localStorage.getItem('hmm-lab:driver-recovery:dmirror.ts'),
    );
    expect(JSON.parse(recovered!).source).toContain('const oops: string = 42;');
    await expect.poll(errorSquiggles, { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
    // Hover docs come from hmm-lab.d.ts.
    await page
      .locator('.driver-editor .view-line span', { hasText: /^e2e_check$/ })
      .last()
      .hover();
    const hover = page.locator('.monaco-hover:not(.hidden)');
    await expect.poll(() => hover.innerText(), { timeout: 10_000 }).toContain('KERN_INFO');
    await page.mouse.move(5, 5);
    await waitSaved();
    expect(readFileSync(userFile('dmirror.ts'), 'utf8')).toContain('const oops: string = 42;');
    // Taken out again: clean, and saved so.
    await deleteLines(lines + 1, 3);
    await expect.poll(errorSquiggles, { timeout: 20_000 }).toBe(0);
    await waitSaved();
    expect(readFileSync(userFile('dmirror.ts'), 'utf8')).toBe(source);
  });

  it('a recovery copy newer than the saved file comes back after a reload, and is saved', async () => {
    const source = readFileSync(userFile('dmirror.ts'), 'utf8');
    await page.evaluate(
      (src) =>
        (globalThis as unknown as PageGlobals).localStorage.setItem(
          'hmm-lab:driver-recovery:dmirror.ts',
          JSON.stringify({ source: src, at: Date.now() + 1000 }),
        ),
      `${source}// typed just before the crash\n`,
    );
    await page.reload();
    await page.locator('.drivers-view').waitFor();
    await expect.poll(openName).toBe('dmirror.ts');
    await expect(page.locator('.editor-panel .notice').innerText()).resolves.toContain('Restored edits');
    await waitSaved();
    expect(readFileSync(userFile('dmirror.ts'), 'utf8')).toBe(`${source}// typed just before the crash\n`);
    await expect
      .poll(() =>
        page.evaluate(() =>
          (globalThis as unknown as PageGlobals).localStorage.getItem('hmm-lab:driver-recovery:dmirror.ts'),
        ),
      )
      .toBeNull();
  });

  it('a new driver from the template, renamed, then deleted into .deleted/', async () => {
    await submitName('New', 'scratch.ts');
    await expect.poll(openName).toBe('scratch.ts');
    expect(readFileSync(userFile('scratch.ts'), 'utf8')).toContain("from 'hmm-lab'");
    await expect.poll(errorSquiggles, { timeout: 20_000 }).toBe(0);

    await page.getByRole('button', { name: 'Rename', exact: true }).click();
    await page.locator('input[name=driver-name]').fill('../x.ts');
    await expect(page.locator('.name-form button[type=submit]').isDisabled()).resolves.toBe(true);
    await page.locator('input[name=driver-name]').fill('renamed.ts');
    await page.locator('.name-form button[type=submit]').click();
    await expect.poll(openName).toBe('renamed.ts');
    expect(existsSync(userFile('scratch.ts'))).toBe(false);

    await deleteOpenDriver();
    await fileButton('user', 'renamed.ts').waitFor({ state: 'detached' });
    expect(existsSync(userFile('renamed.ts'))).toBe(false);
    const [kept] = readdirSync(join(dataDir, 'drivers/.deleted'));
    expect(readFileSync(join(dataDir, 'drivers/.deleted', kept!), 'utf8')).toContain("from 'hmm-lab'");
    await openDriver('user', 'dmirror.ts');
  });

  it('what is typed while another file opens or is made stays in the file it was typed in', async () => {
    const source = readFileSync(userFile('dmirror.ts'), 'utf8');
    const typed = (what: string) => expect(readFileSync(userFile('dmirror.ts'), 'utf8')).toContain(what);
    // Another file: its read is slow, and a line is typed into dmirror.ts meanwhile.
    route.hold('readDriver');
    await fileButton('bundled', 'pmem-dax.ts').click();
    await expect.poll(() => route.held).toBe(1);
    await insertAfter(1, '// typed while pmem-dax.ts opened');
    route.release();
    await expect.poll(openName).toBe('pmem-dax.ts');
    typed('// typed while pmem-dax.ts opened');

    // The file open already, clicked again: nothing to read, and the line typed after stays.
    await openDriver('user', 'dmirror.ts');
    route.hold('readDriver');
    await fileButton('user', 'dmirror.ts').click();
    await insertAfter(2, '// typed after a second click');
    route.release();
    await waitSaved();
    typed('// typed after a second click');
    // Monaco renders spaces as no-break spaces.
    const shown = (await editorLines().innerText()).replaceAll('\u00a0', ' ');
    expect(shown).toContain('// typed after a second click');

    // A new file, slow to be made.
    route.hold('newDriver');
    await submitName('New', 'slow.ts');
    await expect.poll(() => route.held).toBe(1);
    await insertAfter(3, '// typed while slow.ts was made');
    route.release();
    await expect.poll(openName).toBe('slow.ts');
    typed('// typed while slow.ts was made');
    await deleteOpenDriver();
    await fileButton('user', 'slow.ts').waitFor({ state: 'detached' });

    await expect.poll(openName).toBe('dmirror.ts');
    await deleteLines(2, 3);
    await waitSaved();
    expect(readFileSync(userFile('dmirror.ts'), 'utf8')).toBe(source);
  });

  it('Rename and Delete act on the open file: another file opening closes their forms, or keeps its place after a slow rename', async () => {
    const source = readFileSync(userFile('dmirror.ts'), 'utf8');
    const nameField = page.locator('input[name=driver-name]');
    const openOther = () => openDriver('bundled', 'pmem-dax.ts');
    await page.getByRole('button', { name: 'Rename', exact: true }).click();
    await nameField.waitFor();
    await openOther();
    await expect(nameField.count()).resolves.toBe(0);
    await openDriver('user', 'dmirror.ts');
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('alertdialog').waitFor();
    await openOther();
    await expect(page.getByRole('alertdialog').count()).resolves.toBe(0);

    // dmirror.ts renamed slowly, and pmem-dax.ts opened meanwhile: it stays open, read-only.
    await openDriver('user', 'dmirror.ts');
    route.hold('renameDriver');
    await submitName('Rename', 'moved.ts');
    await expect.poll(() => route.held).toBe(1);
    await openOther();
    route.release();
    await fileButton('user', 'moved.ts').waitFor();
    await expect(openName()).resolves.toBe('pmem-dax.ts');
    await expect(page.locator('.editor-head .badge').innerText()).resolves.toContain('read-only');
    expect(readFileSync(userFile('moved.ts'), 'utf8')).toBe(source);

    await openDriver('user', 'moved.ts');
    await submitName('Rename', 'dmirror.ts');
    await expect.poll(openName).toBe('dmirror.ts');
    expect(readFileSync(userFile('dmirror.ts'), 'utf8')).toBe(source);
  });

  it('a file clicked back to while another opens stays open', async () => {
    await openDriver('user', 'dmirror.ts');
    route.hold('readDriver');
    await fileButton('bundled', 'pmem-dax.ts').click();
    await expect.poll(() => route.held).toBe(1);
    await fileButton('user', 'dmirror.ts').click();
    route.release();
    await settled();
    await expect(openName()).resolves.toBe('dmirror.ts');
    await expect(page.locator('.editor-head .badge').count()).resolves.toBe(0);
  });

  it('after a delete, a next file that cannot be read says so and leaves the list', async () => {
    // The user's files in order: a-del.ts, b-gone.ts, dmirror.ts.
    for (const name of ['b-gone.ts', 'a-del.ts']) {
      await submitName('New', name);
      await expect.poll(openName).toBe(name);
    }
    route.hold('readDriver');
    await deleteOpenDriver();
    await expect.poll(() => route.held).toBe(1);
    rmSync(userFile('b-gone.ts'));
    route.release();
    const error = page.locator('.drivers-view .banner.error[role=alert]');
    await expect.poll(() => error.innerText()).toContain('ENOENT');
    // The list no longer offers it.
    await expect.poll(() => fileButton('user', 'b-gone.ts').count()).toBe(0);
    await openDriver('user', 'dmirror.ts');
    await expect(error.count()).resolves.toBe(0);
  });

  it('files made or removed outside the lab show when the window gets the focus back', async () => {
    await madeAndRemovedOutside('outside.ts');
    await expect(openName()).resolves.toBe('dmirror.ts');
  });

  it('the first fault moves the cursor; later ones do not replace it until it is dismissed', async () => {
    const report = (line: number, device: string) =>
      route.fromLab({
        event: {
          type: 'driverError',
          error: {
            kind: 'throw',
            file: 'dmirror.ts',
            line,
            column: 3,
            message: `e2e ${line}`,
            callback: 'fault',
            device,
          },
        },
      });
    const banner = page.getByTestId('driver-fault');
    await endOfLine(5);
    report(30, 'gpu0');
    report(40, 'gpu1');
    await expect.poll(() => banner.innerText()).toContain('dmirror.ts:30:3');
    await expect.poll(activeLine).toBe('30');
    await endOfLine(5);
    report(50, 'gpu1');
    // A layout event after it, under another machine name: once the page shows that name, it has
    // handled the report before it (one socket, in order). Then the lab's own layout again.
    const layout = await lab.request({ type: 'layout' });
    route.fromLab({ event: { type: 'layout', layout: { ...layout, machine: 'e2e-sync' } } });
    await expect.poll(() => page.locator('.machine-name').innerText()).toBe('e2e-sync');
    route.fromLab({ event: { type: 'layout', layout } });
    await expect(banner.innerText()).resolves.toContain('dmirror.ts:30:3');
    await expect(activeLine()).resolves.toBe('5');
    await page.getByRole('button', { name: 'Dismiss' }).click();
    report(60, 'gpu0');
    await expect.poll(() => banner.innerText()).toContain('dmirror.ts:60:3');
    await expect.poll(activeLine).toBe('60');
    await page.getByRole('button', { name: 'Dismiss' }).click();

    // A fault while a name is being typed: its line is shown, and the keys stay in the name.
    await page.getByRole('button', { name: 'Rename', exact: true }).click();
    const nameField = page.locator('input[name=driver-name]');
    await nameField.fill('new-na');
    report(70, 'gpu0');
    await expect.poll(activeLine).toBe('70');
    await page.keyboard.type('me.ts');
    await expect(nameField.inputValue()).resolves.toBe('new-name.ts');
    await page.keyboard.press('Escape');
    await expect(saveState()).resolves.toBe('saved');
    await page.getByRole('button', { name: 'Dismiss' }).click();
  });

  it('a syntax error is refused by loadDriver and marked on its line', async () => {
    const source = readFileSync(userFile('dmirror.ts'), 'utf8');
    const line = bodyLine(source, 'fault');
    await insertAfter(line, '  let = ;');
    await page.getByTestId('load-run').click();
    await expect.poll(phase, { timeout: 20_000 }).toContain('compile-failed');
    await expect(page.getByRole('list', { name: 'Compile errors' }).innerText()).resolves.toContain(
      `dmirror.ts:${line + 1}:`,
    );
    await expect.poll(activeLine).toBe(String(line + 1));
    await deleteLines(line + 1, 1);
    await waitSaved();
    expect(readFileSync(userFile('dmirror.ts'), 'utf8')).toBe(source);
  });

  it('a dev_info line added to the fault callback shows in the log after Load & run, with the migration counters', async () => {
    const source = readFileSync(userFile('dmirror.ts'), 'utf8');
    // Its own import, so the test does not depend on what the plugin imports.
    await insertAfter(1, "import { dev_info as e2e_info } from 'hmm-lab';");
    await insertAfter(bodyLine(source, 'fault') + 1, "  e2e_info('e2e: the fault callback ran');");
    await page.getByTestId('load-run').click();
    await expect.poll(phase, { timeout: 30_000 }).toContain('done');
    const log = page.getByRole('log', { name: 'Kernel log' });
    await expect.poll(() => log.innerText(), { timeout: 10_000 }).toContain('e2e: the fault callback ran');
    await expect(counter('migratedToDevice').innerText()).resolves.toBe('64');
    await expect(counter('migratedToSystem').innerText()).resolves.toBe('64');
    await expect(counter('lost').innerText()).resolves.toBe('0');
    expect(readFileSync(userFile('dmirror.ts'), 'utf8')).toContain(
      "e2e_info('e2e: the fault callback ran');",
    );
  });

  it('an endless loop in the fault callback is stopped: a timeout naming its line, and the editor goes there', async () => {
    const source = readFileSync(userFile('dmirror.ts'), 'utf8');
    const faultLine = bodyLine(source, 'fault');
    const loopLine = faultLine + 1;
    await insertAfter(faultLine, '  for (;;) {}');
    await page.getByTestId('load-run').click();
    const banner = page.getByTestId('driver-fault');
    await banner.waitFor({ timeout: 30_000 });
    const text = await banner.innerText();
    expect(text).toMatch(/^timeout/i);
    expect(text).toMatch(/in fault at dmirror\.ts:\d+:\d+ — .*budget/);
    // QuickJS places the interrupt at the loop, or at the start of the function it spins in.
    const line = Number(/dmirror\.ts:(\d+):/.exec(text)![1]);
    expect([faultLine, loopLine]).toContain(line);
    await expect.poll(activeLine, { timeout: 10_000 }).toBe(String(line));
    await expect(page.locator('.driver-editor .driver-fault-line').count()).resolves.toBeGreaterThan(0);
    await expect.poll(phase, { timeout: 30_000 }).toContain('failed');
    await page.mouse.move(5, 5);
    await t.screenshot('drivers.png');
  });

  it('the lab is still usable after the fault: it answers, and the Layout view shows the machine', async () => {
    const layout = (await lab.request({ type: 'layout' })) as LayoutSnapshot;
    expect(layout.devices.map((d) => d.name)).toContain('gpu0');
    await page.goto(`${t.host.url}#/layout`);
    await page.locator('.resource-table tr[data-name="gpu0"]').waitFor();
    await page.goto(`${t.host.url}#/drivers`);
    await page.locator('.drivers-view').waitFor();
    // And the source with the loop is still there, as saved.
    expect(readFileSync(userFile('dmirror.ts'), 'utf8')).toContain('for (;;) {}');
  });

  it('logs no errors (CSP violations included)', () => {
    expect(t.pageErrors).toEqual([]);
  });
});

// The Layout view in Chromium against the web host and a real lab: what the page shows is what the
// lab reports, and hotplug/removal through the page change the lab and come back as layout events.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LayoutSnapshot } from '../../src-main/api';
import type { WsLabClient } from '../../src-renderer/src/api/ws-client';
import { doubleClickAfterReply, labRoute, openLab, showView, type LabPage } from './harness';
import { formatAddr } from '../../src-renderer/src/layout/format';

const MiB = 1n << 20n;

let t: LabPage;
let page: Page;
let lab: WsLabClient;
/** The page's lab requests go through here, to be held as a slow lab would. */
const route = labRoute();

const hex = (v: bigint): string => `0x${v.toString(16)}`;
const deviceRow = (name: string) => page.locator(`.device-panel tr[data-device="${name}"]`);
const mapBand = (name: string) => page.locator(`.address-map .band[data-name="${name}"]`);

/**
 * Hotplug `name` through the form and wait for its row. The lab answers the page's requests in
 * order, so whatever the page sent before has been answered too.
 */
async function hotplugThroughForm(name: string): Promise<void> {
  const form = page.getByRole('form', { name: 'Hotplug a device' });
  await form.locator('input[name=name]').fill(name);
  await form.getByRole('button', { name: 'Hotplug' }).click();
  await deviceRow(name).waitFor();
}

beforeAll(async () => {
  t = await openLab('', '.layout-view', { beforeLoad: route.attach });
  ({ page, lab } = t);
});

afterAll(async () => {
  await t?.close();
});

describe('Layout view', () => {
  let layout: LayoutSnapshot;

  it('opens on the Layout view', async () => {
    await expect(page.locator('.nav-item.active').innerText()).resolves.toContain('Layout');
    await expect(page.locator('.view-header h1').innerText()).resolves.toBe('Layout');
  });

  it("shows System RAM, the PCI bus range and gpu0's DEVICE_PRIVATE range where the lab put it", async () => {
    layout = await lab.request({ type: 'layout' });
    const table = page.locator('.resource-table');
    await expect(table.locator('tr[data-name="System RAM"]').count()).resolves.toBeGreaterThan(0);
    await expect(mapBand('System RAM').count()).resolves.toBeGreaterThan(0);

    const pci = layout.resources.find((r) => r.name.startsWith('PCI'));
    expect(pci).toBeDefined();
    const pciRow = table.locator(`tr[data-name="${pci!.name}"]`);
    await expect(pciRow.innerText()).resolves.toContain(formatAddr(BigInt(pci!.start)));
    await expect(mapBand(pci!.name).getAttribute('data-start')).resolves.toBe(pci!.start);

    const gpu0 = layout.resources.find((r) => r.name === 'gpu0');
    expect(gpu0?.desc).toBe('DEVICE_PRIVATE_MEMORY');
    const gpuRow = table.locator('tr[data-name="gpu0"]');
    const text = await gpuRow.innerText();
    expect(text).toContain(formatAddr(BigInt(gpu0!.start)));
    expect(text).toContain(formatAddr(BigInt(gpu0!.end)));
    expect(text).toContain('DEVICE_PRIVATE_MEMORY');
    expect(text).toContain('256 MiB');
    await expect(mapBand('gpu0').getAttribute('data-start')).resolves.toBe(gpu0!.start);
    await expect(mapBand('gpu0').getAttribute('class')).resolves.toContain('cat-private');
    await expect(deviceRow('gpu0').innerText()).resolves.toContain(formatAddr(BigInt(gpu0!.start)));
    // 256 MiB of device memory in 128 MiB sections: one boundary inside the band.
    await expect(page.locator('.address-map [data-section-tick]').count()).resolves.toBe(1);
  });

  it('shows name, range and size on hover', async () => {
    await mapBand('gpu0').locator('rect').hover();
    const tip = page.getByTestId('map-tooltip');
    await tip.waitFor();
    const text = await tip.innerText();
    expect(text).toContain('gpu0');
    expect(text).toContain('256 MiB');
    expect(text).toContain(formatAddr(BigInt(layout.devices[0]!.start!)));
    await page.mouse.move(5, 5);
  });

  it('F-DEVMEM-1: a device hotplugged through the form lands one aligned step below gpu0', async () => {
    const form = page.getByRole('form', { name: 'Hotplug a device' });
    await form.locator('select[name=kind]').selectOption('private');
    await form.locator('input[name=name]').fill('gpu1');
    await form.locator('input[name=memory]').fill('256M');
    await form.getByRole('button', { name: 'Hotplug' }).click();

    await deviceRow('gpu1').waitFor();
    const gpu0Start = BigInt(layout.devices.find((d) => d.name === 'gpu0')!.start!);
    const expected = gpu0Start - 256n * MiB;
    await expect(deviceRow('gpu1').innerText()).resolves.toContain(formatAddr(expected));
    await expect(mapBand('gpu1').getAttribute('data-start')).resolves.toBe(hex(expected));
    const fromLab = await lab.request({ type: 'layout' });
    expect(fromLab.devices.find((d) => d.name === 'gpu1')?.start).toBe(hex(expected));
    await expect(page.locator('.address-map [data-section-tick]').count()).resolves.toBe(2);

    await page.mouse.move(5, 5);
    await t.screenshot('screenshot.png');
  });

  it('shows the kernel error inline when no free range is left (-ERANGE)', async () => {
    const form = page.getByRole('form', { name: 'Hotplug a device' });
    await form.locator('input[name=name]').fill('huge');
    await form.locator('input[name=memory]').fill('32T');
    await form.getByRole('button', { name: 'Hotplug' }).click();
    const alert = form.getByRole('alert');
    await alert.waitFor();
    await expect(alert.innerText()).resolves.toContain('-ERANGE');
    await expect(deviceRow('huge').count()).resolves.toBe(0);
    await form.locator('input[name=memory]').fill('256M');
  });

  it('removes the hotplugged device and its range goes', async () => {
    await deviceRow('gpu1').getByRole('button', { name: 'Remove gpu1' }).click();
    await deviceRow('gpu1').waitFor({ state: 'detached' });
    await expect(mapBand('gpu1').count()).resolves.toBe(0);
    await expect(page.locator('.resource-table tr[data-name="gpu1"]').count()).resolves.toBe(0);
    const fromLab = await lab.request({ type: 'layout' });
    expect(fromLab.devices.map((d) => d.name)).toEqual(['gpu0']);
  });

  it('a double click hotplugs one device and removes one, however fast the lab answers the first', async () => {
    const names = async () => (await lab.request({ type: 'layout' })).devices.map((d) => d.name);
    const form = page.getByRole('form', { name: 'Hotplug a device' });
    await form.locator('input[name=name]').fill('');
    await doubleClickAfterReply(page, form.getByRole('button', { name: 'Hotplug' }), () =>
      deviceRow('gpu1').waitFor(),
    );
    await hotplugThroughForm('fence1');
    expect(await names()).toEqual(['gpu0', 'gpu1', 'fence1']);

    // When gpu1's row goes, fence1's Remove comes under the pointer.
    await doubleClickAfterReply(page, deviceRow('gpu1').getByRole('button', { name: 'Remove gpu1' }), () =>
      deviceRow('gpu1').waitFor({ state: 'detached' }),
    );
    await hotplugThroughForm('fence2');
    expect(await names()).toEqual(['gpu0', 'fence1', 'fence2']);
    for (const name of ['fence1', 'fence2']) await lab.request({ type: 'removeDevice', name });
    await deviceRow('fence2').waitFor({ state: 'detached' });
  });

  it('a name typed while a hotplug waits for the lab stays in the form', async () => {
    const form = page.getByRole('form', { name: 'Hotplug a device' });
    const button = form.getByRole('button', { name: 'Hotplug' });
    await form.locator('input[name=name]').fill('gpu1');
    route.hold('addDevice');
    await button.click();
    await expect.poll(() => route.held).toBe(1);
    await form.locator('input[name=name]').fill('gpu2');
    route.release();
    await deviceRow('gpu1').waitFor();
    // The button comes back with the reply.
    await expect.poll(() => button.isEnabled()).toBe(true);
    await expect(form.locator('input[name=name]').inputValue()).resolves.toBe('gpu2');
    await lab.request({ type: 'removeDevice', name: 'gpu1' });
    await deviceRow('gpu1').waitFor({ state: 'detached' });
  });

  it('the hotplug form keeps what was typed while another view is open', async () => {
    const form = page.getByRole('form', { name: 'Hotplug a device' });
    const typed = { name: 'cdm7', memory: '512M', start: '0x400000000' };
    await form.locator('select[name=kind]').selectOption('public');
    for (const [field, value] of Object.entries(typed))
      await form.locator(`input[name=${field}]`).fill(value);
    await showView(page, 'processes');
    await showView(page, 'layout');
    await expect(form.locator('select[name=kind]').inputValue()).resolves.toBe('public');
    for (const [field, value] of Object.entries(typed))
      await expect(form.locator(`input[name=${field}]`).inputValue()).resolves.toBe(value);
  });

  it('logs no errors (CSP violations included)', () => {
    expect(t.pageErrors).toEqual([]);
  });
});

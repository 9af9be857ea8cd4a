// The memmap's pfn <-> page conversions: pfns below and above 2^32 (physical addresses from
// 16 TiB), -1 where no section is present, and the cache of the section found last.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, kernelConsts } from '../../../src-main/kernel/include/config';
import { Memmap } from '../../../src-main/kernel/mm/sparse';
import { bootSmall, G, M, PAGE, SECTION } from '../helpers';

describe('Memmap pfn_to_page / page_to_pfn', () => {
  const high = 2 ** 45; // 32 TiB: pfns from 2^33
  const k = bootSmall({
    config: { physAddrBits: 48 },
    ram: [
      { start: 0, size: G },
      { start: high, size: 2 * SECTION },
    ],
  });

  it('round-trips pfns below and above 2^32', () => {
    const pfns = [
      0,
      1,
      12345,
      G / PAGE - 1,
      high / PAGE,
      high / PAGE + 32767,
      high / PAGE + 32768,
      (high + 2 * SECTION) / PAGE - 1,
    ];
    for (const pfn of pfns) {
      const page = k.mem.pfn_to_page(pfn);
      expect(page, `pfn ${pfn}`).toBeGreaterThanOrEqual(0);
      expect(k.mem.page_to_pfn(page)).toBe(pfn);
    }
    expect(high / PAGE).toBeGreaterThan(2 ** 32);
  });

  it('gives distinct pages to the two ranges', () => {
    expect(k.mem.pfn_to_page(high / PAGE)).not.toBe(k.mem.pfn_to_page(0));
    expect(k.mem.pfn_to_page(high / PAGE + 1) - k.mem.pfn_to_page(high / PAGE)).toBe(1);
  });

  it('is -1 where no section is present, for negative pfns and beyond the physical address space', () => {
    expect(k.mem.pfn_to_page(G / PAGE)).toBe(-1);
    expect(k.mem.pfn_to_page(2 ** 32)).toBe(-1);
    expect(k.mem.pfn_to_page((high + 2 * SECTION) / PAGE)).toBe(-1);
    expect(k.mem.pfn_to_page(-1)).toBe(-1);
    expect(k.mem.pfn_to_page(2 ** 48 / PAGE + 5)).toBe(-1);
    expect(k.mem.pfn_to_page(64 * M)).toBe(-1);
  });
});

describe('Memmap section cache', () => {
  it('forgets a removed section: its pfns have no page, and a section reusing its slot answers for itself', () => {
    const m = new Memmap(kernelConsts(DEFAULT_CONFIG), 1);
    const pps = kernelConsts(DEFAULT_CONFIG).PAGES_PER_SECTION;
    expect(m.sparse_add_one_section(3, false)).toBe(0);
    const page = m.pfn_to_page(3 * pps + 5);
    expect(page).toBeGreaterThanOrEqual(0);
    expect(m.pfn_to_page(3 * pps + 6)).toBe(page + 1);
    m.sparse_remove_one_section(3);
    expect(m.pfn_to_page(3 * pps + 5)).toBe(-1);
    expect(m.sparse_add_one_section(9, false)).toBe(0);
    expect(m.pfn_to_page(3 * pps + 5)).toBe(-1);
    expect(m.pfn_to_page(9 * pps + 5)).toBe(page);
    expect(m.page_to_pfn(page)).toBe(9 * pps + 5);
    // Below the cached section, and the next section up, are not its pages.
    expect(m.pfn_to_page(9 * pps - 1)).toBe(-1);
    expect(m.pfn_to_page(10 * pps)).toBe(-1);
  });
});

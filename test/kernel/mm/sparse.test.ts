// The memmap's pfn <-> page conversions: a shift for pfns under 2^32, the float path above
// (physical addresses from 16 TiB), and -1 where no section is present.
import { describe, expect, it } from 'vitest';
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

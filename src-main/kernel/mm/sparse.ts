// mm/sparse.c: the memmap, SPARSEMEM style. Physical memory is cut into sections of
// PAGES_PER_SECTION pages; a present section owns a slot of the struct-of-arrays below,
// so a `struct page *` is a number (the page's index in these arrays) and each field of
// struct page is one typed array. Removed sections free their slot for the next add.
import type { KernelConsts } from '../include/config';
import { EEXIST, ENOMEM } from '../include/errno';

/** The most struct pages one simulated machine may have (512 GiB of 4 KiB pages). */
export const MAX_MEMMAP_PAGES = 2 ** 27;

export class Memmap {
  /** page->flags, with the zone number in bits ZONES_PGSHIFT.. */
  flags: Uint32Array;
  /** page->_refcount */
  refcount: Int32Array;
  /** page->_mapcount + 1: 0 when no page table maps the page. */
  mapcount: Int32Array;
  /** page->mapping as an index into the owner's table (0: none). */
  mapping: Int32Array;
  /** page->pgmap as an index into Kernel.pgmaps (0: none). */
  pgmap: Uint16Array;
  /** page->lru, as page indices (-1 ends a list): buddy free lists and LRU lists. */
  lruNext: Int32Array;
  lruPrev: Int32Array;
  /** page_private(): the buddy order of a free block, or a driver's cookie. */
  priv: Int32Array;
  /** page->index: the page's offset in its mapping, in pages (anon: its virtual page number). */
  index: Float64Array;
  /**
   * A fingerprint of the page's contents that travels with every copy: workloads store
   * stamps instead of bytes, so a lost or stale page is caught without holding its data.
   */
  stamp: Uint32Array;

  /** mem_section[]: section number -> slot, -1 when absent. */
  private readonly sectionSlot: Int32Array;
  /** slot -> section number, -1 for a free slot. */
  private slotSection: Int32Array;
  private freeSlots: number[] = [];
  private slots = 0;
  private readonly maxSlots: number;
  /** PAGES_PER_SECTION and its log2, kept here for the conversions below (the hottest code). */
  private readonly pps: number;
  private readonly pps_shift: number;
  private readonly inv_pps: number;
  /** The section pfn_to_page found last: its first pfn (NaN: none) and first page. */
  private last_pfn = NaN;
  private last_page = 0;
  presentSections = 0;

  constructor(
    private readonly c: KernelConsts,
    reserveSlots: number,
  ) {
    this.sectionSlot = new Int32Array(c.NR_MEM_SECTIONS).fill(-1);
    this.slotSection = new Int32Array(0);
    this.flags = new Uint32Array(0);
    this.refcount = new Int32Array(0);
    this.mapcount = new Int32Array(0);
    this.mapping = new Int32Array(0);
    this.pgmap = new Uint16Array(0);
    this.lruNext = new Int32Array(0);
    this.lruPrev = new Int32Array(0);
    this.priv = new Int32Array(0);
    this.index = new Float64Array(0);
    this.stamp = new Uint32Array(0);
    this.maxSlots = Math.max(1, Math.floor(MAX_MEMMAP_PAGES / c.PAGES_PER_SECTION));
    this.pps = c.PAGES_PER_SECTION;
    this.pps_shift = Math.log2(c.PAGES_PER_SECTION);
    this.inv_pps = 1 / c.PAGES_PER_SECTION;
    this.grow(Math.min(Math.max(1, reserveSlots), this.maxSlots));
  }

  get capacitySlots(): number {
    return this.slotSection.length;
  }

  /** Bytes of memmap arrays reserved, for the lab's memory figures. */
  get bytes(): number {
    return (
      this.capacitySlots * this.c.PAGES_PER_SECTION * 42 +
      this.sectionSlot.byteLength +
      this.slotSection.byteLength
    );
  }

  private grow(slots: number): void {
    const pages = slots * this.c.PAGES_PER_SECTION;
    const resize = <T extends Uint32Array | Int32Array | Uint16Array | Float64Array>(
      old: T,
      make: (n: number) => T,
    ): T => {
      const a = make(pages);
      a.set(old);
      return a;
    };
    this.flags = resize(this.flags, (n) => new Uint32Array(n));
    this.refcount = resize(this.refcount, (n) => new Int32Array(n));
    this.mapcount = resize(this.mapcount, (n) => new Int32Array(n));
    this.mapping = resize(this.mapping, (n) => new Int32Array(n));
    this.pgmap = resize(this.pgmap, (n) => new Uint16Array(n));
    this.lruNext = resize(this.lruNext, (n) => new Int32Array(n));
    this.lruPrev = resize(this.lruPrev, (n) => new Int32Array(n));
    this.priv = resize(this.priv, (n) => new Int32Array(n));
    this.index = resize(this.index, (n) => new Float64Array(n));
    this.stamp = resize(this.stamp, (n) => new Uint32Array(n));
    const ss = new Int32Array(slots).fill(-1);
    ss.set(this.slotSection);
    this.slotSection = ss;
  }

  present_section_nr(nr: number): boolean {
    return nr >= 0 && nr < this.sectionSlot.length && this.sectionSlot[nr]! >= 0;
  }

  /**
   * sparse_add_one_section: give section `nr` a memmap, its pages in no zone. -ENOMEM
   * when the memmap cannot grow (the lab's limit of MAX_MEMMAP_PAGES).
   */
  sparse_add_one_section(nr: number, failAlloc: boolean): number {
    if (this.present_section_nr(nr)) return -EEXIST;
    if (failAlloc || (this.freeSlots.length === 0 && this.slots >= this.maxSlots)) return -ENOMEM;
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      // A fresh slot is all zeroes, which is a page in no zone: nothing to write, so
      // the memory stays untouched until the pages are used.
      slot = this.slots++;
      if (slot >= this.capacitySlots) this.grow(Math.min(this.capacitySlots * 2, this.maxSlots));
    } else {
      const first = slot * this.c.PAGES_PER_SECTION;
      const last = first + this.c.PAGES_PER_SECTION;
      for (const a of [
        this.flags,
        this.refcount,
        this.mapcount,
        this.mapping,
        this.pgmap,
        this.lruNext,
        this.lruPrev,
        this.priv,
        this.index,
        this.stamp,
      ])
        a.fill(0, first, last);
    }
    this.sectionSlot[nr] = slot;
    this.slotSection[slot] = nr;
    this.presentSections++;
    return 0;
  }

  sparse_remove_one_section(nr: number): void {
    const slot = this.sectionSlot[nr]!;
    if (slot < 0) return;
    if (this.last_pfn === nr * this.pps) this.last_pfn = NaN;
    this.sectionSlot[nr] = -1;
    this.slotSection[slot] = -1;
    this.freeSlots.push(slot);
    this.presentSections--;
  }

  pfn_valid(pfn: number): boolean {
    return this.present_section_nr(Math.floor(pfn / this.c.PAGES_PER_SECTION));
  }

  /**
   * pfn_to_page: the page index of a pfn, or -1 when its section is absent. Hot loops convert
   * runs of pfns of one section (a migration's src or dst): the section found last answers
   * them, and this fast path is small enough for V8 to inline anywhere.
   */
  pfn_to_page(pfn: number): number {
    const d = pfn - this.last_pfn;
    return d >= 0 && d < this.pps ? this.last_page + d : this.pfn_to_page_slow(pfn);
  }

  private pfn_to_page_slow(pfn: number): number {
    const pps = this.pps;
    // A power of two: multiplying by its inverse is exact, and faster than dividing.
    const nr = Math.floor(pfn * this.inv_pps);
    const slot = nr >= 0 && nr < this.sectionSlot.length ? this.sectionSlot[nr]! : -1;
    if (slot < 0) return -1;
    this.last_pfn = nr * pps;
    this.last_page = slot * pps;
    return this.last_page + (pfn - this.last_pfn);
  }

  page_to_pfn(page: number): number {
    // A page index is below MAX_MEMMAP_PAGES (2^27), so integer operations are exact on it
    // (never on the pfn, which may pass 2^32).
    return this.slotSection[page >>> this.pps_shift]! * this.pps + (page & (this.pps - 1));
  }

  /**
   * Call fn(page, n) for each run of pages of [start_pfn, start_pfn + nr_pages) that is
   * contiguous in the memmap (one run per section). Every section must be present.
   */
  for_each_run(start_pfn: number, nr_pages: number, fn: (page: number, n: number) => void): void {
    const pps = this.c.PAGES_PER_SECTION;
    const end = start_pfn + nr_pages;
    for (let pfn = start_pfn; pfn < end;) {
      const n = Math.min(pps - (pfn % pps), end - pfn);
      fn(this.pfn_to_page(pfn), n);
      pfn += n;
    }
  }

  /** Present section numbers in ascending order. */
  *present_sections(): Generator<number> {
    for (let nr = 0; nr < this.sectionSlot.length; nr++) if (this.sectionSlot[nr]! >= 0) yield nr;
  }
}

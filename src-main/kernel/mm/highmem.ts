// include/linux/highmem.h: reaching page contents. A page holds bytes only once real
// data is stored in it (scenario stores); until then it reads as zeroes. Its stamp
// (page->stamp in the memmap) fingerprints contents for workloads that keep no bytes.
import type { Kernel } from '../kernel';

export class PageContents {
  private readonly bytes = new Map<number, Uint8Array>();

  /** The page's bytes for reading, or null when it has never held data (all zeroes). */
  peek(page: number): Uint8Array | null {
    return this.bytes.get(page) ?? null;
  }

  /** The page's bytes for writing (kmap), allocated zeroed on first use. */
  kmap(page: number, pageSize: number): Uint8Array {
    let b = this.bytes.get(page);
    if (!b) {
      b = new Uint8Array(pageSize);
      this.bytes.set(page, b);
    }
    return b;
  }

  drop(page: number): void {
    if (this.bytes.size) this.bytes.delete(page);
  }

  copy(to: number, from: number): void {
    // Every migrated page is copied: while no page holds bytes (stamps only), no hashing.
    if (!this.bytes.size) return;
    const src = this.bytes.get(from);
    if (src) this.bytes.set(to, src.slice());
    else this.bytes.delete(to);
  }

  /** Pages holding bytes, for memory figures. */
  get size(): number {
    return this.bytes.size;
  }
}

/** copy_highpage: the new page gets the old one's bytes and stamp. */
export function copy_highpage(k: Kernel, to: number, from: number): void {
  k.contents.copy(to, from);
  k.mem.stamp[to] = k.mem.stamp[from]!;
}

/** clear_highpage: a page handed to user space reads as zeroes. */
export function clear_highpage(k: Kernel, page: number): void {
  k.contents.drop(page);
  k.mem.stamp[page] = 0;
}

// What a front end shows of the lab's processes: their vmas and rss as the kernel holds
// them, and the page-table inspector, which walks the kernel's own page tables and decodes
// each entry (present, zero page, device and migration entries, huge leaves).
import type { PageTableRow, PageTableView, ProcessInfo, PteState, VmaInfo } from '../api';
import type { Kernel } from '../kernel/kernel';
import {
  VM_HUGEPAGE,
  VM_HUGETLB,
  VM_NOHUGEPAGE,
  VM_EXEC,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
  type vm_area_struct,
} from '../kernel/include/mm_types';
import {
  pmd_devmap,
  pmd_huge,
  pte_devmap,
  pte_dirty,
  pte_none,
  pte_pfn,
  pte_present,
  pte_soft_dirty,
  pte_write,
  pte_young,
} from '../kernel/include/pgtable';
import {
  is_device_entry,
  is_migration_entry,
  is_write_device_entry,
  is_write_migration_entry,
  non_swap_entry,
  pte_swp_soft_dirty,
  pte_to_swp_entry,
  swp_offset,
} from '../kernel/include/swapops';
import { is_zone_device_page } from '../kernel/include/mm';
import { is_device_private_page, page_pgmap } from '../kernel/kernel/memremap';
import { find_vma, vma_lookup } from '../kernel/mm/mmap';
import { walk_lookup, type Walk } from '../kernel/mm/pgtable';
import { InputError } from './input-error';
import { hex, parseSize } from './numbers';
import { rssOf, type Userland } from './ops';

/** The most pages one pageTable request answers. */
export const MAX_PAGE_ROWS = 4096;

export function vmaInfo(k: Kernel, vma: vm_area_struct): VmaInfo {
  const f = vma.vm_flags;
  const perms =
    (f & VM_READ ? 'r' : '-') +
    (f & VM_WRITE ? 'w' : '-') +
    (f & VM_EXEC ? 'x' : '-') +
    (f & VM_SHARED ? 's' : 'p');
  const flags: string[] = [];
  if (f & VM_HUGETLB) flags.push('hugetlb');
  if (f & VM_HUGEPAGE) flags.push('hugepage');
  if (f & VM_NOHUGEPAGE) flags.push('nohugepage');
  return {
    start: hex(vma.vm_start),
    end: hex(vma.vm_end),
    perms,
    name: vma.name,
    ...(vma.vm_file && { file: vma.vm_file.f_inode.name }),
    pages: (vma.vm_end - vma.vm_start) / k.c.PAGE_SIZE,
    flags,
  };
}

/** Every live process of the userland, in pid order. */
export function processList(u: Userland): ProcessInfo[] {
  const k = u.machine.kernel;
  return [...u.procs.entries()]
    .filter(([, t]) => t.mm)
    .sort(([, a], [, b]) => a.pid - b.pid)
    .map(([name, t]) => ({
      pid: t.pid,
      name,
      rss: rssOf(t.mm!),
      vmas: t.mm!.mmap.map((v) => vmaInfo(k, v)),
      signals: t.signals.map((s) => ({ sig: s.sig, addr: hex(s.addr) })),
      ptes: t.mm!.nr_ptes,
    }));
}

export interface PageTableRequest {
  proc: string;
  at?: string;
  offset?: number;
  pages?: number;
}

/** Rows for consecutive pages of one vma of a process (see PageTableView). */
export function pageTable(u: Userland, req: PageTableRequest): PageTableView {
  const k = u.machine.kernel;
  const ps = k.c.PAGE_SIZE;
  if (typeof req.proc !== 'string')
    throw new InputError('proc', `expected a process name, got ${JSON.stringify(req.proc)}`);
  const task = u.procs.get(req.proc);
  if (!task?.mm) throw new InputError('proc', `no process named "${req.proc}"`);
  const mm = task.mm;
  let vma: vm_area_struct | null;
  let base: number;
  if (req.at === undefined) {
    vma = mm.mmap[0] ?? null;
    base = vma?.vm_start ?? 0;
  } else {
    const m = u.mappings.get(req.at);
    base = m ? m.addr : parseSize(req.at, 'at');
    vma = vma_lookup(mm, base);
    if (!vma) {
      // A mapping whose start was unmapped: show what is left of it.
      const next = m ? find_vma(mm, base) : null;
      if (next && m && next.vm_start < m.addr + m.length) {
        vma = next;
        base = next.vm_start;
      } else
        throw new InputError(
          'at',
          `no vma of "${req.proc}" at ${hex(base)}${m ? ` (mapping "${m.name}")` : ''}`,
        );
    }
  }
  const offsetArg = req.offset ?? 0;
  if (!Number.isSafeInteger(offsetArg) || offsetArg < 0)
    throw new InputError(
      'offset',
      `expected a page count (a non-negative integer), got ${JSON.stringify(req.offset)}`,
    );
  const pagesArg = req.pages ?? MAX_PAGE_ROWS;
  if (!Number.isSafeInteger(pagesArg) || pagesArg < 1 || pagesArg > MAX_PAGE_ROWS)
    throw new InputError('pages', `expected 1 to ${MAX_PAGE_ROWS} pages, got ${JSON.stringify(req.pages)}`);
  if (!vma) return { proc: req.proc, pid: task.pid, vma: null, start: hex(0), offset: 0, rows: [] };

  const info = vmaInfo(k, vma);
  const offset = Math.min(info.pages, (base - vma.vm_start) / ps + offsetArg);
  const n = Math.min(pagesArg, info.pages - offset);
  const start = vma.vm_start + offset * ps;
  const rows: PageTableRow[] = new Array<PageTableRow>(n);
  const w: Walk = { pud: -1, pmd: -1, pte: -1 };
  for (let i = 0; i < n; i++) rows[i] = pageRow(k, mm, start + i * ps, w);
  return { proc: req.proc, pid: task.pid, vma: info, start: hex(start), offset, rows };
}

const NONE = (addr: number): PageTableRow => ({
  addr: hex(addr),
  level: 'pte',
  state: 'none',
  write: false,
  dirty: false,
  softDirty: false,
  young: false,
});

/** Decode the entry that maps addr, at whichever level holds it. */
export function pageRow(
  k: Kernel,
  mm: Parameters<typeof walk_lookup>[1],
  addr: number,
  w: Walk,
): PageTableRow {
  const e = k.pt.entries;
  walk_lookup(k, mm, addr, w);
  if (w.pud < 0) return NONE(addr);
  if (pmd_huge(e[w.pud]!)) return leafRow(k, e[w.pud]!, 'pud', addr, k.c.PUD_SIZE);
  if (w.pmd < 0) return NONE(addr);
  const pmd = e[w.pmd]!;
  if (pmd_huge(pmd)) return leafRow(k, pmd, 'pmd', addr, k.c.PMD_SIZE);
  // A non-present PMD that is not none holds a swap entry (a PMD migration entry).
  if (!pte_none(pmd) && !pte_present(pmd)) return leafRow(k, pmd, 'pmd', addr, k.c.PMD_SIZE);
  if (w.pte < 0) return NONE(addr);
  return leafRow(k, e[w.pte]!, 'pte', addr, k.c.PAGE_SIZE);
}

function leafRow(
  k: Kernel,
  entry: number,
  level: PageTableRow['level'],
  addr: number,
  span: number,
): PageTableRow {
  if (pte_none(entry)) return NONE(addr);
  const row: PageTableRow = { ...NONE(addr), level };
  if (!pte_present(entry)) {
    // A swap entry: real swap, or one of the special types (device, migration, hwpoison).
    const swp = pte_to_swp_entry(entry);
    row.softDirty = pte_swp_soft_dirty(entry);
    let state: PteState = 'swap';
    if (non_swap_entry(k, swp)) {
      if (is_device_entry(k, swp)) {
        state = 'device-private';
        row.write = is_write_device_entry(k, swp);
      } else if (is_migration_entry(k, swp)) {
        state = 'migration';
        row.write = is_write_migration_entry(k, swp);
      } else state = 'bad'; // hwpoison, or a special type the lab does not know
      describePage(k, row, swp_offset(swp), -1);
    }
    row.state = state;
    return row;
  }
  row.write = pte_write(entry);
  row.dirty = pte_dirty(entry);
  row.young = pte_young(entry);
  row.softDirty = pte_soft_dirty(entry);
  const first = pte_pfn(entry);
  const pfn = first + Math.floor((addr % span) / k.c.PAGE_SIZE);
  if (first === k.zero_pfn || (level !== 'pte' && first === k.huge_zero_pfn)) {
    row.state = 'zero';
    row.pfn = pfn;
    return row;
  }
  const devmap = level === 'pte' ? pte_devmap(entry) : pmd_devmap(entry);
  const page = describePage(k, row, pfn, level === 'pte' ? -1 : k.mem.pfn_to_page(first));
  // F-DEV-6: a present entry of un-addressable device memory must not exist.
  if (page >= 0 && is_device_private_page(k, page)) row.state = 'bad';
  else if (devmap) row.state = 'devmap';
  else row.state = level === 'pte' ? 'present' : 'huge';
  return row;
}

/** Fill pfn, counts and owning device from the struct page; returns the page or -1. */
function describePage(k: Kernel, row: PageTableRow, pfn: number, head: number): number {
  row.pfn = pfn;
  const page = k.mem.pfn_to_page(pfn);
  if (page < 0) return -1;
  const counted = head >= 0 ? head : page;
  row.refcount = k.mem.refcount[counted]!;
  row.mapcount = k.mem.mapcount[counted]!;
  if (is_zone_device_page(k, page)) {
    const pgmap = page_pgmap(k, page);
    if (pgmap) row.device = pgmap.dev.name;
  }
  return page;
}

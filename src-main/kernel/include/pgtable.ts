// arch/x86/include/asm/pgtable.h: page-table entries. An entry is an x86-64 style 64-bit
// word held in a double: the pfn (or a table's index) above bit PAGE_SHIFT, flag bits
// below it. Values stay under 2^53, and flags are read with arithmetic, not bit shifts
// of the whole word.

export const _PAGE_PRESENT = 0x001;
export const _PAGE_RW = 0x002;
export const _PAGE_USER = 0x004;
/** A ZONE_DEVICE pfn mapped by DAX (x86 keeps it in a high software bit). */
export const _PAGE_DEVMAP = 0x010;
export const _PAGE_ACCESSED = 0x020;
export const _PAGE_DIRTY = 0x040;
/** A huge (leaf) entry at PMD or PUD level. */
export const _PAGE_PSE = 0x080;
/** A mapping of a pfn with no struct page to refcount (pte_special). */
export const _PAGE_SPECIAL = 0x200;
export const _PAGE_SOFT_DIRTY = 0x800;
/** Present but inaccessible (PROT_NONE), as x86 reuses the global bit. */
export const _PAGE_PROTNONE = 0x100;
/** Soft-dirty of a swap entry lives in the PSE bit, unused there. */
export const _PAGE_SWP_SOFT_DIRTY = _PAGE_PSE;

/** The flags of a table pointer (pmd/pud/pgd entry pointing at a lower table). */
export const _PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY;

/** The low word of an entry: its flag bits (below PAGE_SHIFT; at most 12 bits used). */
export function pte_flags(pte: number): number {
  // Exact: ToInt32 keeps an integer's low 32 bits (modulo 2^32) up to 2^53, so the mask
  // sees the flag bits of any entry; `pte % 4096` on a double compiles to a slow fmod call.
  return pte & 0xfff;
}

export function pte_none(pte: number): boolean {
  return pte === 0;
}

export function pte_present(pte: number): boolean {
  return (pte_flags(pte) & (_PAGE_PRESENT | _PAGE_PROTNONE)) !== 0;
}

/** Page frame (or table index) of a present entry. */
export function pte_pfn(pte: number): number {
  return Math.floor(pte / 4096);
}

export function pfn_pte(pfn: number, flags: number): number {
  return pfn * 4096 + flags;
}

export function pte_write(pte: number): boolean {
  return (pte_flags(pte) & _PAGE_RW) !== 0;
}

export function pte_dirty(pte: number): boolean {
  return (pte_flags(pte) & _PAGE_DIRTY) !== 0;
}

export function pte_young(pte: number): boolean {
  return (pte_flags(pte) & _PAGE_ACCESSED) !== 0;
}

export function pte_special(pte: number): boolean {
  return (pte_flags(pte) & _PAGE_SPECIAL) !== 0;
}

export function pte_devmap(pte: number): boolean {
  return (pte_flags(pte) & _PAGE_DEVMAP) !== 0;
}

export function pte_soft_dirty(pte: number): boolean {
  return (pte_flags(pte) & _PAGE_SOFT_DIRTY) !== 0;
}

export function pte_protnone(pte: number): boolean {
  return (pte_flags(pte) & (_PAGE_PRESENT | _PAGE_PROTNONE)) === _PAGE_PROTNONE;
}

function set_flags(pte: number, set: number, clear: number): number {
  const f = pte_flags(pte);
  return pte - f + ((f & ~clear) | set);
}

export const pte_mkwrite = (pte: number): number => set_flags(pte, _PAGE_RW, 0);
export const pte_wrprotect = (pte: number): number => set_flags(pte, 0, _PAGE_RW);
export const pte_mkdirty = (pte: number): number => set_flags(pte, _PAGE_DIRTY | _PAGE_SOFT_DIRTY, 0);
export const pte_mkclean = (pte: number): number => set_flags(pte, 0, _PAGE_DIRTY);
export const pte_mkyoung = (pte: number): number => set_flags(pte, _PAGE_ACCESSED, 0);
export const pte_mkold = (pte: number): number => set_flags(pte, 0, _PAGE_ACCESSED);
export const pte_mkspecial = (pte: number): number => set_flags(pte, _PAGE_SPECIAL, 0);
/** x86 marks a devmap PTE special too: it maps a pfn the mapping holds no reference on. */
export const pte_mkdevmap = (pte: number): number => set_flags(pte, _PAGE_DEVMAP | _PAGE_SPECIAL, 0);
/** A devmap PMD or PUD is a huge leaf with the devmap bit. */
export const pmd_mkdevmap = (pmd: number): number => set_flags(pmd, _PAGE_DEVMAP | _PAGE_PSE, 0);
export const pte_mkhuge = (pte: number): number => set_flags(pte, _PAGE_PSE, 0);
export const pte_mksoft_dirty = (pte: number): number => set_flags(pte, _PAGE_SOFT_DIRTY, 0);
export const pte_clear_soft_dirty = (pte: number): number => set_flags(pte, 0, _PAGE_SOFT_DIRTY);

/** pte_modify: keep the pfn and the dirty/young/soft-dirty bits, take protections from `prot`. */
export function pte_modify(pte: number, prot: number): number {
  const keep = _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_SOFT_DIRTY | _PAGE_SPECIAL | _PAGE_DEVMAP | _PAGE_PSE;
  const f = pte_flags(pte);
  return pte - f + ((f & keep) | (prot & ~keep));
}

// Upper levels: a table pointer, a huge leaf (PSE) or none.
export const pmd_none = pte_none;
export const pmd_present = pte_present;
export const pmd_pfn = pte_pfn;
export const pmd_write = pte_write;
export function pmd_trans_huge(pmd: number): boolean {
  return pte_present(pmd) && (pte_flags(pmd) & _PAGE_PSE) !== 0 && !pte_devmap(pmd);
}
export function pmd_devmap(pmd: number): boolean {
  return pte_present(pmd) && (pte_flags(pmd) & (_PAGE_PSE | _PAGE_DEVMAP)) === (_PAGE_PSE | _PAGE_DEVMAP);
}
/** A leaf at this level (THP, devmap or hugetlb), as opposed to a pointer to a table. */
export function pmd_huge(pmd: number): boolean {
  return pte_present(pmd) && (pte_flags(pmd) & _PAGE_PSE) !== 0;
}
export const pud_none = pte_none;
export const pud_present = pte_present;
export const pud_huge = pmd_huge;
export const pud_devmap = pmd_devmap;

/** vm_page_prot for a vma's VM_READ/VM_WRITE (before COW write-protection). */
export function vm_get_page_prot(read: boolean, write: boolean, shared: boolean): number {
  if (!read && !write) return _PAGE_PROTNONE | _PAGE_ACCESSED;
  // Private writable mappings are mapped read-only until a write fault copies (COW).
  return _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | (write && shared ? _PAGE_RW : 0);
}

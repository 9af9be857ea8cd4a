// include/linux/swapops.h and swap.h: swap entries in non-present PTEs. Besides real swap,
// the last types are special: hwpoison, migration (read/write) and, since seed 001,
// un-addressable device memory (read/write), whose offset is the device page's pfn.
// In a PTE, x86-64 keeps the type at bit 9 and the offset from bit 14.
import type { Kernel } from '../kernel';
import { _PAGE_SWP_SOFT_DIRTY, pte_flags } from './pgtable';

export const SWP_HWPOISON_NUM = 1;
export const SWP_MIGRATION_NUM = 2;
export const SWP_DEVICE_NUM = 2;

/** The special swap types of a machine (they depend on MAX_SWAPFILES_SHIFT). */
export interface SwapTypes {
  MAX_SWAPFILES: number;
  SWP_HWPOISON: number;
  SWP_MIGRATION_READ: number;
  SWP_MIGRATION_WRITE: number;
  SWP_DEVICE_WRITE: number;
  SWP_DEVICE: number;
}

/** F-DEV-1: device types sit above migration and hwpoison; 2^5 - 2 - 2 - 1 = 27 swap files. */
export function swapTypes(maxSwapfilesShift: number): SwapTypes {
  const MAX_SWAPFILES = 2 ** maxSwapfilesShift - SWP_DEVICE_NUM - SWP_MIGRATION_NUM - SWP_HWPOISON_NUM;
  return {
    MAX_SWAPFILES,
    SWP_HWPOISON: MAX_SWAPFILES,
    SWP_MIGRATION_READ: MAX_SWAPFILES + SWP_HWPOISON_NUM,
    SWP_MIGRATION_WRITE: MAX_SWAPFILES + SWP_HWPOISON_NUM + 1,
    SWP_DEVICE_WRITE: MAX_SWAPFILES + SWP_HWPOISON_NUM + SWP_MIGRATION_NUM,
    SWP_DEVICE: MAX_SWAPFILES + SWP_HWPOISON_NUM + SWP_MIGRATION_NUM + 1,
  };
}

const SWP_TYPE_FIRST_BIT = 9;
const SWP_TYPE_SHIFT = 2 ** SWP_TYPE_FIRST_BIT;
const SWP_OFFSET_SHIFT = 2 ** 14;

/**
 * swp_entry_t, kept in its x86-64 PTE layout (type at bits 9-13, offset from bit 14), so a
 * PTE and its entry convert by masking the PTE's other bits: the migration hot paths do it
 * for every page. A number below 2^53.
 */
export type swp_entry_t = number;

export function swp_entry(type: number, offset: number): swp_entry_t {
  return offset * SWP_OFFSET_SHIFT + type * SWP_TYPE_SHIFT;
}

export function swp_type(e: swp_entry_t): number {
  // Not `% 2^14` (a slow fmod call on a double): an integer below 2^53 keeps its low 32
  // bits exact through ToInt32, so the mask is exact.
  return (e & (SWP_OFFSET_SHIFT - 1)) >>> SWP_TYPE_FIRST_BIT;
}

export function swp_offset(e: swp_entry_t): number {
  return Math.floor(e / SWP_OFFSET_SHIFT);
}

/** A non-present, non-none PTE holds a swap entry. */
export function is_swap_pte(pte: number): boolean {
  return pte !== 0 && (pte_flags(pte) & 0x101) === 0;
}

export function pte_to_swp_entry(pte: number): swp_entry_t {
  // The bits below the type (soft-dirty among them) are the PTE's, not the entry's.
  return pte - (pte & (SWP_TYPE_SHIFT - 1));
}

export function swp_entry_to_pte(e: swp_entry_t): number {
  return e;
}

export function pte_swp_soft_dirty(pte: number): boolean {
  return (pte_flags(pte) & _PAGE_SWP_SOFT_DIRTY) !== 0;
}

export function pte_swp_mksoft_dirty(pte: number): number {
  return pte_swp_soft_dirty(pte) ? pte : pte + _PAGE_SWP_SOFT_DIRTY;
}

export function pte_swp_clear_soft_dirty(pte: number): number {
  return pte_swp_soft_dirty(pte) ? pte - _PAGE_SWP_SOFT_DIRTY : pte;
}

/** Entries of the special types are not real swap. */
export function non_swap_entry(k: Kernel, e: swp_entry_t): boolean {
  return swp_type(e) >= k.swp.MAX_SWAPFILES;
}

// Migration entries.
export function make_migration_entry(k: Kernel, page: number, write: boolean): swp_entry_t {
  return swp_entry(write ? k.swp.SWP_MIGRATION_WRITE : k.swp.SWP_MIGRATION_READ, k.mem.page_to_pfn(page));
}
export function is_migration_entry(k: Kernel, e: swp_entry_t): boolean {
  const t = swp_type(e);
  return t === k.swp.SWP_MIGRATION_READ || t === k.swp.SWP_MIGRATION_WRITE;
}
export function is_write_migration_entry(k: Kernel, e: swp_entry_t): boolean {
  return swp_type(e) === k.swp.SWP_MIGRATION_WRITE;
}
export function make_migration_entry_read(k: Kernel, e: swp_entry_t): swp_entry_t {
  return swp_entry(k.swp.SWP_MIGRATION_READ, swp_offset(e));
}
export function migration_entry_to_page(k: Kernel, e: swp_entry_t): number {
  return k.mem.pfn_to_page(swp_offset(e));
}

// Device entries (seed 001; seed 002 calls them device_private entries).
export function make_device_entry(k: Kernel, page: number, write: boolean): swp_entry_t {
  return swp_entry(write ? k.swp.SWP_DEVICE_WRITE : k.swp.SWP_DEVICE, k.mem.page_to_pfn(page));
}
export function is_device_entry(k: Kernel, e: swp_entry_t): boolean {
  const t = swp_type(e);
  return t === k.swp.SWP_DEVICE || t === k.swp.SWP_DEVICE_WRITE;
}
export function is_write_device_entry(k: Kernel, e: swp_entry_t): boolean {
  return swp_type(e) === k.swp.SWP_DEVICE_WRITE;
}
export function make_device_entry_read(k: Kernel, e: swp_entry_t): swp_entry_t {
  return swp_entry(k.swp.SWP_DEVICE, swp_offset(e));
}
export function device_entry_to_page(k: Kernel, e: swp_entry_t): number {
  return k.mem.pfn_to_page(swp_offset(e));
}
/**
 * The swap PTE `pte` made read-only where it holds a write migration or device entry
 * (make_*_entry_read), its soft-dirty bit kept; -1 when it holds no such entry. Fork's COW
 * and mprotect both do this to the entries they find.
 */
export function swp_pte_mkread(k: Kernel, pte: number): number {
  const e = pte_to_swp_entry(pte);
  let read: swp_entry_t;
  if (is_write_migration_entry(k, e)) read = make_migration_entry_read(k, e);
  else if (is_write_device_entry(k, e)) read = make_device_entry_read(k, e);
  else return -1;
  const rpte = swp_entry_to_pte(read);
  return pte_swp_soft_dirty(pte) ? pte_swp_mksoft_dirty(rpte) : rpte;
}
export const is_device_private_entry = is_device_entry;
export const is_write_device_private_entry = is_write_device_entry;
export const device_private_entry_to_pfn = (e: swp_entry_t): number => swp_offset(e);

// Hardware-poisoned pages.
export function make_hwpoison_entry(k: Kernel, page: number): swp_entry_t {
  return swp_entry(k.swp.SWP_HWPOISON, k.mem.page_to_pfn(page));
}
export function is_hwpoison_entry(k: Kernel, e: swp_entry_t): boolean {
  return swp_type(e) === k.swp.SWP_HWPOISON;
}

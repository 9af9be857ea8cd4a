// The driver API a plugin imports from 'hmm-lab' (declared in ../api/hmm-lab.d.ts): host
// functions over the kernel, bound to one PluginDriver. Every handle and page is checked on
// every call; a wrong one throws a HostError the plugin sees as an Error with `.errno`.
// Kernel failures come back as negative errno values, as the kernel's own functions return.
import { dev_name } from '../../kernel/drivers/base/core';
import { devm_add_action } from '../../kernel/drivers/base/devres';
import { blk_alloc_queue_node, blk_cleanup_queue } from '../../kernel/block/blk-core';
import { PFN_MAP, pmem_device } from '../../kernel/drivers/nvdimm/pmem';
import * as errno from '../../kernel/include/errno';
import { EBUSY, EDEADLK, EFAULT, EINVAL, ENOMEM, IS_ERR } from '../../kernel/include/errno';
import {
  get_page,
  is_zone_device_page,
  lock_page,
  page_count,
  page_mapcount,
  PageLocked,
  put_page,
  trylock_page,
  unlock_page,
} from '../../kernel/include/mm';
import {
  FAULT_FLAG_WRITE,
  VM_EXEC,
  VM_FAULT_HWPOISON,
  VM_FAULT_LOCKED,
  VM_FAULT_MAJOR,
  VM_FAULT_NOPAGE,
  VM_FAULT_OOM,
  VM_FAULT_RETRY,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
  VM_FAULT_WRITE,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
} from '../../kernel/include/mm_types';
import {
  MEMORY_DEVICE_HOST,
  MEMORY_DEVICE_PRIVATE,
  MEMORY_DEVICE_PUBLIC,
} from '../../kernel/include/memremap';
import { pmd_huge, pte_none } from '../../kernel/include/pgtable';
import { devm_memremap_pages, is_device_private_page, new_dev_pagemap } from '../../kernel/kernel/memremap';
import { devm_request_mem_region } from '../../kernel/kernel/resource';
import { cpu_view_of } from '../../kernel/mm/debug_vm';
import { copy_highpage, clear_highpage } from '../../kernel/mm/highmem';
import {
  hmm_devmem_add,
  hmm_devmem_add_resource,
  hmm_devmem_remove,
  hmm_device_new,
  hmm_device_put,
  hmm_vma_alloc_locked_page,
} from '../../kernel/mm/hmm';
import {
  HMM_PFN_DEVICE_PRIVATE,
  HMM_PFN_ERROR,
  HMM_PFN_NONE,
  HMM_PFN_SPECIAL,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  HMM_UPDATE_INVALIDATE,
  hmm_mirror_register,
  hmm_mirror_unregister,
  hmm_pfn_to_page,
  hmm_pfn_to_pfn,
  hmm_range,
  hmm_range_fault,
  hmm_range_register,
  hmm_range_snapshot,
  hmm_range_unregister,
  hmm_range_valid,
  hmm_range_wait_until_valid,
  hmm_vma_fault,
  hmm_vma_get_pfns,
  hmm_vma_range_done,
} from '../../kernel/mm/hmm_mirror';
import { is_zero_pfn } from '../../kernel/mm/memory';
import {
  MIGRATE_PFN_DEVICE,
  MIGRATE_PFN_ERROR,
  MIGRATE_PFN_LOCKED,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_SHIFT,
  MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE,
  migrate_pfn,
  migrate_pfn_flags,
  migrate_pfn_to_page,
} from '../../kernel/mm/migrate';
import { find_vma } from '../../kernel/mm/mmap';
import { walk_lookup, type Walk } from '../../kernel/mm/pgtable';
import { rmap_walk } from '../../kernel/mm/rmap';
import { alloc_page, GFP_HIGHUSER } from '../../kernel/mm/page_alloc';
import type { vm_area_struct } from '../../kernel/include/mm_types';
import { HostError } from '../sandbox/errors';
import type { HostApi } from '../sandbox/engine';
import { describe, intArg, stringArg, type CallValue } from '../sandbox/values';
import { MAX_MIGRATE_PAGES, PluginMirror, type PluginDriver } from './plugin-driver';

type Args = CallValue[];

const hex = (n: number): string => `0x${n.toString(16)}`;

function bool(a: Args, i: number, fn: string): boolean {
  const v = a[i];
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (v === undefined) return false;
  throw new HostError(-EINVAL, `${fn}: expected a boolean, got ${describe(v)}`);
}

function ints(a: Args, i: number, fn: string, max = 65_536): number[] {
  const v = a[i];
  if (!Array.isArray(v) || v.length > max)
    throw new HostError(-EINVAL, `${fn}: expected an array of at most ${max} numbers, got ${describe(v)}`);
  for (const x of v)
    if (typeof x !== 'number' || !Number.isSafeInteger(x))
      throw new HostError(-EINVAL, `${fn}: expected integers, found ${describe(x as CallValue)}`);
  return v as number[];
}

function optInt(a: Args, i: number, fn: string, def: number): number {
  return a[i] === undefined ? def : intArg(a, i, fn);
}

/** The driver API of one plugin driver. */
export function driverApi(d: PluginDriver): HostApi {
  const k = d.k;
  const c = k.c;
  const dev = d.bound.dev;
  const walk: Walk = { pud: -1, pmd: -1, pte: -1 };

  // ---- argument checks -------------------------------------------------------------------

  const page = (a: Args, i: number, fn: string): number => {
    const p = intArg(a, i, fn);
    if (p < 0 || p >= k.mem.refcount.length || !(k.mem.page_to_pfn(p) >= 0))
      throw new HostError(-EINVAL, `${fn}: ${p} is not a page`);
    return p;
  };
  const vma = (a: Args, i: number, fn: string): vm_area_struct => {
    const h = intArg(a, i, fn);
    const v = d.vmaOf(h);
    if (!v) throw new HostError(-EFAULT, `${fn}: ${h} is not a live vma handle (the mapping is gone?)`);
    return v;
  };
  const mm = (a: Args, i: number, fn: string) => {
    const h = intArg(a, i, fn);
    const m = d.mms.get(h);
    if (!m) throw new HostError(-EINVAL, `${fn}: ${h} is not an mm this driver was given`);
    return m;
  };
  const mirror = (a: Args, i: number, fn: string): PluginMirror => {
    const h = intArg(a, i, fn);
    const m = d.mirrors.get(h);
    if (!m) throw new HostError(-EINVAL, `${fn}: ${h} is not a registered mirror of this driver`);
    return m;
  };
  const devmem = (a: Args, i: number, fn: string) => {
    const h = intArg(a, i, fn);
    const m = d.devmems.get(h);
    if (!m) throw new HostError(-EINVAL, `${fn}: ${h} is not a devmem of this driver`);
    return m;
  };
  const range = (a: Args, i: number, fn: string) => {
    const h = intArg(a, i, fn);
    const r = d.ranges.get(h);
    if (!r) throw new HostError(-EINVAL, `${fn}: ${h} is not a range of this driver`);
    return r;
  };
  const mutex = (a: Args, i: number, fn: string) => {
    const h = intArg(a, i, fn);
    const m = d.mutexes.get(h);
    if (!m) throw new HostError(-EINVAL, `${fn}: ${h} is not a mutex`);
    return m;
  };
  const queue = (a: Args, i: number, fn: string) => {
    const h = intArg(a, i, fn);
    const q = d.queues.get(h);
    if (!q) throw new HostError(-EINVAL, `${fn}: ${h} is not a request queue of this driver`);
    return q;
  };
  const buffer = (a: Args, i: number, fn: string): Uint8Array => {
    const h = intArg(a, i, fn);
    if (h !== 1 || !d.cmdBuffer)
      throw new HostError(-EFAULT, `${fn}: no buffer ${h} (only inside a command that has one)`);
    return d.cmdBuffer;
  };
  const text = (a: Args, i: number, fn: string): string => stringArg(a, i, fn).slice(0, 1024);

  /** A page the plugin may write into: one it holds, locked, or its own device memory. */
  const owns = (p: number): boolean => d.held.has(p) || d.locked.has(p) || d.isMine(p);

  /** The rules of a device mapping: a page the device may map at addr of the mirror's mm. */
  const mayMap = (m: PluginMirror, addr: number, p: number, write: boolean): boolean => {
    const pfn = k.mem.page_to_pfn(p);
    if (is_zone_device_page(k, p)) {
      if (!d.isMine(p)) {
        d.rule(
          d.callback,
          `WARNING: device_pt_map: maps pfn ${hex(pfn)}, a device page it does not own, at ${hex(addr)}`,
          'warn',
        );
        return false;
      }
      if (page_count(k, p) <= 1) {
        d.badPage(p, `${d.name} maps a free device page at ${hex(addr)}`);
        return false;
      }
    }
    // A page the kernel took as this migration's dst at addr: the CPU maps it once the migration ends.
    const mig = d.migration;
    if (
      mig &&
      addr >= mig.start &&
      addr < mig.end &&
      migrate_pfn_to_page(k, mig.dst[(addr - mig.start) / c.PAGE_SIZE]!) === p
    )
      return true;
    const cpu = cpu_view_of(k, m.mm, addr);
    if (cpu.kind === 'none' || cpu.pfn !== pfn || (write && !cpu.write)) {
      d.rule(
        d.callback,
        `WARNING: device_pt_map: maps ${hex(addr)} -> pfn ${hex(pfn)}${write ? ' (write)' : ''} but the CPU ${cpu.kind === 'none' ? cpu.why : cpu.pfn !== pfn ? `maps pfn ${hex(cpu.pfn)} there` : 'maps it read-only'}`,
        'warn',
      );
      return false;
    }
    return true;
  };

  const printk =
    (level: 'info' | 'warn' | 'err' | 'debug') =>
    (...a: Args) => {
      k.printk(level, `${d.label}: ${text(a, 0, 'dev_' + level)}`);
    };

  const constants: Record<string, number> = {
    EPERM: errno.EPERM,
    ENOENT: errno.ENOENT,
    EINTR: errno.EINTR,
    EIO: errno.EIO,
    ENXIO: errno.ENXIO,
    ENOEXEC: errno.ENOEXEC,
    EAGAIN: errno.EAGAIN,
    ENOMEM: errno.ENOMEM,
    EACCES: errno.EACCES,
    EFAULT: errno.EFAULT,
    EBUSY: errno.EBUSY,
    EEXIST: errno.EEXIST,
    ENODEV: errno.ENODEV,
    EINVAL: errno.EINVAL,
    ENOSPC: errno.ENOSPC,
    ERANGE: errno.ERANGE,
    EDEADLK: errno.EDEADLK,
    PAGE_SIZE: c.PAGE_SIZE,
    PAGE_SHIFT: c.PAGE_SHIFT,
    PMD_SIZE: c.PMD_SIZE,
    VM_FAULT_OOM,
    VM_FAULT_SIGBUS,
    VM_FAULT_MAJOR,
    VM_FAULT_WRITE,
    VM_FAULT_HWPOISON,
    VM_FAULT_SIGSEGV,
    VM_FAULT_NOPAGE,
    VM_FAULT_LOCKED,
    VM_FAULT_RETRY,
    FAULT_FLAG_WRITE,
    VM_READ,
    VM_WRITE,
    VM_EXEC,
    VM_SHARED,
    MIGRATE_PFN_VALID,
    MIGRATE_PFN_MIGRATE,
    MIGRATE_PFN_LOCKED,
    MIGRATE_PFN_WRITE,
    MIGRATE_PFN_DEVICE,
    MIGRATE_PFN_ERROR,
    MIGRATE_PFN_SHIFT,
    HMM_PFN_VALID,
    HMM_PFN_WRITE,
    HMM_PFN_DEVICE_PRIVATE,
    HMM_PFN_ERROR,
    HMM_PFN_NONE,
    HMM_PFN_SPECIAL,
    HMM_UPDATE_INVALIDATE,
    MEMORY_DEVICE_HOST,
    MEMORY_DEVICE_PRIVATE,
    MEMORY_DEVICE_PUBLIC,
  };

  return {
    ...constants,

    // ---- the device and logging ---------------------------------------------------------
    device_info: () => d.deviceInfo(),
    dev_info: printk('info'),
    dev_warn: printk('warn'),
    dev_err: printk('err'),
    dev_dbg: printk('debug'),
    WARN: (...a) => k.WARN(`${d.label}: ${text(a, 0, 'WARN')}`),

    // ---- device memory --------------------------------------------------------------------
    hmm_devmem_add: (...a) => {
      const size = intArg(a, 0, 'hmm_devmem_add');
      if (size <= 0) return -EINVAL;
      const dm = hmm_devmem_add(k, d.devmemOps, dev, size);
      return IS_ERR(dm) ? dm : d.addDevmem(dm);
    },
    hmm_devmem_add_resource: () => {
      const res = d.bound.platformRes;
      if (!res) return -EINVAL;
      const dm = hmm_devmem_add_resource(k, d.devmemOps, dev, res);
      return IS_ERR(dm) ? dm : d.addDevmem(dm);
    },
    hmm_devmem_remove: (...a) => {
      const dm = devmem(a, 0, 'hmm_devmem_remove');
      d.devmems.delete(intArg(a, 0, 'hmm_devmem_remove'));
      hmm_devmem_remove(k, dm);
      if (d.bound.devmem === dm) d.bound.devmem = d.devmems.values().next().value;
    },
    devmem_pfn_first: (...a) => devmem(a, 0, 'devmem_pfn_first').pfn_first,
    devmem_pfn_last: (...a) => devmem(a, 0, 'devmem_pfn_last').pfn_last,
    devmem_pages_in_use: (...a) =>
      d
        .pool(devmem(a, 0, 'devmem_pages_in_use'))
        .oldest(Math.min(optInt(a, 1, 'devmem_pages_in_use', MAX_MIGRATE_PAGES), MAX_MIGRATE_PAGES)),
    devmem_nr_free: (...a) => d.pool(devmem(a, 0, 'devmem_nr_free')).free.nr_free,
    hmm_device_new: () => {
      const h = hmm_device_new(k, null);
      if (IS_ERR(h)) return h;
      const id = d.newHandle();
      d.hdevs.set(id, h);
      return id;
    },
    hmm_device_put: (...a) => {
      const id = intArg(a, 0, 'hmm_device_put');
      const h = d.hdevs.get(id);
      if (!h) throw new HostError(-EINVAL, `hmm_device_put: ${id} is not an hmm_device of this driver`);
      d.hdevs.delete(id);
      hmm_device_put(k, h);
    },

    // ---- pages ----------------------------------------------------------------------------
    get_page: (...a) => {
      const p = page(a, 0, 'get_page');
      if (page_count(k, p) <= 0) {
        d.badPage(p, `get_page of a free page by ${d.name}`);
        throw new HostError(-EINVAL, 'get_page: the page is free');
      }
      get_page(k, p);
      d.acquired(p);
    },
    put_page: (...a) => {
      const p = page(a, 0, 'put_page');
      if (!d.released(p)) {
        d.badPage(p, `put_page of a page ${d.name} holds no reference to (freed twice?)`);
        return;
      }
      put_page(k, p);
    },
    lock_page: (...a) => {
      const p = page(a, 0, 'lock_page');
      if (PageLocked(k, p)) {
        d.badPage(p, `lock_page of a page already locked${d.locked.has(p) ? ` by ${d.name}` : ''}`);
        throw new HostError(
          -EDEADLK,
          'lock_page: the page is locked (the lab has one thread: this would never return)',
        );
      }
      lock_page(k, p);
      d.locked.add(p);
    },
    trylock_page: (...a) => {
      const p = page(a, 0, 'trylock_page');
      if (!trylock_page(k, p)) return false;
      d.locked.add(p);
      return true;
    },
    unlock_page: (...a) => {
      const p = page(a, 0, 'unlock_page');
      if (!d.locked.delete(p)) {
        d.badPage(p, `unlock_page of a page ${d.name} did not lock`);
        return;
      }
      unlock_page(k, p);
    },
    page_count: (...a) => page_count(k, page(a, 0, 'page_count')),
    page_mapcount: (...a) => page_mapcount(k, page(a, 0, 'page_mapcount')),
    page_to_pfn: (...a) => k.mem.page_to_pfn(page(a, 0, 'page_to_pfn')),
    pfn_to_page: (...a) => {
      const pfn = intArg(a, 0, 'pfn_to_page');
      return pfn < 0 ? -1 : k.mem.pfn_to_page(pfn);
    },
    is_zone_device_page: (...a) => is_zone_device_page(k, page(a, 0, 'is_zone_device_page')),
    is_device_private_page: (...a) => is_device_private_page(k, page(a, 0, 'is_device_private_page')),
    page_is_mine: (...a) => d.isMine(page(a, 0, 'page_is_mine')),
    is_zero_pfn: (...a) => is_zero_pfn(k, intArg(a, 0, 'is_zero_pfn')),
    page_get_cookie: (...a) => d.cookies.get(page(a, 0, 'page_get_cookie')) ?? 0,
    page_set_cookie: (...a) => {
      const p = page(a, 0, 'page_set_cookie');
      const v = a[1];
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw new HostError(-EINVAL, `page_set_cookie: expected a number, got ${describe(v)}`);
      if (!d.isMine(p))
        throw new HostError(
          -EINVAL,
          `page_set_cookie: pfn ${hex(k.mem.page_to_pfn(p))} is not device memory of this driver`,
        );
      d.cookies.set(p, v);
    },
    alloc_page: () => {
      const p = alloc_page(k, GFP_HIGHUSER);
      if (p >= 0) d.acquired(p);
      return p;
    },
    hmm_vma_alloc_locked_page: (...a) => {
      const v = vma(a, 0, 'hmm_vma_alloc_locked_page');
      const p = hmm_vma_alloc_locked_page(k, v, intArg(a, 1, 'hmm_vma_alloc_locked_page'));
      if (p >= 0) {
        d.acquired(p);
        d.locked.add(p);
      }
      return p;
    },

    // ---- the copy engine ----------------------------------------------------------------
    dma_copy: (...a) => {
      const dst = ints(a, 0, 'dma_copy');
      const src = ints(a, 1, 'dma_copy');
      if (dst.length !== src.length) return -EINVAL;
      let copied = 0;
      for (let i = 0; i < dst.length; i++) {
        const to = page([dst[i]!], 0, `dma_copy dst[${i}]`);
        const from = src[i]!;
        if (!owns(to)) {
          d.badPage(to, `dma_copy into a page ${d.name} does not own (dst[${i}])`);
          continue;
        }
        if (from === -1) clear_highpage(k, to);
        else copy_highpage(k, to, page([from], 0, `dma_copy src[${i}]`));
        copied++;
      }
      if (copied)
        k.trace.emit({ name: 'dma_copy', device: dev_name(dev), pages: copied, bytes: copied * c.PAGE_SIZE });
      return copied;
    },
    copy_to_buffer: (...a) => {
      const buf = buffer(a, 0, 'copy_to_buffer');
      const off = intArg(a, 1, 'copy_to_buffer');
      const p = page(a, 2, 'copy_to_buffer');
      const len = Math.min(optInt(a, 3, 'copy_to_buffer', c.PAGE_SIZE), c.PAGE_SIZE, buf.length - off);
      if (off < 0 || len < 0) return -EFAULT;
      const bytes = k.contents.peek(p);
      if (bytes) buf.set(bytes.subarray(0, len), off);
      else buf.fill(0, off, off + len);
      return len;
    },
    copy_from_buffer: (...a) => {
      const p = page(a, 0, 'copy_from_buffer');
      const buf = buffer(a, 1, 'copy_from_buffer');
      const off = intArg(a, 2, 'copy_from_buffer');
      if (off < 0 || off + c.PAGE_SIZE > buf.length) return -EFAULT;
      k.contents.kmap(p, c.PAGE_SIZE).set(buf.subarray(off, off + c.PAGE_SIZE));
      k.mem.stamp[p] = (k.mem.stamp[p]! + 1) >>> 0;
      return c.PAGE_SIZE;
    },

    // ---- address spaces -----------------------------------------------------------------
    find_vma: (...a) => {
      const v = find_vma(mm(a, 0, 'find_vma'), intArg(a, 1, 'find_vma'));
      return v ? d.vmaHandle(v) : 0;
    },
    vma_start: (...a) => vma(a, 0, 'vma_start').vm_start,
    vma_end: (...a) => vma(a, 0, 'vma_end').vm_end,
    vma_flags: (...a) => vma(a, 0, 'vma_flags').vm_flags,
    vma_mm: (...a) => d.mmHandle(vma(a, 0, 'vma_mm').vm_mm),
    mm_dying: (...a) => mm(a, 0, 'mm_dying').dying,
    map_order: (...a) => {
      const m = mm(a, 0, 'map_order');
      const w = walk_lookup(k, m, intArg(a, 1, 'map_order'), walk);
      const e = k.pt.entries;
      if (w.pud >= 0 && pmd_huge(e[w.pud]!)) return c.PUD_SHIFT - c.PAGE_SHIFT;
      if (w.pmd >= 0 && pmd_huge(e[w.pmd]!)) return c.PMD_SHIFT - c.PAGE_SHIFT;
      return w.pte >= 0 && !pte_none(e[w.pte]!) ? 0 : -1;
    },
    page_mapped_at: (...a) => {
      const p = page(a, 0, 'page_mapped_at');
      let out: number[] = [];
      rmap_walk(k, p, (v, addr) => {
        out = [d.vmaHandle(v), addr];
        return false;
      });
      return out;
    },

    // ---- the mirror and the device page table ---------------------------------------------
    hmm_mirror_register: (...a) => {
      const m = mm(a, 0, 'hmm_mirror_register');
      const h = d.newHandle();
      const mirror = new PluginMirror(d, m, h);
      const ret = hmm_mirror_register(k, mirror, m);
      if (ret) return ret;
      d.mirrors.set(h, mirror);
      return h;
    },
    hmm_mirror_unregister: (...a) => {
      const m = mirror(a, 0, 'hmm_mirror_unregister');
      d.mirrors.delete(m.handle);
      hmm_mirror_unregister(k, m);
      if (m.pt.size) {
        d.rule(
          d.callback,
          `BUG: mirror ${d.label} is unregistered with ${m.pt.size} device mappings left (hmm_mirror_unregister without dropping them)`,
        );
        m.pt.clear();
      }
    },
    mirror_mm: (...a) => d.mmHandle(mirror(a, 0, 'mirror_mm').mm),
    device_pt_map: (...a) => {
      const m = mirror(a, 0, 'device_pt_map');
      const addr = intArg(a, 1, 'device_pt_map');
      const p = page(a, 2, 'device_pt_map');
      const write = bool(a, 3, 'device_pt_map');
      if (addr % c.PAGE_SIZE || addr < 0) return -EINVAL;
      if (!mayMap(m, addr, p, write)) return -EINVAL;
      m.pt.set(addr / c.PAGE_SIZE, p * 2 + (write ? 1 : 0));
      return 0;
    },
    device_pt_map_range: (...a) => {
      const m = mirror(a, 0, 'device_pt_map_range');
      const start = intArg(a, 1, 'device_pt_map_range');
      const entries = ints(a, 2, 'device_pt_map_range');
      if (start % c.PAGE_SIZE || start < 0) return -EINVAL;
      let ret = 0;
      for (let i = 0; i < entries.length; i++) {
        const v = entries[i]!;
        if (v < 0) continue;
        const p = Math.floor(v / 2);
        const write = v % 2 === 1;
        const addr = start + i * c.PAGE_SIZE;
        if (!(p < k.mem.refcount.length && k.mem.page_to_pfn(p) >= 0) || !mayMap(m, addr, p, write)) {
          ret = -EINVAL;
          continue;
        }
        m.pt.set(addr / c.PAGE_SIZE, v);
      }
      return ret;
    },
    device_pt_unmap: (...a) => {
      const m = mirror(a, 0, 'device_pt_unmap');
      const start = intArg(a, 1, 'device_pt_unmap');
      const end = intArg(a, 2, 'device_pt_unmap');
      if (!m.pt.size || end <= start) return 0;
      return m.pt.clear_range(Math.floor(start / c.PAGE_SIZE), Math.ceil(end / c.PAGE_SIZE));
    },
    device_pt_lookup: (...a) => {
      const m = mirror(a, 0, 'device_pt_lookup');
      return m.pt.get(Math.floor(intArg(a, 1, 'device_pt_lookup') / c.PAGE_SIZE)) ?? -1;
    },
    device_pt_size: (...a) => mirror(a, 0, 'device_pt_size').pt.size,
    device_pt_lookup_range: (...a) => {
      const m = mirror(a, 0, 'device_pt_lookup_range');
      const start = intArg(a, 1, 'device_pt_lookup_range');
      const npages = intArg(a, 2, 'device_pt_lookup_range');
      if (start % c.PAGE_SIZE || start < 0 || npages < 0 || npages > MAX_MIGRATE_PAGES)
        throw new HostError(-EINVAL, `device_pt_lookup_range: ${hex(start)}, ${npages} pages`);
      const out = new Float64Array(npages);
      m.pt.lookup_range(start / c.PAGE_SIZE, npages, out);
      return out;
    },
    device_pt_map_pfns: (...a) =>
      d.mapPfns(
        mirror(a, 0, 'device_pt_map_pfns'),
        range(a, 1, 'device_pt_map_pfns'),
        bool(a, 2, 'device_pt_map_pfns'),
      ),
    device_pt_map_migrated: (...a) =>
      d.mapMigrated(
        intArg(a, 0, 'device_pt_map_migrated') === 0 ? null : mirror(a, 0, 'device_pt_map_migrated'),
      ),

    // ---- ranges -----------------------------------------------------------------------------
    hmm_range_alloc: (...a) => {
      const npages = intArg(a, 0, 'hmm_range_alloc');
      const flags = ints(a, 1, 'hmm_range_alloc', 3);
      const values = ints(a, 2, 'hmm_range_alloc', 3);
      const shift = intArg(a, 3, 'hmm_range_alloc');
      if (npages < 1 || npages > 65_536 || flags.length !== 3 || values.length !== 3) return -EINVAL;
      if (shift < 1 || shift > 12 || flags.some((f) => f < 0 || f >= 2 ** shift)) return -EINVAL;
      const h = d.newHandle();
      d.ranges.set(h, {
        range: new hmm_range(new Float64Array(npages), flags, values, shift),
        npages,
        filled: false,
      });
      return h;
    },
    hmm_range_free: (...a) => {
      const r = range(a, 0, 'hmm_range_free');
      hmm_range_unregister(r.range);
      if (r.range.vma && r.range.end > r.range.start) hmm_vma_range_done(k, r.range);
      d.ranges.delete(intArg(a, 0, 'hmm_range_free'));
    },
    hmm_range_set_pfns: (...a) => {
      const r = range(a, 0, 'hmm_range_set_pfns');
      const pfns = ints(a, 1, 'hmm_range_set_pfns', r.npages);
      r.range.pfns.set(pfns);
      r.filled = false;
    },
    hmm_range_pfns: (...a) => {
      const r = range(a, 0, 'hmm_range_pfns').range;
      const n = Math.min(r.pfns.length, Math.max(0, (r.end - r.start) / c.PAGE_SIZE));
      return r.pfns.slice(0, n);
    },
    hmm_range_register: (...a) => {
      const r = range(a, 0, 'hmm_range_register');
      const m = mirror(a, 1, 'hmm_range_register');
      const start = intArg(a, 2, 'hmm_range_register');
      const end = intArg(a, 3, 'hmm_range_register');
      r.filled = false;
      if ((end - start) / c.PAGE_SIZE > r.npages) return -EINVAL;
      return hmm_range_register(k, r.range, m, start, end, c.PAGE_SHIFT);
    },
    hmm_range_unregister: (...a) => hmm_range_unregister(range(a, 0, 'hmm_range_unregister').range),
    hmm_range_wait_until_valid: (...a) =>
      hmm_range_wait_until_valid(range(a, 0, 'hmm_range_wait_until_valid').range),
    hmm_range_snapshot: (...a) => {
      const r = range(a, 0, 'hmm_range_snapshot');
      const ret = hmm_range_snapshot(k, r.range);
      r.filled = ret >= 0;
      return ret;
    },
    hmm_range_fault: (...a) => {
      const r = range(a, 0, 'hmm_range_fault');
      const ret = hmm_range_fault(k, r.range, bool(a, 1, 'hmm_range_fault'));
      r.filled = ret >= 0;
      return ret;
    },
    hmm_range_valid: (...a) => hmm_range_valid(range(a, 0, 'hmm_range_valid').range),
    hmm_vma_get_pfns: (...a) => {
      const r = range(a, 0, 'hmm_vma_get_pfns');
      const ret =
        setVmaRange(r.range, r.npages, vma(a, 1, 'hmm_vma_get_pfns'), a, 'hmm_vma_get_pfns') ||
        hmm_vma_get_pfns(k, r.range);
      r.filled = ret === 0;
      return ret;
    },
    hmm_vma_fault: (...a) => {
      const r = range(a, 0, 'hmm_vma_fault');
      const ret =
        setVmaRange(r.range, r.npages, vma(a, 1, 'hmm_vma_fault'), a, 'hmm_vma_fault') ||
        hmm_vma_fault(k, r.range, bool(a, 4, 'hmm_vma_fault'));
      r.filled = ret === 0;
      return ret;
    },
    hmm_vma_range_done: (...a) => hmm_vma_range_done(k, range(a, 0, 'hmm_vma_range_done').range),
    hmm_pfn_to_pfn: (...a) =>
      hmm_pfn_to_pfn(range(a, 0, 'hmm_pfn_to_pfn').range, intArg(a, 1, 'hmm_pfn_to_pfn')),
    hmm_pfn_to_page: (...a) =>
      hmm_pfn_to_page(k, range(a, 0, 'hmm_pfn_to_page').range, intArg(a, 1, 'hmm_pfn_to_page')),

    // ---- migration ----------------------------------------------------------------------
    migrate_vma: (...a) =>
      d.migrate(
        vma(a, 0, 'migrate_vma'),
        intArg(a, 1, 'migrate_vma'),
        intArg(a, 2, 'migrate_vma'),
        optInt(a, 3, 'migrate_vma', 0),
      ),
    migrate_alloc_devmem_pages: (...a) => d.migrateAllocDevmem(devmem(a, 0, 'migrate_alloc_devmem_pages')),
    migrate_alloc_system_pages: () => d.migrateAllocSystem(),
    migrate_pfn: (...a) => migrate_pfn(intArg(a, 0, 'migrate_pfn')),
    migrate_pfn_to_page: (...a) => migrate_pfn_to_page(k, intArg(a, 0, 'migrate_pfn_to_page')),
    migrate_pfn_flags: (...a) => migrate_pfn_flags(intArg(a, 0, 'migrate_pfn_flags')),

    // ---- locks ----------------------------------------------------------------------------
    mutex_init: (...a) => {
      const h = d.newHandle();
      d.mutexes.set(h, {
        name: a[0] === undefined ? `mutex${h}` : text(a, 0, 'mutex_init'),
        held: false,
        by: '',
      });
      return h;
    },
    mutex_lock: (...a) => {
      const m = mutex(a, 0, 'mutex_lock');
      if (m.held) {
        d.rule(
          d.callback,
          `BUG: possible recursive locking detected: mutex ${m.name} is already held (taken in ${d.name}.${m.by})`,
        );
        throw new HostError(-EDEADLK, `mutex_lock: ${m.name} is already held: this would deadlock`);
      }
      m.held = true;
      m.by = d.callback;
    },
    mutex_trylock: (...a) => {
      const m = mutex(a, 0, 'mutex_trylock');
      if (m.held) return false;
      m.held = true;
      m.by = d.callback;
      return true;
    },
    mutex_unlock: (...a) => {
      const m = mutex(a, 0, 'mutex_unlock');
      if (!m.held) {
        d.rule(d.callback, `WARNING: bad unlock balance detected! mutex ${m.name} is not held`, 'warn');
        return;
      }
      m.held = false;
    },
    mutex_is_locked: (...a) => mutex(a, 0, 'mutex_is_locked').held,

    // ---- persistent memory ------------------------------------------------------------------
    devm_request_mem_region: (...a) =>
      devm_request_mem_region(
        k,
        dev,
        intArg(a, 0, 'devm_request_mem_region'),
        intArg(a, 1, 'devm_request_mem_region'),
        dev_name(dev),
      )
        ? 0
        : -EBUSY,
    blk_alloc_queue: () => {
      const q = blk_alloc_queue_node(k);
      if (!q) return -ENOMEM;
      const h = d.newHandle();
      d.queues.set(h, q);
      return h;
    },
    blk_cleanup_queue: (...a) => {
      const q = queue(a, 0, 'blk_cleanup_queue');
      if (q.dying) {
        d.rule(d.callback, 'WARNING: blk_cleanup_queue of a queue already cleaned up', 'warn');
        return;
      }
      blk_cleanup_queue(k, q);
      if (!d.bound.pmem || d.bound.pmem.pmem_queue !== q) d.droppedQueues.push(q);
    },
    blk_queue_dying: (...a) => queue(a, 0, 'blk_queue_dying').dying,
    devm_memremap_pages: (...a) => {
      const start = intArg(a, 0, 'devm_memremap_pages');
      const size = intArg(a, 1, 'devm_memremap_pages');
      const q = queue(a, 2, 'devm_memremap_pages');
      if (size <= 0 || start < 0) return -EINVAL;
      // F-PGMAP-6: the queue's usage counter is the pagemap's reference.
      const pgmap = new_dev_pagemap(
        dev,
        MEMORY_DEVICE_HOST,
        { start, end: start + size - 1 },
        q.q_usage_counter,
      );
      const addr = devm_memremap_pages(k, dev, pgmap);
      if (IS_ERR(addr)) return addr;
      const pmem = new pmem_device(start, size);
      pmem.pmem_queue = q;
      pmem.pgmap = pgmap;
      pmem.virt_addr = addr;
      pmem.pfn_flags |= PFN_MAP;
      pmem.dropped_queues.push(...d.droppedQueues);
      d.bound.pmem = pmem;
      d.pgmapIds[pgmap.id] = 1;
      return addr;
    },
    devm_add_action: (...a) => {
      const name = stringArg(a, 0, 'devm_add_action');
      const arg = intArg(a, 1, 'devm_add_action');
      if (!d.has(name))
        throw new HostError(-EINVAL, `devm_add_action: the plugin exports no function ${name}`);
      return devm_add_action(k, dev, () => d.devresAction(name, arg), null);
    },
  };

  /** The 2017 API's range fields, set by the caller before hmm_vma_get_pfns/hmm_vma_fault. */
  function setVmaRange(r: hmm_range, npages: number, v: vm_area_struct, a: Args, fn: string): number {
    const start = intArg(a, 2, fn);
    const end = intArg(a, 3, fn);
    if ((end - start) / c.PAGE_SIZE > npages) return -EINVAL;
    r.vma = v;
    r.start = start;
    r.end = end;
    return 0;
  }
}

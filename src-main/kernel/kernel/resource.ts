// kernel/resource.c: the iomem_resource tree. F-RES-1: children nest inside their
// parent, siblings are kept sorted and never overlap.
import type { Kernel } from '../kernel';
import type { device } from '../drivers/base/core';
import { devres_add_action, devres_remove_matching } from '../drivers/base/devres';
import { EBUSY, EINVAL } from '../include/errno';
import {
  IORESOURCE_BUSY,
  IORESOURCE_MEM,
  IORESOURCE_MUXED,
  IORESOURCE_TYPE_BITS,
  IORES_DESC_NONE,
  REGION_DISJOINT,
  REGION_INTERSECTS,
  REGION_MIXED,
} from '../include/ioport';

export class resource {
  parent: resource | null = null;
  sibling: resource | null = null;
  child: resource | null = null;

  constructor(
    public name: string,
    public start: number,
    public end: number,
    public flags = IORESOURCE_MEM,
    public desc = IORES_DESC_NONE,
  ) {}
}

export function resource_size(res: resource): number {
  return res.end - res.start + 1;
}

export function resource_overlaps(
  r1: { start: number; end: number },
  r2: { start: number; end: number },
): boolean {
  return r1.start <= r2.end && r1.end >= r2.start;
}

export function* children(parent: resource): Generator<resource> {
  for (let p = parent.child; p; p = p.sibling) yield p;
}

/** Link `res` under `root` unless it overflows root or collides with a child: then return that one. */
function __request_resource(root: resource, res: resource): resource | null {
  if (res.end < res.start || res.start < root.start || res.end > root.end) return root;
  let prev: resource | null = null;
  for (let tmp = root.child; ; tmp = tmp.sibling) {
    if (!tmp || tmp.start > res.end) {
      res.sibling = tmp;
      if (prev) prev.sibling = res;
      else root.child = res;
      res.parent = root;
      return null;
    }
    if (tmp.end < res.start) {
      prev = tmp;
      continue;
    }
    return tmp;
  }
}

export function request_resource_conflict(root: resource, res: resource): resource | null {
  return __request_resource(root, res);
}

export function request_resource(root: resource, res: resource): number {
  return request_resource_conflict(root, res) ? -EBUSY : 0;
}

export function release_resource(old: resource): number {
  const parent = old.parent;
  if (!parent) return -EINVAL;
  if (parent.child === old) parent.child = old.sibling;
  else {
    let p = parent.child;
    while (p && p.sibling !== old) p = p.sibling;
    if (!p) return -EINVAL;
    p.sibling = old.sibling;
  }
  old.parent = null;
  old.sibling = null;
  return 0;
}

/**
 * Insert `res` into the tree, adopting as children the existing resources it fully
 * covers. Returns the resource it partially overlaps, or null on success.
 */
export function insert_resource_conflict(parent: resource, res: resource): resource | null {
  let first: resource | null;
  for (;;) {
    first = __request_resource(parent, res);
    if (!first || first === parent) return first;
    if (first === res) return first;
    if (first.start > res.start || first.end < res.end) break;
    if (first.start === res.start && first.end === res.end) break;
    parent = first;
  }
  let next: resource = first;
  for (;;) {
    if (next.start < res.start || next.end > res.end) return next;
    if (!next.sibling || next.sibling.start > res.end) break;
    next = next.sibling;
  }
  res.parent = parent;
  res.sibling = next.sibling;
  res.child = first;
  next.sibling = null;
  for (let n: resource | null = first; n; n = n.sibling) n.parent = res;
  if (parent.child === first) parent.child = res;
  else {
    let n = parent.child!;
    while (n.sibling !== first) n = n.sibling!;
    n.sibling = res;
  }
  return null;
}

export function insert_resource(parent: resource, res: resource): number {
  return insert_resource_conflict(parent, res) ? -EBUSY : 0;
}

/**
 * Claim [start, start+n) as a busy region, nesting inside non-busy containers. Returns
 * the new resource, or null when the range is taken.
 */
export function __request_region(
  k: Kernel,
  parent: resource,
  start: number,
  n: number,
  name: string,
  flags = 0,
): resource | null {
  if (k.fault.should_fail('request_region')) return null;
  const res = new resource(
    name,
    start,
    start + n - 1,
    ((parent.flags & IORESOURCE_TYPE_BITS) | IORESOURCE_BUSY | flags) >>> 0,
  );
  for (;;) {
    const conflict = __request_resource(parent, res);
    if (!conflict) return res;
    if (conflict !== parent && !(conflict.flags & IORESOURCE_BUSY)) {
      parent = conflict;
      // The region takes its container's descriptor, as the kernel's does.
      res.desc = parent.desc;
      continue;
    }
    if (conflict.flags & flags & IORESOURCE_MUXED) k.pr_debug(`${name}: muxed region ${conflict.name} busy`);
    return null;
  }
}

/** Release a busy region that exactly matches [start, start+n); warns when there is none. */
export function __release_region(k: Kernel, parent: resource, start: number, n: number): void {
  const end = start + n - 1;
  let p = parent.child;
  while (p) {
    if (p.start <= start && p.end >= end) {
      if (!(p.flags & IORESOURCE_BUSY)) {
        p = p.child;
        continue;
      }
      if (p.start === start && p.end === end) {
        release_resource(p);
        return;
      }
    }
    p = p.sibling;
  }
  k.printk('warn', `Trying to free nonexistent resource <${hex16(start)}-${hex16(end)}>`);
}

export function request_mem_region(k: Kernel, start: number, n: number, name: string): resource | null {
  return __request_region(k, k.iomem_resource, start, n, name);
}

export function release_mem_region(k: Kernel, start: number, n: number): void {
  __release_region(k, k.iomem_resource, start, n);
}

/** devm_request_mem_region: the region is released when the device lets go of its resources. */
export function devm_request_mem_region(
  k: Kernel,
  dev: device,
  start: number,
  n: number,
  name: string,
): resource | null {
  const res = request_mem_region(k, start, n, name);
  if (res) devres_add_action(dev, devm_region_release, { start, n });
  return res;
}

function devm_region_release(k: Kernel, _dev: device, data: unknown): void {
  const { start, n } = data as { start: number; n: number };
  release_mem_region(k, start, n);
}

export function devm_release_mem_region(k: Kernel, dev: device, start: number, n: number): void {
  devres_remove_matching(dev, devm_region_release, (d) => {
    const r = d as { start: number; n: number };
    return r.start === start && r.n === n;
  });
  release_mem_region(k, start, n);
}

/**
 * F-RES-2: compare [start, start+size) with the top-level resources. A resource "is of
 * the type" when it has all `flags` and, unless desc is NONE, that desc.
 */
export function region_intersects(
  k: Kernel,
  start: number,
  size: number,
  flags: number,
  desc: number,
): number {
  const res = { start, end: start + size - 1 };
  let type = 0;
  let other = 0;
  for (const p of children(k.iomem_resource)) {
    const isType = (p.flags & flags) >>> 0 === flags >>> 0 && (desc === IORES_DESC_NONE || desc === p.desc);
    if (resource_overlaps(p, res)) {
      if (isType) type++;
      else other++;
    }
  }
  if (other === 0) return type ? REGION_INTERSECTS : REGION_DISJOINT;
  return type ? REGION_MIXED : REGION_DISJOINT;
}

function hex16(v: number): string {
  return v.toString(16).padStart(16, '0');
}

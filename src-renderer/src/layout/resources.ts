// The iomem tree flattened for drawing and tables. Nothing here is kernel state: only keys, depths,
// parsed numbers and the colour family a resource is drawn in.
import type { ResourceNode } from '../api/lab';
import { parseAddr } from './format';

export type Category = 'ram' | 'reserved' | 'private' | 'public' | 'pmem' | 'other';

export interface ResourceRow {
  /** Position in the tree ("0.3.1"): stable while the tree does not change, shared by map and table. */
  key: string;
  depth: number;
  node: ResourceNode;
  start: bigint;
  end: bigint;
  size: bigint;
  category: Category;
}

export function categoryOf(node: ResourceNode): Category {
  switch (node.desc) {
    case 'DEVICE_PRIVATE_MEMORY':
      return 'private';
    case 'DEVICE_PUBLIC_MEMORY':
      return 'public';
    case 'PERSISTENT_MEMORY':
    case 'PERSISTENT_MEMORY_LEGACY':
      return 'pmem';
    default:
      if (node.flags.includes('SYSRAM') || node.name === 'System RAM') return 'ram';
      if (node.name.toLowerCase().startsWith('reserved')) return 'reserved';
      return 'other';
  }
}

export const CATEGORY_LABEL: Record<Category, string> = {
  ram: 'System RAM',
  reserved: 'reserved',
  private: 'DEVICE_PRIVATE',
  public: 'DEVICE_PUBLIC',
  pmem: 'PERSISTENT_MEMORY',
  other: 'bus / other',
};

/** Depth-first, children after their parent, each level in address order. A child with no colour of
 * its own (a driver's claim inside a pmem region, say) takes its parent's. */
export function flattenResources(
  nodes: readonly ResourceNode[],
  prefix = '',
  depth = 0,
  parent: Category = 'other',
): ResourceRow[] {
  const rows: ResourceRow[] = [];
  nodes.forEach((node, i) => {
    const key = prefix ? `${prefix}.${i}` : String(i);
    const start = parseAddr(node.start);
    const end = parseAddr(node.end);
    const own = categoryOf(node);
    const category = own === 'other' ? parent : own;
    rows.push({ key, depth, node, start, end, size: end - start + 1n, category });
    rows.push(...flattenResources(node.children, key, depth + 1, category));
  });
  return rows;
}

// fs/file_table.c: file references. Every vma mapping a file holds one; the last fput of
// an unlinked inode (a shared anonymous mapping's "dev/zero" object) drops its pages.
import type { Kernel } from '../kernel';
import type { file } from './file';
import { truncate_inode_pages } from '../mm/filemap';

export function get_file(f: file): file {
  f.f_count++;
  return f;
}

export function fput(k: Kernel, f: file): void {
  if (--f.f_count > 0) return;
  if (f.f_count < 0) {
    f.f_count = 0;
    k.WARN(`fput: ${f.f_inode.name} f_count underflow`);
    return;
  }
  if (f.f_inode.i_nlink === 0) truncate_inode_pages(k, f.f_mapping);
}

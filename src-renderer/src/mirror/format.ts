// Presentation of the mirror: snapshot bytes (lib/test_hmm_uapi.h's HMM_DMIRROR_PROT_*) and
// the kinds of lines in the mirror trace.
import type { MirrorEventKind } from '../api/lab';

/**
 * A snapshot byte as the selftest names it: "ERROR", "NONE", or the OR of READ/WRITE with
 * PMD, PUD, ZERO, LOCAL (DEV_PRIVATE_LOCAL) or REMOTE (DEV_PRIVATE_REMOTE).
 */
export function snapshotLabel(b: number): string {
  if (b === 0xff) return 'ERROR';
  if (b === 0) return 'NONE';
  const parts: string[] = [];
  const kind = b & 0x30;
  if (kind === 0x30) parts.push('REMOTE');
  else if (kind === 0x20) parts.push('LOCAL');
  else if (kind === 0x10) parts.push('ZERO');
  if (b & 0x02) parts.push('WRITE');
  else if (b & 0x01) parts.push('READ');
  if (b & 0x04) parts.push('PMD');
  if (b & 0x08) parts.push('PUD');
  return parts.join('|');
}

export function hexByte(b: number): string {
  return `0x${b.toString(16).padStart(2, '0')}`;
}

export const EVENT_KINDS: Record<MirrorEventKind, { label: string; color: string; hint: string }> = {
  register: {
    label: 'register',
    color: '#2f9461',
    hint: 'hmm_mirror_register: the driver mirrors the mm (mmu notifier on)',
  },
  unregister: {
    label: 'unregister',
    color: '#8b94a3',
    hint: 'hmm_mirror_unregister: the last mirror of the mm went',
  },
  invalidate: {
    label: 'invalidate',
    color: '#c23b40',
    hint: 'sync_cpu_device_pagetables: the CPU page table changed; the device dropped its entries there',
  },
  fault: { label: 'fault', color: '#2d6ccf', hint: 'hmm_range_fault: the device faulted the range in' },
  snapshot: {
    label: 'snapshot',
    color: '#1f8a8a',
    hint: 'hmm_range_snapshot: the CPU page table read without faulting',
  },
  retry: {
    label: 'retry',
    color: '#cf7a20',
    hint: 'the driver starts the range over: invalidated meanwhile, -EAGAIN/-EBUSY, or a device page to bring home',
  },
  command: { label: 'command', color: '#5b4bd6', hint: 'a dmirror ioctl and what it returned' },
  release: { label: 'release', color: '#8a5cc2', hint: 'the mm is exiting: each mirror is released' },
};

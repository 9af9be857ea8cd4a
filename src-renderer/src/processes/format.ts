// Presentation of processes and page-table entries: colours, labels and simulated times.
import type { PteState } from '../api/lab';

export const PROCESS_COLORS = [
  '#5b4bd6',
  '#2f9461',
  '#cf7a20',
  '#2d6ccf',
  '#c23b40',
  '#8a5cc2',
  '#1f8a8a',
  '#9a6b2f',
];

export interface StateStyle {
  label: string;
  color: string;
  /** What the entry means, for the legend's tooltip. */
  hint: string;
}

export const PTE_STATES: Record<PteState, StateStyle> = {
  none: { label: 'none', color: '#e6e9ef', hint: 'empty entry: the next access faults' },
  present: { label: 'present', color: '#2f9461', hint: 'a page of system RAM mapped by a present PTE' },
  zero: {
    label: 'zero page',
    color: '#8cc8e8',
    hint: 'the shared zero page, mapped read-only by a read fault',
  },
  'device-private': {
    label: 'device private',
    color: '#6d45d6',
    hint: 'a device entry: the page lives in un-addressable device memory; a CPU access faults it back',
  },
  migration: { label: 'migration', color: '#e09a2b', hint: 'a migration entry: the page is being moved' },
  devmap: {
    label: 'devmap',
    color: '#2d6ccf',
    hint: 'a ZONE_DEVICE pfn mapped directly (DAX, public device memory)',
  },
  huge: { label: 'huge', color: '#17694a', hint: 'part of a PMD- or PUD-mapped huge page' },
  swap: { label: 'swap', color: '#8b7d6b', hint: 'a swap entry' },
  bad: { label: 'bad', color: '#c23b40', hint: 'an entry that must not exist (bad page map)' },
};

/** Simulated nanoseconds as people read them: 950 ns, 12.5 µs, 3.2 ms, 1.05 s. */
export function formatNs(ns: number): string {
  const abs = Math.abs(ns);
  const [div, unit] =
    abs >= 1e9 ? [1e9, 's'] : abs >= 1e6 ? [1e6, 'ms'] : abs >= 1e3 ? [1e3, 'µs'] : [1, 'ns'];
  const v = ns / div;
  return `${Number(v.toPrecision(3))} ${unit}`;
}

export function formatPfn(pfn: number): string {
  return `0x${pfn.toString(16)}`;
}

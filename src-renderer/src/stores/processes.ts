// What the lab last said about its processes: the list, their rss series, and the page-table
// rows of the selected vma. Replaced wholesale by replies and by `processes` / `rss` events.
import { defineStore } from 'pinia';
import { ref, shallowRef } from 'vue';
import { toLabError } from '../api/errors';
import type { LabConnection } from '../api/client';
import type { LabError, OpResult, OpStep, PageTableView, ProcessInfo, RssSeries } from '../api/lab';

/** A vma of a process, by the process name and the vma's start address. */
export interface VmaSelection {
  proc: string;
  start: string;
}

/** Rows one page-table request asks for (the lab's maximum). */
export const PAGE_ROWS = 4096;

export const useProcessStore = defineStore('processes', () => {
  const processes = shallowRef<ProcessInfo[]>([]);
  const rss = shallowRef<RssSeries[]>([]);
  const selected = ref<VmaSelection | null>(null);
  /** First page of the inspected window, within the selected vma. */
  const pageOffset = ref(0);
  const pageTable = shallowRef<PageTableView | null>(null);
  const lastResult = shallowRef<OpResult | null>(null);
  const opError = ref<LabError | null>(null);
  const busy = ref(false);
  // The op bar's fields, here so that what was typed is still there when the view comes back.
  const proc = ref('p');
  const at = ref('buf');
  const pages = ref(16);
  const fill = ref('index');
  const child = ref('c');
  const device = ref('');
  let lab: LabConnection | null = null;
  let fetching = false;
  let refetch = false;

  function connect(connection: LabConnection): void {
    lab = connection;
    connection.onEvent((event) => {
      if (event.type === 'processes') {
        processes.value = event.processes;
        reconcile();
        void refreshPageTable();
      } else if (event.type === 'rss') rss.value = event.series;
    });
    connection.onStatus((s) => {
      if (s === 'open') void refresh();
    });
  }

  /** Start again from the lab's current state (after connecting or reconnecting). */
  async function refresh(): Promise<void> {
    if (!lab) return;
    try {
      const [list, series] = await Promise.all([
        lab.request({ type: 'processes' }),
        lab.request({ type: 'rssSeries' }),
      ]);
      processes.value = list;
      rss.value = series;
      reconcile();
      await refreshPageTable();
    } catch (err) {
      opError.value = toLabError(err);
    }
  }

  /** Keep the selection on a vma that still exists: the same start, else the first vma. */
  function reconcile(): void {
    const sel = selected.value;
    const proc =
      processes.value.find((p) => p.name === sel?.proc) ?? processes.value.find((p) => p.vmas.length);
    if (!proc) {
      selected.value = null;
      pageTable.value = null;
      return;
    }
    if (sel && proc.name === sel.proc && proc.vmas.some((v) => v.start === sel.start)) return;
    const first = proc.vmas[0];
    selected.value = first ? { proc: proc.name, start: first.start } : { proc: proc.name, start: '' };
    pageOffset.value = 0;
  }

  function select(proc: string, start: string): void {
    selected.value = { proc, start };
    pageOffset.value = 0;
    void refreshPageTable();
  }

  function setPageOffset(offset: number): void {
    pageOffset.value = Math.max(0, offset);
    void refreshPageTable();
  }

  /** Fetch the rows of the selected window; overlapping calls collapse into one more fetch. */
  async function refreshPageTable(): Promise<void> {
    if (!lab) return;
    if (fetching) {
      refetch = true;
      return;
    }
    fetching = true;
    try {
      do {
        refetch = false;
        const sel = selected.value;
        if (!sel?.start) {
          pageTable.value = null;
          continue;
        }
        try {
          pageTable.value = await lab.request({
            type: 'pageTable',
            proc: sel.proc,
            at: sel.start,
            offset: pageOffset.value,
            pages: PAGE_ROWS,
          });
        } catch {
          // The vma went away between the event and the request: the next event reselects.
          pageTable.value = null;
        }
      } while (refetch);
    } finally {
      fetching = false;
    }
  }

  /** Run one scenario step; resolves to its result, or null when the lab refused it (see opError). */
  async function runOp(step: OpStep): Promise<OpResult | null> {
    if (!lab) {
      opError.value = { code: 'ENOTCONN', message: 'not connected to a lab' };
      return null;
    }
    busy.value = true;
    try {
      const result = await lab.request({ type: 'op', op: step });
      lastResult.value = result;
      opError.value = null;
      return result;
    } catch (err) {
      opError.value = toLabError(err);
      return null;
    } finally {
      busy.value = false;
    }
  }

  return {
    processes,
    rss,
    selected,
    pageOffset,
    pageTable,
    lastResult,
    opError,
    busy,
    proc,
    at,
    pages,
    fill,
    child,
    device,
    connect,
    refresh,
    select,
    setPageOffset,
    refreshPageTable,
    runOp,
  };
});

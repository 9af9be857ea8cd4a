// include/linux/sched.h: a task, as far as memory is concerned.
import type { mm_struct } from './mm_types';

export class task_struct {
  /** Fatal signals delivered to the task, newest last (SIGSEGV, SIGBUS…). */
  readonly signals: { sig: string; addr: number }[] = [];
  exited = false;

  constructor(
    readonly pid: number,
    readonly comm: string,
    public mm: mm_struct | null,
  ) {}
}

// struct completion. The simulator has no threads to block, so a waiter is a
// continuation: it runs when complete() is called, or at once if already done.

export class Completion {
  done = false;
  private waiters: (() => void)[] = [];

  get waiting(): boolean {
    return !this.done && this.waiters.length > 0;
  }

  /** Internal to complete()/wait_for_completion(); use those. */
  _complete(): void {
    this.done = true;
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  _wait(then: () => void): void {
    if (this.done) then();
    else this.waiters.push(then);
  }
}

export function init_completion(): Completion {
  return new Completion();
}

export function complete(c: Completion): void {
  c._complete();
}

/** Resume `then` once `c` completes: the simulated task sleeps until then. */
export function wait_for_completion(c: Completion, then: () => void): void {
  c._wait(then);
}

/** A completion that is already done. */
export function completed(): Completion {
  const c = new Completion();
  c.done = true;
  return c;
}

// Redraws spread over animation frames, one a frame: a series update then costs a frame one
// chart's redraw instead of six, so no frame grows long however often the lab reports. A newer
// redraw of the same owner replaces the waiting one and keeps its place in the queue.
const waiting = new Map<object, () => void>();
let scheduled = false;

function next(): void {
  scheduled = false;
  const first = waiting.entries().next();
  if (first.done) return;
  const [owner, draw] = first.value;
  waiting.delete(owner);
  draw();
  if (waiting.size) schedule();
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(next);
}

/** Run `draw` in a frame of its own, after the redraws queued before it. */
export function inFrame(owner: object, draw: () => void): void {
  waiting.set(owner, draw);
  schedule();
}

/** Forget the owner's waiting redraw (it is unmounted). */
export function cancelFrame(owner: object): void {
  waiting.delete(owner);
}

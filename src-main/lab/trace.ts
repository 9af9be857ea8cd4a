// The trace of a run: every kernel tracepoint, stamped with simulated time, kept in order
// and exported as ftrace-style text, JSON lines, or Chrome trace-event JSON (Perfetto).
// Nothing in it depends on the wall clock, so the same run gives the same bytes.
import type { Kernel } from '../kernel/kernel';
import type { TraceEvent } from '../kernel/trace/events';
import type { VirtualClock } from './clock';

export interface TraceRecord {
  /** Simulated time, ns. */
  t: number;
  event: TraceEvent;
}

export type TraceFormat = 'ftrace' | 'jsonl' | 'chrome';

/** Most records one trace keeps; past it the oldest are dropped and counted. */
export const TRACE_CAPACITY = 1_000_000;

export class TraceRecorder {
  dropped = 0;
  /** Records, oldest first from `head`: dropping the oldest moves `head`, compacted now and then. */
  private buf: TraceRecord[] = [];
  private head = 0;
  private readonly unsubscribe: () => void;

  constructor(
    k: Kernel,
    private readonly clock: VirtualClock,
    private readonly capacity = TRACE_CAPACITY,
  ) {
    this.unsubscribe = k.trace.subscribe((event) => this.record(event));
  }

  /** The records kept, oldest first. */
  get records(): TraceRecord[] {
    if (this.head) {
      this.buf = this.buf.slice(this.head);
      this.head = 0;
    }
    return this.buf;
  }

  get length(): number {
    return this.buf.length - this.head;
  }

  private record(event: TraceEvent): void {
    if (this.buf.length - this.head >= this.capacity) {
      this.head++;
      this.dropped++;
      // Shifting a long array per event is quadratic: drop the dropped ones in bulk instead.
      if (this.head >= Math.max(1024, this.capacity / 4)) {
        this.buf = this.buf.slice(this.head);
        this.head = 0;
      }
    }
    this.buf.push({ t: this.clock.now, event });
  }

  detach(): void {
    this.unsubscribe();
  }
}

/** Field values as ftrace prints them: addresses and pfns in hex. */
function fieldText(key: string, v: unknown): string {
  if (typeof v === 'number' && /^(addr|start|end|pfn|pte)$/.test(key)) return `${key}=0x${v.toString(16)}`;
  return `${key}=${typeof v === 'string' ? v : JSON.stringify(v)}`;
}

function ftraceLine(r: TraceRecord): string {
  const { name, ...fields } = r.event as { name: string } & Record<string, unknown>;
  const secs = (r.t / 1e9).toFixed(9);
  const body = Object.entries(fields)
    .map(([k, v]) => fieldText(k, v))
    .join(' ');
  return `${secs.padStart(16)}: ${name}: ${body}`;
}

/** Chrome trace events: an instant event per record on the thread of its mm (or the kernel). */
function chromeEvent(r: TraceRecord): object {
  const { name, ...args } = r.event as { name: string } & Record<string, unknown>;
  const mm = typeof args.mm === 'number' ? args.mm : 0;
  return { name, ph: 'i', s: 't', ts: r.t / 1000, pid: 1, tid: mm, args };
}

export function formatTrace(records: readonly TraceRecord[], format: TraceFormat): string {
  if (format === 'ftrace') return `# tracer: nop\n#\n${records.map(ftraceLine).join('\n')}\n`;
  if (format === 'jsonl') return records.map((r) => JSON.stringify({ t: r.t, ...r.event })).join('\n') + '\n';
  return JSON.stringify({ traceEvents: records.map(chromeEvent), displayTimeUnit: 'ns' });
}

/** The format a trace file name asks for: .json Chrome, .jsonl JSON lines, else ftrace text. */
export function traceFormatFor(file: string): TraceFormat {
  if (file.endsWith('.jsonl')) return 'jsonl';
  if (file.endsWith('.json')) return 'chrome';
  return 'ftrace';
}

// The kernel log (dmesg): a bounded ring of lines that tests and the lab read back.

export type LogLevel = 'emerg' | 'err' | 'warn' | 'info' | 'debug';

export interface LogRecord {
  seq: number;
  level: LogLevel;
  text: string;
}

const LOG_CAPACITY = 4096;

export class Printk {
  private readonly ring: LogRecord[] = [];
  private seq = 0;
  private readonly listeners = new Set<(r: LogRecord) => void>();

  printk(level: LogLevel, text: string): void {
    const record = { seq: ++this.seq, level, text };
    this.ring.push(record);
    if (this.ring.length > LOG_CAPACITY) this.ring.shift();
    for (const l of this.listeners) l(record);
  }

  lines(): readonly LogRecord[] {
    return this.ring;
  }

  /** Text of all lines, newest last: handy for `expect(dmesg).toContain(...)`. */
  text(): string {
    return this.ring.map((r) => r.text).join('\n');
  }

  subscribe(listener: (r: LogRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

// Tracepoints are enabled one by one: a sink hears what it subscribed to, in subscription
// order, and an event nobody wants is reported off so its hot path builds nothing.
import { describe, expect, it } from 'vitest';
import { Tracepoints, type TraceEvent } from '../../../src-main/kernel/trace/events';

const free: TraceEvent = { name: 'devmem_free', device: 'gpu0', pfn: 0x100 };
const stat: TraceEvent = { name: 'rss_stat', mm: 1, member: 1, size: 3 };

describe('Tracepoints', () => {
  it('is off for every event while nobody listens', () => {
    const t = new Tracepoints();
    expect(t.on('devmem_free')).toBe(false);
    expect(t.on('rss_stat')).toBe(false);
  });

  it('turns on only the events a named sink asked for, and off again after it leaves', () => {
    const t = new Tracepoints();
    const heard: string[] = [];
    const off = t.subscribe((e) => heard.push(e.name), ['rss_stat']);
    expect(t.on('rss_stat')).toBe(true);
    expect(t.on('devmem_free')).toBe(false);
    t.emit(free);
    t.emit(stat);
    expect(heard).toEqual(['rss_stat']);
    off();
    expect(t.on('rss_stat')).toBe(false);
    t.emit(stat);
    expect(heard).toEqual(['rss_stat']);
  });

  it('a sink without names hears every event', () => {
    const t = new Tracepoints();
    const heard: string[] = [];
    t.subscribe((e) => heard.push(e.name));
    expect(t.on('devmem_free')).toBe(true);
    t.emit(free);
    t.emit(stat);
    expect(heard).toEqual(['devmem_free', 'rss_stat']);
  });

  it('delivers in subscription order, whether a sink hears all or some events', () => {
    const t = new Tracepoints();
    const order: string[] = [];
    t.subscribe(() => order.push('clock'), ['devmem_free']);
    t.subscribe(() => order.push('recorder'));
    t.subscribe(() => order.push('counter'), ['devmem_free', 'rss_stat']);
    t.emit(free);
    expect(order).toEqual(['clock', 'recorder', 'counter']);
    order.length = 0;
    t.emit(stat);
    expect(order).toEqual(['recorder', 'counter']);
  });

  it('a sink subscribing twice hears twice, and each unsubscribe removes one', () => {
    const t = new Tracepoints();
    let n = 0;
    const sink = (): void => void n++;
    const a = t.subscribe(sink, ['rss_stat']);
    t.subscribe(sink, ['rss_stat']);
    t.emit(stat);
    expect(n).toBe(2);
    a();
    t.emit(stat);
    expect(n).toBe(3);
  });

  it('a held tracepoint follows sinks that come and go, before and after it was first asked for', () => {
    const t = new Tracepoints();
    const early = t.point('devmem_free');
    expect(early.enabled).toBe(false);
    const off = t.subscribe(() => {}, ['devmem_free']);
    const late = t.point('rss_stat');
    expect([early.enabled, late.enabled, t.point('devmem_free') === early]).toEqual([true, false, true]);
    const all = t.subscribe(() => {});
    expect([early.enabled, late.enabled]).toEqual([true, true]);
    off();
    all();
    expect([early.enabled, late.enabled]).toEqual([false, false]);
  });

  it('a sink that unsubscribes while hearing an event does not cut the others short', () => {
    const t = new Tracepoints();
    const heard: string[] = [];
    const off = t.subscribe(() => {
      heard.push('first');
      off();
    });
    t.subscribe(() => heard.push('second'));
    t.emit(free);
    t.emit(free);
    expect(heard).toEqual(['first', 'second', 'second']);
  });
});

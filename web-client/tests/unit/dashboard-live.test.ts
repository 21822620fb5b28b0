// The dashboard's live link without a server: reconnect delays, the
// coalescing of refetches, the stream's reconnects with a new ticket, and
// the filters' round trip through the URL.
import { describe, it, expect, vi, beforeEach, afterEach } from 'vitest';
import { backoff, Coalescer, LiveStream, TicketError, BACKOFF_MAX_MS, type LiveState } from '../../src/dashboard/live';
import { readFilters, filtersURL, apiParams } from '../../src/dashboard/filters';

describe('backoff', () => {
  const cases = [
    { attempt: 0, random: 0, want: 500 },
    { attempt: 0, random: 1, want: 1000 },
    { attempt: 1, random: 0, want: 1000 },
    { attempt: 3, random: 0.5, want: 6000 },
    { attempt: 10, random: 0, want: BACKOFF_MAX_MS / 2 },
    { attempt: 50, random: 1, want: BACKOFF_MAX_MS },
  ];
  for (const c of cases) {
    it(`attempt ${c.attempt}, random ${c.random}`, () => {
      expect(backoff(c.attempt, () => c.random), `got/want for attempt ${c.attempt}`).toBe(c.want);
    });
  }
  it('jitters: two dashboards do not retry in step', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) seen.add(backoff(4));
    expect(seen.size).toBeGreaterThan(1);
  });
});

describe('Coalescer', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('turns a burst of 200 requests a second into at most two fetches per half second', async () => {
    let runs = 0;
    const c = new Coalescer(async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 30));
    }, 100, 500, () => Date.now());
    // 200 hints in one second, one every 5 ms.
    for (let i = 0; i < 200; i++) {
      c.request();
      await vi.advanceTimersByTimeAsync(5);
    }
    await vi.advanceTimersByTimeAsync(2000);
    expect(runs, 'fetches for 200 requests in 1 s').toBeGreaterThanOrEqual(2);
    expect(runs, 'fetches for 200 requests in 1 s').toBeLessThanOrEqual(4);
    c.stop();
  });

  it('always runs once more after a request that came during a run', async () => {
    let runs = 0;
    const c = new Coalescer(async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 200));
    }, 10, 0);
    c.request();
    await vi.advanceTimersByTimeAsync(50); // running
    c.request();
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs).toBe(2);
    c.stop();
  });

  it('keeps working after a failed run, and stops', async () => {
    let runs = 0;
    const c = new Coalescer(async () => {
      runs++;
      throw new Error('boom');
    }, 10, 0);
    c.request();
    await vi.advanceTimersByTimeAsync(50);
    c.request();
    await vi.advanceTimersByTimeAsync(50);
    expect(runs).toBe(2);
    c.stop();
    c.request();
    await vi.advanceTimersByTimeAsync(50);
    expect(runs, 'runs after stop').toBe(2);
  });
});

/** An EventSource stand-in that the test drives: the stream's side of the wire. */
class FakeSource {
  static all: FakeSource[] = [];
  listeners = new Map<string, ((ev: any) => void)[]>();
  onerror: (() => void) | null = null;
  closed = false;
  constructor(public url: string) {
    FakeSource.all.push(this);
  }
  addEventListener(type: string, fn: (ev: any) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  emit(type: string, data: unknown) {
    for (const fn of this.listeners.get(type) ?? []) fn({ data: JSON.stringify(data) });
  }
  close() {
    this.closed = true;
  }
}

describe('LiveStream', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSource.all = [];
  });
  afterEach(() => vi.useRealTimers());

  function make(ticket: () => Promise<string>) {
    const states: LiveState[] = [];
    const hellos: [number, boolean][] = [];
    const changed: number[] = [];
    const refused: number[] = [];
    let n = 0;
    const s = new LiveStream({
      ticket,
      url: (t) => `/stream?ticket=${t}&n=${n++}`,
      onHello: (seq, re) => hellos.push([seq, re]),
      onChanged: (seq) => changed.push(seq),
      onReset: () => {},
      onRefused: (st) => refused.push(st),
      onState: (st) => states.push(st),
      random: () => 0,
      EventSource: FakeSource as any,
    });
    return { s, states, hellos, changed, refused };
  }

  it('opens with a ticket, reports hints, reconnects with a new ticket after a drop', async () => {
    let tickets = 0;
    const m = make(async () => `t${++tickets}`);
    m.s.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeSource.all.length).toBe(1);
    expect(FakeSource.all[0].url).toContain('ticket=t1');
    FakeSource.all[0].emit('hello', { seq: 10, heartbeat: 15 });
    FakeSource.all[0].emit('changed', { seq: 12, count: 2 });
    expect(m.hellos).toEqual([[10, false]]);
    expect(m.changed).toEqual([12]);
    expect(m.states.at(-1)).toBe('live');

    FakeSource.all[0].onerror!();
    expect(FakeSource.all[0].closed, 'the dropped source is closed').toBe(true);
    expect(m.states.at(-1)).toBe('down');
    await vi.advanceTimersByTimeAsync(499);
    expect(FakeSource.all.length, 'no reconnect before the backoff').toBe(1);
    await vi.advanceTimersByTimeAsync(2);
    expect(FakeSource.all.length).toBe(2);
    expect(FakeSource.all[1].url).toContain('ticket=t2');
    FakeSource.all[1].emit('hello', { seq: 20, heartbeat: 15 });
    expect(m.hellos.at(-1), 'a reconnect says so, so that the page catches up').toEqual([20, true]);
    m.s.stop();
  });

  it('treats silence longer than the heartbeats as a drop', async () => {
    const m = make(async () => 't');
    m.s.start();
    await vi.advanceTimersByTimeAsync(0);
    FakeSource.all[0].emit('hello', { seq: 1, heartbeat: 2 });
    await vi.advanceTimersByTimeAsync(4000);
    expect(FakeSource.all[0].closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1100);
    expect(FakeSource.all[0].closed, 'closed after 2.5 heartbeats of silence').toBe(true);
    expect(m.states.at(-1)).toBe('down');
    m.s.stop();
  });

  it('backs off longer after each failed ticket, and stops on a refusal', async () => {
    let calls = 0;
    const m = make(async () => {
      calls++;
      if (calls < 4) throw new Error('offline');
      throw new TicketError(403);
    });
    m.s.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(500); // attempt 0: 500 ms with random 0
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(999);
    expect(calls, 'attempt 1 waits 1 s').toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toBe(3);
    await vi.advanceTimersByTimeAsync(2000);
    expect(calls).toBe(4);
    expect(m.refused).toEqual([403]);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(calls, 'no retry after a refusal').toBe(4);
  });
});

describe('filters in the URL', () => {
  const cases = [
    { url: '', want: { team: '', site: '', worker: '', period: 'week', silent: 48 }, back: '/dashboard' },
    { url: 'team=abc&period=month', want: { team: 'abc', site: '', worker: '', period: 'month', silent: 48 }, back: '/dashboard?team=abc&period=month' },
    { url: 'period=year&silent=0&site=x%20y', want: { team: '', site: '', worker: '', period: 'week', silent: 48 }, back: '/dashboard' },
    { url: 'worker=w1&silent=24&period=today', want: { team: '', site: '', worker: 'w1', period: 'today', silent: 24 }, back: '/dashboard?worker=w1&period=today&silent=24' },
  ];
  for (const c of cases) {
    it(`reads "${c.url}"`, () => {
      const f = readFilters(c.url);
      expect(f).toEqual(c.want);
      expect(filtersURL(f)).toBe(c.back);
      expect(readFilters(filtersURL(f).split('?')[1] ?? '')).toEqual(f);
    });
  }
  it('gives the API its parameters, a drill-down parameter overriding a filter', () => {
    const q = apiParams(readFilters('worker=w1&period=today'), { block: 'overdue', worker: 'w2' });
    expect(q.toString()).toBe('worker=w2&period=today&silentHours=48&block=overdue');
  });
});

// The dashboard's live link: an EventSource on /api/dashboard/stream, opened
// with a one-use ticket (EventSource cannot send the Authorization header),
// and the refetch scheduler that turns a burst of hints into few fetches.
// Never a polling loop: the summary is refetched on a hint, on a reconnect
// and after the supervisor's own actions.

/** Reconnect delays: from 1 s, doubling, at most 60 s. */
export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_MAX_MS = 60_000;

/**
 * The wait before reconnect attempt n (0 is the first): exponential, with
 * "equal jitter" (half fixed, half random) so that many dashboards cut off
 * together do not come back in step.
 */
export function backoff(attempt: number, random: () => number = Math.random): number {
  const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));
  return Math.round(cap / 2 + (random() * cap) / 2);
}

/**
 * Coalesces requests for a refetch: the first runs after `wait` ms, and
 * while one runs, or within `gap` ms of the last start, further requests
 * collapse into a single trailing run. A burst of hints costs at most two
 * fetches, and two renders.
 */
export class Coalescer {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running = false;
  private again = false;
  private lastStart = -Infinity;
  private stopped = false;

  constructor(
    private run: () => Promise<void>,
    private wait = 100,
    private gap = 500,
    private now: () => number = Date.now,
  ) {}

  request(): void {
    if (this.stopped) return;
    if (this.running || this.timer) {
      this.again = true;
      return;
    }
    const delay = Math.max(this.wait, this.lastStart + this.gap - this.now());
    this.timer = setTimeout(() => void this.fire(), delay);
  }

  private async fire(): Promise<void> {
    this.timer = null;
    if (this.stopped) return;
    this.running = true;
    this.again = false;
    this.lastStart = this.now();
    try {
      await this.run();
    } catch {
      // The run reports its own errors; a failure must not stop later runs.
    } finally {
      this.running = false;
    }
    if (this.again) {
      this.again = false;
      this.request();
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

export type LiveState = 'connecting' | 'live' | 'down' | 'stopped';

export class TicketError extends Error {
  constructor(public status: number) {
    super(`ticket: ${status}`);
  }
}

export interface LiveOptions {
  /** A fresh stream ticket; throws TicketError for a 401/403 answer. */
  ticket(): Promise<string>;
  /** The stream URL for a ticket. */
  url(ticket: string): string;
  onHello(seq: number, reconnected: boolean): void;
  onChanged(seq: number): void;
  /** The account is no longer a supervisor of the same teams, or its tokens changed. */
  onReset(): void;
  /** The server refused the ticket request (401: sign in again; 403: not a supervisor). */
  onRefused(status: number): void;
  onState(state: LiveState): void;
  random?: () => number;
  EventSource?: typeof EventSource;
}

/**
 * One live stream with its reconnects. The browser's own EventSource retry
 * cannot work (a ticket opens one stream), so every error closes the source
 * and a new one is opened with a new ticket after backoff(). Silence longer
 * than 2.5 heartbeats counts as a drop too.
 */
export class LiveStream {
  private es: EventSource | null = null;
  private attempt = 0;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private watchdog: ReturnType<typeof setTimeout> | null = null;
  private heartbeatMs = 15_000;
  private everLive = false;
  private stopped = false;

  constructor(private o: LiveOptions) {}

  start(): void {
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.close();
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.o.onState('stopped');
  }

  private close(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
    this.es?.close();
    this.es = null;
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.o.onState(this.everLive ? 'down' : 'connecting');
    let ticket: string;
    try {
      ticket = await this.o.ticket();
    } catch (e) {
      if (this.stopped) return;
      if (e instanceof TicketError) {
        this.stopped = true;
        this.o.onRefused(e.status);
        this.o.onState('stopped');
        return;
      }
      this.fail();
      return;
    }
    if (this.stopped) return;
    const ES = this.o.EventSource ?? EventSource;
    const es = new ES(this.o.url(ticket));
    this.es = es;
    const alive = () => this.arm();
    es.addEventListener('hello', (ev) => {
      const d = parse((ev as MessageEvent).data);
      if (typeof d.heartbeat === 'number' && d.heartbeat > 0) this.heartbeatMs = d.heartbeat * 1000;
      const reconnected = this.everLive || this.attempt > 0;
      this.attempt = 0;
      this.everLive = true;
      alive();
      this.o.onState('live');
      this.o.onHello(Number(d.seq) || 0, reconnected);
    });
    es.addEventListener('changed', (ev) => {
      alive();
      this.o.onChanged(Number(parse((ev as MessageEvent).data).seq) || 0);
    });
    es.addEventListener('heartbeat', alive);
    es.addEventListener('reset', () => {
      this.close();
      this.o.onReset();
      this.fail();
    });
    es.onerror = () => {
      if (this.es !== es) return;
      this.fail();
    };
  }

  /** Restarts the silence timer. */
  private arm(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.fail(), this.heartbeatMs * 2.5);
  }

  private fail(): void {
    this.close();
    if (this.stopped || this.retry) return;
    this.o.onState(this.everLive ? 'down' : 'connecting');
    const wait = backoff(this.attempt++, this.o.random);
    this.retry = setTimeout(() => {
      this.retry = null;
      void this.connect();
    }, wait);
  }
}

function parse(s: unknown): any {
  try {
    return typeof s === 'string' ? JSON.parse(s) : {};
  } catch {
    return {};
  }
}

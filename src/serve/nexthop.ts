/**
 * A client connection to the next tier that reconnects by itself. While the tier is down,
 * requests fail at once with KERF_ERR_UPSTREAM (never hang), and 'down' lets the owner fail
 * what it still holds for that tier.
 */
import { EventEmitter } from 'node:events';
import { kerfError, type KerfError } from '../errors.js';
import { Connection, checkCodecRuns, type RequestOptions, type Response } from './conn.js';
import type { WireTensor } from './frames.js';
import { parseHopCodec, type HopCodec } from '../codec/index.js';

/** host and port of a tier. */
export interface HostPort { host: string; port: number }

/** "host:port" or a port number → HostPort (KERF_ERR_USAGE naming `what` when malformed). */
export function parseAddress(v: string | number | HostPort, what: string): HostPort {
  if (typeof v === 'object') return v;
  const s = String(v);
  const m = /^(?:(\[[^\]]+\]|[^:]+):)?(\d+)$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw kerfError('KERF_ERR_USAGE', `${what} '${s}': expected HOST:PORT, e.g. 127.0.0.1:9001`);
  return { host: (m[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
}

export const fmtAddress = (a: HostPort): string => `${a.host}:${a.port}`;

export interface NextHopOptions {
  token: string;
  /** free text the next tier sees in its peer info */
  info?: string;
  /** the hop's codec, `C` or `C/REPLY` (default 'none'; docs/codec.md) */
  codec?: string;
  /** TLS to the next tier: node:tls options (ca to verify it, cert/key for mTLS), or true */
  tls?: boolean | import('node:tls').ConnectionOptions;
  /** first and largest gap between reconnection attempts, ms (default 100 and 1000) */
  retryMs?: number;
  maxRetryMs?: number;
  /** ping the tier every intervalMs (default 250) and drop the connection as dead when a ping
   * goes unanswered for timeoutMs (default 3000) with no byte moving either way meanwhile (a
   * cut link sends no FIN; a link merely busy with large frames keeps moving bytes) */
  heartbeat?: { intervalMs?: number; timeoutMs?: number };
}

/**
 * Events: 'up' (Connection), 'down' (KerfError). Create with `NextHop.open`; `close()` is
 * idempotent and stops reconnecting.
 */
export class NextHop extends EventEmitter {
  private conn: Connection | null = null;
  private closedFlag = false;
  private timer: NodeJS.Timeout | null = null;
  private delay: number;
  private waiters: (() => void)[] = [];
  /** why the last attempt or connection failed */
  lastError: KerfError | null = null;
  readonly where: string;
  private readonly codecs: HopCodec | null;

  private constructor(readonly address: HostPort, private readonly opts: NextHopOptions) {
    super();
    this.codecs = opts.codec && opts.codec !== 'none' ? parseHopCodec(opts.codec, 'next hop codec') : null;
    // Found before anything starts: a codec whose package is missing is refused, never sent raw.
    checkCodecRuns(this.codecs?.request.name, `next hop ${fmtAddress(address)} codec`);
    checkCodecRuns(this.codecs?.reply.name, `next hop ${fmtAddress(address)} reply codec`);
    this.where = fmtAddress(address);
    this.delay = opts.retryMs ?? 100;
    this.on('error', () => { /* 'error' events are informational here */ });
  }

  /** Start connecting (in the background); resolves at once. */
  static open(address: HostPort, opts: NextHopOptions): NextHop {
    const h = new NextHop(address, opts);
    h.attempt();
    return h;
  }

  /** The hop's codec (`C` or `C/REPLY`; 'none': raw). */
  get codec(): string { return this.codecs?.name ?? 'none'; }
  get connected(): boolean { return this.conn !== null && !this.conn.closed; }
  get connection(): Connection | null { return this.connected ? this.conn : null; }
  get closed(): boolean { return this.closedFlag; }

  /** Resolve once connected, or reject after `timeoutMs`. */
  async waitConnected(timeoutMs: number): Promise<void> {
    if (this.connected) return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        reject(kerfError('KERF_ERR_TIMEOUT', `next tier ${this.where} not reachable within ${timeoutMs} ms${this.lastError ? ` (${this.lastError.message})` : ''}`));
      }, timeoutMs);
      const done = (): void => { clearTimeout(t); resolve(); };
      this.waiters.push(done);
    });
  }

  private attempt(): void {
    this.timer = null;
    if (this.closedFlag) return;
    Connection.connect({ host: this.address.host, port: this.address.port, token: this.opts.token, info: this.opts.info ?? '', timeoutMs: 2000, ...(this.codecs ? { codec: this.codecs.request.name, replyCodec: this.codecs.reply.name } : {}), ...(this.opts.tls ? { tls: this.opts.tls } : {}) }).then(
      (c) => {
        if (this.closedFlag) { void c.close(); return; }
        this.conn = c;
        this.delay = this.opts.retryMs ?? 100;
        this.lastError = null;
        const stopBeat = this.opts.heartbeat ? this.beat(c, this.opts.heartbeat) : null;
        c.once('close', (closed: KerfError) => {
          stopBeat?.();
          if (this.conn !== c) return; // retired after GOAWAY, already replaced
          const reason = this.silent.get(c) ?? closed;
          this.conn = null;
          this.sentBefore += c.stats.bytesSent;
          this.lastError = reason;
          this.emit('down', reason);
          this.schedule();
        });
        // A draining tier finishes what it has; new requests need a new connection.
        c.once('goaway', () => { if (this.conn === c) { this.conn = null; this.sentBefore += c.stats.bytesSent; this.schedule(0); setTimeout(() => void c.close(), 30_000).unref(); } });
        for (const w of this.waiters.splice(0)) w();
        this.emit('up', c);
      },
      (e: KerfError) => {
        this.lastError = e;
        // A wrong token will not fix itself, but the operator may restart the peer: keep trying.
        this.schedule();
      },
    );
  }

  /** connections dropped for silence, with why */
  private readonly silent = new WeakMap<Connection, KerfError>();

  /** Heartbeats on `c`; returns their stop. */
  private beat(c: Connection, hb: NonNullable<NextHopOptions['heartbeat']>): () => void {
    const every = hb.intervalMs ?? 250, limit = hb.timeoutMs ?? 3000;
    let sentAt: number | null = null;
    let progressAt = performance.now();
    let seen = c.stats.bytesReceived, queued = c.pendingWriteBytes;
    // Time this process itself was stalled (its event loop blocked or starved of CPU: the tick came
    // late) since the last sign of life. Such time is not the peer's silence: an answer that came
    // meanwhile waits unread in the socket until the loop runs again. Without this, a busy
    // controller took a healthy stage for a lost one (seen on a loaded 2-core machine).
    let lastTick = progressAt, stalled = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      stalled += Math.max(0, now - lastTick - every);
      lastTick = now;
      const rx = c.stats.bytesReceived, q = c.pendingWriteBytes;
      if (rx !== seen || q < queued) { progressAt = now; stalled = 0; }
      seen = rx; queued = q;
      if (sentAt !== null) {
        if (now - Math.max(sentAt, progressAt) - stalled > limit) {
          this.silent.set(c, kerfError('KERF_ERR_UPSTREAM', `next tier ${this.where} answered no heartbeat for ${Math.round(now - sentAt)} ms (link cut or host gone)`));
          clearInterval(timer);
          void c.close();
        }
        return;
      }
      sentAt = now; stalled = 0;
      c.ping().then(() => { sentAt = null; progressAt = performance.now(); stalled = 0; }, () => { /* the close handler reports it */ });
    }, every);
    timer.unref();
    return () => clearInterval(timer);
  }

  private schedule(ms?: number): void {
    if (this.closedFlag || this.timer) return;
    const d = ms ?? this.delay;
    this.delay = Math.min(this.opts.maxRetryMs ?? 1000, this.delay * 2);
    this.timer = setTimeout(() => this.attempt(), d);
    this.timer.unref();
  }

  private unreachable(): KerfError {
    return kerfError('KERF_ERR_UPSTREAM', `next tier ${this.where} is unreachable${this.lastError ? ` (${this.lastError.message})` : ''}`);
  }

  request(tensors: WireTensor[], opts: RequestOptions = {}): Promise<Response> {
    const c = this.connection;
    if (!c) return Promise.reject(this.unreachable());
    return c.request(tensors, opts).catch((e: KerfError) => {
      // The connection died under the request: report the tier, not the socket.
      if (e?.code === 'KERF_ERR_CLOSED' && !this.closedFlag && c.closed) throw kerfError('KERF_ERR_UPSTREAM', `next tier ${this.where} went away: ${e.message}`);
      throw e;
    });
  }

  control(op: string, body: string, opts: { timeoutMs?: number } = {}): Promise<Uint8Array> {
    const c = this.connection;
    if (!c) return Promise.reject(this.unreachable());
    return c.control(op, body, opts);
  }

  private sentBefore = 0;
  /** Bytes written to the next tier over every connection so far. */
  get bytesSent(): number { return this.sentBefore + (this.conn?.stats.bytesSent ?? 0); }

  close(): Promise<void> {
    this.closedFlag = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const c = this.conn;
    this.conn = null;
    return c ? c.close() : Promise.resolve();
  }
}

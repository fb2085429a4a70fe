/**
 * A user-space network link emulator: a TCP proxy that shapes both directions with a token
 * bucket (rate), a one-way delay and jitter that never reorders a connection's bytes.
 * Reconfigurable live (`update`, an HTTP control API, or a trace).
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { kerfError, type ErrorCode } from '../errors.js';
import { DelayLine, TokenBucket, quantumBytes } from './shaper.js';
import { parseHostPort, type HostPort } from './units.js';
import type { TraceStep } from './trace.js';
import { startControl } from './control.js';
import type * as http from 'node:http';

/** The settings of a link; each direction gets the full rate and the same one-way delay. */
export interface LinkConfig {
  /** bits per second, per direction; Infinity = unlimited */
  rateBps: number;
  /** one-way delay added to every byte, ms */
  delayMs: number;
  /** ± uniform variation of the delay, ms (bytes are never reordered) */
  jitterMs: number;
  /** largest burst the bucket lets through after an idle spell, bytes; undefined = about 1 ms of rate */
  burstBytes?: number;
}

/** Where a link listens and forwards, and its initial settings. */
export interface LinkOptions extends Partial<LinkConfig> {
  /** address to accept connections on ("host:port", port, or {host, port}; port 0 = any free port) */
  listen: string | number | HostPort;
  /** address every accepted connection is forwarded to */
  to: string | number | HostPort;
  /** serve the HTTP control API here (GET/PUT /config, GET /stats) */
  control?: string | number | HostPort;
  /** play these steps from creation on */
  trace?: TraceStep[];
  /** restart the trace after its last step (the last step lasts as long as the gap before it) */
  traceLoop?: boolean;
  /** random source for jitter (seed it for reproducible runs) */
  random?: () => number;
}

/** Counters of one direction. */
export interface DirectionStats {
  /** bytes read from the sending side */
  bytesIn: number;
  /** bytes written to the receiving side */
  bytesOut: number;
  /** bytes accepted and not yet delivered (waiting for rate or delay) */
  queuedBytes: number;
}

/** Counters of a link: `up` is listen → to (requests), `down` is to → listen (responses). */
export interface LinkStats {
  connectionsTotal: number;
  connectionsOpen: number;
  up: DirectionStats;
  down: DirectionStats;
}

/** Validate a partial config against the current one (the first bad field is named). */
export function validateConfig(patch: Partial<LinkConfig>, base: LinkConfig, code: ErrorCode = 'KERF_ERR_CONFIG'): LinkConfig {
  const out: LinkConfig = { ...base, ...patch };
  if (out.rateBps === null as unknown) out.rateBps = Infinity;
  if (out.burstBytes === null as unknown || out.burstBytes === undefined) delete out.burstBytes;
  const bad = (field: string, want: string, v: unknown): never => {
    throw kerfError(code, `link config: ${field} = ${JSON.stringify(v)} must be ${want}`);
  };
  if (typeof out.rateBps !== 'number' || !(out.rateBps > 0)) bad('rateBps', 'a positive number of bits/s (or null/Infinity for unlimited)', out.rateBps);
  if (typeof out.delayMs !== 'number' || !(out.delayMs >= 0) || !Number.isFinite(out.delayMs)) bad('delayMs', 'a finite number of ms ≥ 0', out.delayMs);
  if (typeof out.jitterMs !== 'number' || !(out.jitterMs >= 0) || !Number.isFinite(out.jitterMs)) bad('jitterMs', 'a finite number of ms ≥ 0', out.jitterMs);
  if (out.burstBytes !== undefined && (typeof out.burstBytes !== 'number' || !(out.burstBytes >= 1))) bad('burstBytes', 'a number of bytes ≥ 1', out.burstBytes);
  return Object.freeze(out);
}

/** Above this many bytes queued for the receiving socket, stop reading the sender. */
const DST_HIGH_WATER = 1 << 20;
/** Above this many bytes held in the delay line of one pipe (fast links with long delays), stop reading. */
const QUEUE_HIGH_WATER = 32 << 20;
/** A timer that fires this close to a piece's arrival delivers it (timers have ~1 ms granularity). */
const EARLY_MS = 0.5;

interface Direction { bucket: TokenBucket; stats: DirectionStats }

/** One direction of one proxied connection. */
class Pipe {
  private queue: { at: number; buf: Buffer }[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | null = null;
  private resumeTimer: NodeJS.Timeout | null = null;
  private ended = false;
  private paused = { bucket: false, dst: false, queue: false };
  private queued = 0;
  private readonly delay: DelayLine;

  constructor(private readonly link: Link, private readonly dir: Direction, private readonly src: net.Socket, private readonly dst: net.Socket, random: () => number) {
    this.delay = new DelayLine(random);
    src.on('data', (c: Buffer) => this.onData(c));
    src.on('end', () => { this.ended = true; this.flush(); });
    dst.on('drain', () => { if (this.paused.dst) { this.paused.dst = false; this.updateFlow(); } });
  }

  private onData(chunk: Buffer): void {
    const now = performance.now();
    const cfg = this.link.config;
    const q = quantumBytes(cfg.rateBps);
    this.dir.stats.bytesIn += chunk.length;
    for (let o = 0; o < chunk.length; o += q) {
      const piece = chunk.subarray(o, Math.min(o + q, chunk.length));
      const dep = this.dir.bucket.depart(now, piece.length);
      this.queue.push({ at: this.delay.arrive(dep, cfg.delayMs, cfg.jitterMs), buf: piece });
    }
    this.queued += chunk.length;
    this.dir.stats.queuedBytes += chunk.length;
    this.checkBucket(now);
    this.flush();
  }

  /** Bytes the emulated router queues before the sender is paused: ~50 ms of traffic. */
  private queueLimit(): number { return Math.max(64 * 1024, this.dir.bucket.rateBps / 8 * 0.05); }

  /** Pause the sender while the router queue is over its limit; resume at half. */
  private checkBucket(now: number): void {
    if (this.dir.bucket.backlog(now) > this.queueLimit()) {
      this.paused.bucket = true;
      this.armResume(now);
    }
    this.paused.queue = this.queued > QUEUE_HIGH_WATER;
    this.updateFlow();
  }

  private armResume(now: number): void {
    if (this.resumeTimer) return;
    const b = this.dir.bucket;
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = null;
      if (this.link.closed) return;
      const t = performance.now();
      // timers may fire a little early; wait again rather than resume over the mark
      if (b.backlog(t) > this.queueLimit() / 2 + 1) return this.armResume(t);
      this.paused.bucket = false;
      this.updateFlow();
    }, Math.max(1, Math.ceil(b.timeWhenBacklog(this.queueLimit() / 2) - now)));
  }

  private updateFlow(): void {
    const p = this.paused;
    if (p.bucket || p.dst || p.queue) this.src.pause();
    else if (!this.link.closed) this.src.resume();
  }

  private flush(): void {
    this.timer = null;
    if (this.dst.destroyed) return;
    const now = performance.now();
    let wrote = false;
    while (this.head < this.queue.length && this.queue[this.head]!.at <= now + EARLY_MS) {
      const { buf } = this.queue[this.head++]!;
      if (!wrote) { this.dst.cork(); wrote = true; }
      this.dst.write(buf);
      this.queued -= buf.length;
      this.dir.stats.queuedBytes -= buf.length;
      this.dir.stats.bytesOut += buf.length;
    }
    if (wrote) this.dst.uncork();
    if (this.head > 1024 && this.head * 2 > this.queue.length) { this.queue = this.queue.slice(this.head); this.head = 0; }
    if (this.head < this.queue.length) {
      this.timer = setTimeout(() => this.flush(), Math.max(1, Math.round(this.queue[this.head]!.at - now)));
    } else if (this.ended) {
      this.dst.end();
    }
    if (this.dst.writableLength > DST_HIGH_WATER) this.paused.dst = true;
    if (this.paused.queue && this.queued <= QUEUE_HIGH_WATER / 2) this.paused.queue = false;
    this.updateFlow();
  }

  /** Drop everything (connection torn down). */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    this.timer = this.resumeTimer = null;
    this.dir.stats.queuedBytes -= this.queued;
    this.queued = 0;
    this.queue = [];
    this.head = 0;
  }
}

/**
 * An emulated link between `listen` and `to`. Create with `Link.create()`, change with
 * `update()`, stop with `close()` (idempotent; `update()` after close fails with KERF_ERR_CLOSED).
 *
 * Events: `'config'` (LinkConfig) after every change, `'trace-step'` (TraceStep, index).
 */
export class Link extends EventEmitter {
  private cfg: LinkConfig;
  private readonly up: Direction;
  private readonly down: Direction;
  private readonly sockets = new Set<net.Socket>();
  private total = 0;
  private closing: Promise<void> | null = null;
  private traceTimers: NodeJS.Timeout[] = [];
  private control: http.Server | null = null;
  /** where clients connect */
  readonly address: HostPort;
  /** where the HTTP control API listens, if asked for */
  controlAddress: HostPort | null = null;

  private constructor(private readonly server: net.Server, address: HostPort, readonly target: HostPort, cfg: LinkConfig, private readonly random: () => number) {
    super();
    this.address = address;
    this.cfg = cfg;
    const burst = cfg.burstBytes ?? quantumBytes(cfg.rateBps);
    this.up = { bucket: new TokenBucket(cfg.rateBps, burst), stats: { bytesIn: 0, bytesOut: 0, queuedBytes: 0 } };
    this.down = { bucket: new TokenBucket(cfg.rateBps, burst), stats: { bytesIn: 0, bytesOut: 0, queuedBytes: 0 } };
  }

  /** Validate the options, listen, and resolve once connections are accepted. */
  static async create(opts: LinkOptions): Promise<Link> {
    const listen = parseHostPort(opts.listen, 'listen', 'KERF_ERR_CONFIG');
    const to = parseHostPort(opts.to, 'to', 'KERF_ERR_CONFIG');
    const cfg = validateConfig({
      rateBps: opts.rateBps ?? Infinity, delayMs: opts.delayMs ?? 0, jitterMs: opts.jitterMs ?? 0,
      ...(opts.burstBytes !== undefined ? { burstBytes: opts.burstBytes } : {}),
    }, { rateBps: Infinity, delayMs: 0, jitterMs: 0 });
    let link: Link | undefined;
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => link?.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(kerfError('KERF_ERR_USAGE', `link: cannot listen on ${listen.host}:${listen.port}: ${e.code ?? e.message}`)));
      server.listen(listen.port, listen.host, () => resolve());
    });
    const a = server.address() as net.AddressInfo;
    link = new Link(server, { host: a.address, port: a.port }, to, cfg, opts.random ?? Math.random);
    server.on('error', (e) => link?.emit('error', e));
    try {
      if (opts.control !== undefined) {
        const c = parseHostPort(opts.control, 'control', 'KERF_ERR_CONFIG');
        link.control = await startControl(link, c);
        const ca = link.control.address() as net.AddressInfo;
        link.controlAddress = { host: ca.address, port: ca.port };
      }
      if (opts.trace) link.playTrace(opts.trace, { loop: opts.traceLoop ?? false });
    } catch (e) {
      await link.close();
      throw e;
    }
    return link;
  }

  /** Current settings (frozen). */
  get config(): LinkConfig { return this.cfg; }
  /** True once close() was called. */
  get closed(): boolean { return this.closing !== null; }

  /** Change some settings now; bytes already scheduled keep their times. Returns the new config. */
  update(patch: Partial<LinkConfig>): LinkConfig {
    if (this.closing) throw kerfError('KERF_ERR_CLOSED', `link ${this.address.host}:${this.address.port} is closed`);
    this.cfg = validateConfig(patch, this.cfg);
    const burst = this.cfg.burstBytes ?? quantumBytes(this.cfg.rateBps);
    for (const d of [this.up, this.down]) { d.bucket.rateBps = this.cfg.rateBps; d.bucket.burstBytes = burst; }
    this.emit('config', this.cfg);
    return this.cfg;
  }

  /** Apply `steps` at their times from now on (replacing a trace already playing). */
  playTrace(steps: TraceStep[], opts: { loop?: boolean } = {}): void {
    this.stopTrace();
    if (steps.length === 0) return;
    const last = steps[steps.length - 1]!.atMs;
    const period = last + (steps.length > 1 ? last - steps[steps.length - 2]!.atMs : 1000);
    const start = performance.now();
    const schedule = (round: number): void => {
      steps.forEach((s, i) => {
        const at = start + round * period + s.atMs;
        this.traceTimers.push(setTimeout(() => {
          if (this.closing) return;
          this.update({ rateBps: s.rateBps, delayMs: s.delayMs, ...(s.jitterMs !== undefined ? { jitterMs: s.jitterMs } : {}) });
          this.emit('trace-step', s, i);
          if (i === steps.length - 1 && opts.loop) {
            this.traceTimers = [];
            schedule(round + 1);
          }
        }, Math.max(0, at - performance.now())));
      });
    };
    schedule(0);
  }

  /** Stop a playing trace; the current settings stay. */
  stopTrace(): void {
    for (const t of this.traceTimers) clearTimeout(t);
    this.traceTimers = [];
  }

  /** Counters since creation. */
  stats(): LinkStats {
    return {
      connectionsTotal: this.total,
      connectionsOpen: Math.ceil(this.sockets.size / 2),
      up: { ...this.up.stats },
      down: { ...this.down.stats },
    };
  }

  private accept(client: net.Socket): void {
    if (this.closing) { client.destroy(); return; }
    this.total++;
    const server = net.connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true });
    client.setNoDelay(true);
    server.setNoDelay(true);
    this.sockets.add(client); this.sockets.add(server);
    const pipes = [
      new Pipe(this, this.up, client, server, this.random),
      new Pipe(this, this.down, server, client, this.random),
    ];
    let done = 0;
    const onClose = (s: net.Socket): void => {
      this.sockets.delete(s);
      if (++done === 2) for (const p of pipes) p.dispose();
    };
    client.once('close', () => onClose(client));
    server.once('close', () => onClose(server));
    // An error on either side tears both down; the unreachable target resets the client.
    client.on('error', () => server.destroy());
    server.on('error', () => { if (!client.destroyed) client.resetAndDestroy(); });
    client.resume();
  }

  /** Stop listening, drop every connection and the control API. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) {
      this.stopTrace();
      const waits: Promise<void>[] = [new Promise((r) => this.server.close(() => r()))];
      if (this.control) {
        const c = this.control;
        waits.push(new Promise((r) => c.close(() => r())));
        c.closeAllConnections();
      }
      for (const s of this.sockets) s.destroy();
      this.closing = Promise.all(waits).then(() => undefined);
    }
    return this.closing;
  }
}

/**
 * Connections that speak the wire protocol over TCP or TLS: a client `Connection` (many
 * requests in flight, matched by id) and a `FrameServer` that hands requests to a handler.
 * Workers and the gateway build on these two.
 */
import { EventEmitter } from 'node:events';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { ErrorCodes, isKerfError, kerfError, type ErrorCode, type KerfError } from '../errors.js';
import {
  DEFAULT_MAX_FRAME_BYTES, HANDSHAKE_MAX_FRAME_BYTES, NONCE_BYTES, FrameDecoder, encodeFrame, parseFrame,
  type Frame, type Meta, type ParseOptions, type WireTensor,
} from './frames.js';
import { codecUnavailable, parseCodec } from '../codec/index.js';

/** Refuse a codec this process cannot run (its package failed to load): never raw instead. */
export function checkCodecRuns(name: string | undefined, what: string): void {
  if (!name || name === 'none') return;
  const why = codecUnavailable(parseCodec(name, what));
  if (why) throw kerfError('KERF_ERR_CODEC', `${what}: ${why}`);
}
import { publishAuthRefusal } from './diagnostics.js';

/** A reply to a request: output tensors and optional string metadata. */
export interface Reply {
  tensors: WireTensor[];
  meta?: Meta;
}

/** What a request resolves to (meta always present, possibly empty). */
export interface Response {
  tensors: WireTensor[];
  meta: Meta;
}

/** Byte and frame counters of one connection. */
export interface ConnectionStats {
  bytesSent: number;
  bytesReceived: number;
  framesSent: number;
  framesReceived: number;
}

/** The other end of a connection. */
export interface PeerInfo {
  /** "host:port" of the remote socket */
  address: string;
  /** free text the peer gave in its handshake (e.g. "gateway", "worker edge 5..12") */
  info: string;
  /** the codec its requests come with, when not 'none' */
  codec?: string;
  /** the codec it asked replies in, when not 'none' */
  replyCodec?: string;
}

/** A codec name's canonical spelling, or null when it is not one. */
function parseCodecOr(name: string): string | null {
  try { return parseCodec(name).name; } catch { return null; }
}

/** Whether a server's codec list ('*' or comma-separated canonical names) holds `codec`. */
function codecAccepted(list: string, codec: string): boolean {
  return list === '*' || list.split(',').includes(codec);
}

type State = 'handshake' | 'open' | 'closed';

/** Shared frame I/O: decoding, writing, counters, one-way close. */
abstract class FrameChannel extends EventEmitter {
  protected state: State = 'handshake';
  protected readonly decoder: FrameDecoder;
  protected closeReason: KerfError | undefined;
  private closedPromise: Promise<void>;
  readonly stats: ConnectionStats = { bytesSent: 0, bytesReceived: 0, framesSent: 0, framesReceived: 0 };
  /** "host:port" of the remote end */
  readonly remote: string;
  /** "host:port" of this end */
  readonly local: string;

  /** what parseFrame accepts on this channel (the codecs negotiated for incoming frames) */
  protected parseOpts: ParseOptions;

  protected constructor(protected readonly socket: net.Socket, protected readonly maxFrameBytes: number) {
    super();
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.local = `${socket.localAddress ?? '?'}:${socket.localPort ?? '?'}`;
    this.decoder = new FrameDecoder({ maxFrameBytes: Math.min(HANDSHAKE_MAX_FRAME_BYTES, maxFrameBytes) });
    this.parseOpts = { maxDecodedBytes: maxFrameBytes };
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    this.closedPromise = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.shutdown(kerfError('KERF_ERR_UPSTREAM', `${this.remote}: ${err.code ?? ''} ${err.message}`.trim()), false);
    });
    socket.on('close', () => this.shutdown(kerfError('KERF_ERR_UPSTREAM', `${this.remote}: connection closed by the peer`), false));
  }

  /** True once the connection is closed (by either side). */
  get closed(): boolean { return this.state === 'closed'; }
  /** Bytes written but not yet handed to the kernel (a heartbeat tells a busy link from a dead one by them). */
  get pendingWriteBytes(): number { return this.socket.writableLength; }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.stats.bytesReceived += chunk.length;
    let raws: Uint8Array[];
    try {
      raws = this.decoder.push(chunk);
    } catch (e) {
      this.fail(e as KerfError);
      return;
    }
    for (const raw of raws) {
      if (this.closed) return;
      this.stats.framesReceived++;
      let frame: Frame;
      try {
        frame = parseFrame(raw, this.parseOpts);
      } catch (e) {
        this.fail(e as KerfError);
        return;
      }
      try {
        this.onFrame(frame);
      } catch (e) {
        this.fail(isKerfError(e) ? e as KerfError : kerfError('KERF_ERR_PROTOCOL', String((e as Error).message)));
        return;
      }
    }
  }

  protected abstract onFrame(frame: Frame): void;
  /** Called once when the channel closes; reject what is pending. */
  protected abstract onClosed(reason: KerfError): void;

  /** Write a frame; false if the channel is closed. */
  protected send(frame: Frame): boolean {
    if (this.state === 'closed' || this.socket.destroyed) return false;
    const chunks = encodeFrame(frame);
    if (chunks.length === 1) {
      this.socket.write(chunks[0]!);
    } else {
      this.socket.cork();
      for (const c of chunks) this.socket.write(c);
      this.socket.uncork();
    }
    for (const c of chunks) this.stats.bytesSent += c.length;
    this.stats.framesSent++;
    return true;
  }

  /** Protocol violation or auth failure: tell the peer (best effort) and close. */
  protected fail(err: KerfError): void {
    if (this.state === 'closed') return;
    try {
      this.send({ type: 'ERROR', id: 0, code: err.code, message: err.message });
    } catch { /* the peer is broken anyway */ }
    this.shutdown(err, true);
  }

  /** Close once: mark closed, settle pending work, end the socket. */
  protected shutdown(reason: KerfError, flush: boolean): Promise<void> {
    if (this.state !== 'closed') {
      this.state = 'closed';
      this.closeReason = reason;
      this.socket.pause();
      if (flush && !this.socket.destroyed) {
        this.socket.end();
        // A peer that never reads must not keep the socket open.
        setTimeout(() => this.socket.destroy(), 1000).unref();
      } else {
        this.socket.destroy();
      }
      this.onClosed(reason);
      this.emit('close', reason);
    }
    return this.closedPromise;
  }
}

function mac(token: string, role: 'client' | 'server', serverNonce: Uint8Array, clientNonce: Uint8Array): Buffer {
  return createHmac('sha256', token).update(`kerf/1 ${role}`).update(serverNonce).update(clientNonce).digest();
}

function macEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** An error frame from the peer as a KerfError (unknown codes from newer peers become KERF_ERR_REMOTE). */
function remoteError(code: string, message: string, remote: string, requestId: number): KerfError {
  const known = code in ErrorCodes;
  return kerfError(known ? code as ErrorCode : 'KERF_ERR_REMOTE', message, { remote, requestId, ...(known ? {} : { remoteCode: code }) });
}

/** How to reach and authenticate to a server. */
export interface ConnectOptions {
  host?: string;
  port: number;
  /** shared secret of the pipeline; proven by HMAC, never sent */
  token: string;
  /** TLS: true for defaults, or node:tls options (ca, cert/key for mTLS, servername…) */
  tls?: boolean | tls.ConnectionOptions;
  /** largest frame accepted from the server (default 512 MiB) */
  maxFrameBytes?: number;
  /** connect + handshake deadline in ms (default 5000) */
  timeoutMs?: number;
  /** free text the server sees as PeerInfo.info */
  info?: string;
  /** codec of the requests this client sends (default 'none'; docs/codec.md). The server must
   * decode it, or the connection is refused with KERF_ERR_CODEC before any request. */
  codec?: string;
  /** codec the server's replies come in (default 'none') */
  replyCodec?: string;
}

/** Per-request options. */
export interface RequestOptions {
  meta?: Meta;
  /** reject with KERF_ERR_TIMEOUT (and tell the server to drop the request) after this many ms */
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Pending {
  kind: 'REQUEST' | 'CONTROL' | 'PING';
  resolve(v: Frame): void;
  reject(e: unknown): void;
  timer?: NodeJS.Timeout;
  cleanup?: () => void;
}

/**
 * A client connection to a FrameServer. Many requests may be in flight; replies are matched
 * by request id. `close()` is idempotent; calls after close fail with KERF_ERR_CLOSED.
 *
 * Events: `'close'` (reason: KerfError), `'goaway'` (the server is draining).
 */
export class Connection extends FrameChannel {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private goaway = false;
  private serverNonce: Uint8Array | null = null;
  private clientNonce = randomBytes(NONCE_BYTES);
  private handshake!: { resolve(): void; reject(e: KerfError): void };
  /** what the server said about itself in the handshake */
  remoteInfo = '';
  /** canonical name of the codec requests are sent with */
  readonly codec: string;
  /** canonical name of the codec replies come in */
  readonly replyCodec: string;

  private constructor(socket: net.Socket, private readonly opts: ConnectOptions) {
    super(socket, opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    this.codec = parseCodec(opts.codec ?? 'none', 'connection codec').name;
    this.replyCodec = parseCodec(opts.replyCodec ?? 'none', 'connection reply codec').name;
    if (this.replyCodec !== 'none') this.parseOpts = { ...this.parseOpts, codecs: new Set([this.replyCodec]) };
  }

  /** Connect, authenticate both ways, and resolve when requests may be sent. */
  static async connect(opts: ConnectOptions): Promise<Connection> {
    const host = opts.host ?? '127.0.0.1';
    const where = `${host}:${opts.port}`;
    const timeoutMs = opts.timeoutMs ?? 5000;
    checkCodecRuns(opts.codec, `connection to ${where} (codec)`);
    checkCodecRuns(opts.replyCodec, `connection to ${where} (reply codec)`);
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        if (err) { s.destroy(); reject(err); } else resolve(s);
      };
      const s: net.Socket = opts.tls
        ? tls.connect({ host, port: opts.port, ...(typeof opts.tls === 'object' ? opts.tls : {}) }, () => done())
        : net.connect({ host, port: opts.port }, () => done());
      s.once('error', (e: NodeJS.ErrnoException) =>
        done(kerfError('KERF_ERR_UPSTREAM', `cannot connect to ${where}: ${e.code ?? e.message}`)));
      const timer = setTimeout(() => done(kerfError('KERF_ERR_TIMEOUT', `connecting to ${where} took over ${timeoutMs} ms`)), timeoutMs);
    });
    const conn = new Connection(socket, opts);
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        conn.handshake = { resolve, reject };
        timer = setTimeout(() => reject(kerfError('KERF_ERR_TIMEOUT', `${where}: no handshake within ${timeoutMs} ms (not a kerf worker?)`)), timeoutMs);
      });
    } catch (e) {
      void conn.shutdown(e as KerfError, false);
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return conn;
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number { return this.pending.size; }
  /** True after the server sent GOAWAY: in-flight requests complete, new ones fail. */
  get draining(): boolean { return this.goaway; }

  protected onFrame(f: Frame): void {
    if (this.state === 'handshake') return this.onHandshakeFrame(f);
    switch (f.type) {
      case 'RESPONSE': case 'CONTROL_REPLY': case 'PONG': {
        const p = this.take(f.id);
        if (p) {
          const want = p.kind === 'REQUEST' ? 'RESPONSE' : p.kind === 'CONTROL' ? 'CONTROL_REPLY' : 'PONG';
          if (f.type !== want) throw kerfError('KERF_ERR_PROTOCOL', `${this.remote}: answered ${p.kind} ${f.id} with ${f.type}`);
          p.resolve(f);
        }
        return; // unknown ids are replies to requests that timed out or were aborted
      }
      case 'ERROR': {
        if (f.id === 0) {
          this.shutdown(remoteError(f.code, `${this.remote}: ${f.message}`, this.remote, 0), false);
          return;
        }
        this.take(f.id)?.reject(remoteError(f.code, f.message, this.remote, f.id));
        return;
      }
      case 'GOAWAY':
        this.goaway = true;
        this.emit('goaway');
        return;
      default:
        throw kerfError('KERF_ERR_PROTOCOL', `${this.remote}: a server may not send ${f.type}`);
    }
  }

  private onHandshakeFrame(f: Frame): void {
    if (f.type === 'ERROR') {
      const err = remoteError(f.code, `${this.remote} refused the connection: ${f.message}`, this.remote, f.id);
      if (f.code === 'KERF_ERR_AUTH') publishAuthRefusal({ side: 'client', peer: this.remote, message: `${this.opts.info || 'this client'}: ${err.message}` });
      this.handshake.reject(err);
      void this.shutdown(err, false);
      return;
    }
    if (f.type === 'CHALLENGE' && !this.serverNonce) {
      this.serverNonce = f.nonce.slice();
      this.remoteInfo = f.info;
      const lacking = [this.codec, this.replyCodec].find((c) => c !== 'none' && !codecAccepted(f.codecs ?? '', c));
      if (lacking) {
        const err = kerfError('KERF_ERR_CODEC', `${this.remote} does not ${lacking === this.codec ? 'decode' : 'encode'} codec '${lacking}' (it accepts: ${f.codecs || 'none'}); start it with that codec allowed or choose another`);
        this.handshake.reject(err);
        void this.shutdown(err, false);
        return;
      }
      this.send({
        type: 'AUTH', id: 0, nonce: this.clientNonce, info: this.opts.info ?? '',
        mac: mac(this.opts.token, 'client', this.serverNonce, this.clientNonce),
        ...(this.codec !== 'none' || this.replyCodec !== 'none' ? { codec: this.codec, replyCodec: this.replyCodec } : {}),
      });
      return;
    }
    if (f.type === 'WELCOME' && this.serverNonce) {
      if (!macEqual(f.mac, mac(this.opts.token, 'server', this.serverNonce, this.clientNonce))) {
        const err = kerfError('KERF_ERR_AUTH', `${this.remote}${f.info ? ` (${f.info})` : ''}: the server does not know the pipeline's token (its WELCOME does not match ours); start every tier with the same --token / KERF_TOKEN`);
        publishAuthRefusal({ side: 'client', peer: this.remote, message: `${this.opts.info || 'this client'} refused ${err.message}` });
        this.handshake.reject(err);
        void this.shutdown(err, false);
        return;
      }
      if (f.info) this.remoteInfo = f.info;
      this.state = 'open';
      this.decoder.maxFrameBytes = this.maxFrameBytes;
      this.handshake.resolve();
      return;
    }
    throw kerfError('KERF_ERR_PROTOCOL', `${this.remote}: unexpected ${f.type} frame during the handshake`);
  }

  protected onClosed(reason: KerfError): void {
    this.handshake?.reject(reason);
    const n = this.pending.size;
    const err = reason.code === 'KERF_ERR_UPSTREAM' && n > 0
      ? kerfError('KERF_ERR_UPSTREAM', `${reason.message} with ${n} request(s) in flight`, { remote: this.remote })
      : reason;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.cleanup?.();
      p.reject(err);
    }
  }

  private take(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    p.cleanup?.();
    return p;
  }

  private closedError(): KerfError {
    const why = this.closeReason && this.closeReason.code !== 'KERF_ERR_CLOSED' ? ` (${this.closeReason.message})` : '';
    return kerfError('KERF_ERR_CLOSED', `connection to ${this.remote} is closed${why}`);
  }

  private allocId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  private call(kind: Pending['kind'], build: (id: number) => Frame, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Frame> {
    if (this.state !== 'open') return Promise.reject(this.closedError());
    if (this.goaway && kind !== 'PING') {
      return Promise.reject(kerfError('KERF_ERR_CLOSED', `${this.remote} is draining (GOAWAY); open a new connection`));
    }
    if (opts.signal?.aborted) return Promise.reject(abortError(opts.signal, this.remote));
    const id = this.allocId();
    const frame = build(id); // may throw on a malformed tensor, before anything is registered
    return new Promise<Frame>((resolve, reject) => {
      const p: Pending = { kind, resolve, reject };
      const cancel = (err: KerfError): void => {
        if (this.pending.get(id) !== p) return;
        this.take(id);
        if (kind !== 'PING') this.send({ type: 'CANCEL', id });
        reject(err);
      };
      if (opts.timeoutMs !== undefined) {
        p.timer = setTimeout(() => cancel(kerfError('KERF_ERR_TIMEOUT', `${this.remote}: ${kind.toLowerCase()} ${id} got no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
      }
      const signal = opts.signal;
      const onAbort = (): void => cancel(abortError(signal!, this.remote));
      signal?.addEventListener('abort', onAbort, { once: true });
      p.cleanup = () => {
        if (p.timer) clearTimeout(p.timer);
        signal?.removeEventListener('abort', onAbort);
      };
      this.pending.set(id, p);
      this.send(frame);
    });
  }

  /** Send tensors; resolves with the server's reply tensors. */
  async request(tensors: WireTensor[], opts: RequestOptions = {}): Promise<Response> {
    const codec = this.codec;
    const f = await this.call('REQUEST', (id) => ({ type: 'REQUEST', id, tensors, meta: opts.meta ?? {}, ...(codec !== 'none' ? { codec } : {}) }), opts);
    const r = f as Extract<Frame, { type: 'RESPONSE' }>;
    return { tensors: r.tensors, meta: r.meta };
  }

  /** Send a control operation (op name + opaque body, e.g. JSON); resolves with the reply body. */
  async control(op: string, body: Uint8Array | string = new Uint8Array(0), opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const b = typeof body === 'string' ? new TextEncoder().encode(body) : body;
    const f = await this.call('CONTROL', (id) => ({ type: 'CONTROL', id, op, body: b }), opts);
    return (f as Extract<Frame, { type: 'CONTROL_REPLY' }>).body;
  }

  /** Round trip of an empty PING frame, in seconds. */
  async ping(opts: { timeoutMs?: number } = {}): Promise<number> {
    const t0 = process.hrtime.bigint();
    await this.call('PING', (id) => ({ type: 'PING', id, payload: new Uint8Array(0) }), opts);
    return Number(process.hrtime.bigint() - t0) / 1e9;
  }

  /** Close the connection; in-flight requests fail with KERF_ERR_CLOSED. Idempotent. */
  close(): Promise<void> {
    return this.shutdown(kerfError('KERF_ERR_CLOSED', `connection to ${this.remote} was closed by this side`), false);
  }
}

function abortError(signal: AbortSignal, remote: string): KerfError {
  const r = signal.reason as unknown;
  if (isKerfError(r)) return r as KerfError;
  return kerfError('KERF_ERR_CLOSED', `${remote}: request aborted${r instanceof Error ? `: ${r.message}` : ''}`);
}

/** A request as the server's handler sees it. */
export interface IncomingRequest {
  id: number;
  tensors: WireTensor[];
  meta: Meta;
  peer: PeerInfo;
  /** aborted when the client cancels the request or the connection closes */
  signal: AbortSignal;
}

/** Answers one request; throw a KerfError to send an error frame with its code. */
export type RequestHandler = (req: IncomingRequest) => Reply | Promise<Reply>;
/** Answers one control operation; the returned body (string → UTF-8) goes back to the client. */
export type ControlHandler = (op: string, body: Uint8Array, peer: PeerInfo) =>
  Uint8Array | string | void | Promise<Uint8Array | string | void>;

/** How a FrameServer listens and whom it accepts. */
export interface ServerOptions {
  host?: string;
  /** 0 or absent: any free port (see `address`) */
  port?: number;
  token: string;
  /** serve TLS with these options (key, cert; requestCert + ca for mTLS) */
  tls?: tls.TlsOptions;
  /** largest frame accepted from an authenticated client (default 512 MiB) */
  maxFrameBytes?: number;
  /** close connections that have not authenticated within this many ms (default 5000) */
  handshakeTimeoutMs?: number;
  /** free text clients see as Connection.remoteInfo */
  info?: string;
  /** codecs this server decodes in requests: '*' (default, every codec this kerf has) or a list
   * of codec names; a client asking for another is refused with KERF_ERR_CODEC */
  codecs?: '*' | readonly string[];
  onRequest: RequestHandler;
  onControl?: ControlHandler;
}

/** Server side of one accepted connection. */
class ServerPeer extends FrameChannel {
  private readonly nonce = randomBytes(NONCE_BYTES);
  private replyCodec = 'none';
  private readonly inflight = new Map<number, AbortController>();
  peer: PeerInfo;
  private timer: NodeJS.Timeout;

  constructor(socket: net.Socket, private readonly server: FrameServer, private readonly opts: ServerOptions) {
    super(socket, opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    this.peer = { address: this.remote, info: '' };
    const ms = opts.handshakeTimeoutMs ?? 5000;
    this.timer = setTimeout(() => this.fail(kerfError('KERF_ERR_TIMEOUT', `${this.remote}: no handshake within ${ms} ms`)), ms);
    this.timer.unref();
    this.send({ type: 'CHALLENGE', id: 0, nonce: this.nonce, info: opts.info ?? '', codecs: server.codecList });
  }

  get inFlight(): number { return this.inflight.size; }

  protected override fail(err: KerfError): void {
    if (!this.closed) this.server.emit('peer-error', err, this.peer);
    super.fail(err);
  }

  protected onFrame(f: Frame): void {
    if (this.state === 'handshake') {
      if (f.type !== 'AUTH') throw kerfError('KERF_ERR_PROTOCOL', `${this.remote}: expected AUTH, got ${f.type}`);
      if (!macEqual(f.mac, mac(this.opts.token, 'client', this.nonce, f.nonce))) {
        // Said to the client (in the ERROR frame) and here (diagnostics), naming both ends.
        const msg = `${this.opts.info || 'this tier'} (${this.local}) refused ${f.info || 'a client'} (${this.remote}): wrong pipeline token ` +
          '(its AUTH does not match this tier\'s token; start every tier with the same --token / KERF_TOKEN)';
        publishAuthRefusal({ side: 'server', peer: this.remote, message: msg });
        throw kerfError('KERF_ERR_AUTH', msg);
      }
      const codec = f.codec ? parseCodecOr(f.codec) : 'none';
      const reply = f.replyCodec ? parseCodecOr(f.replyCodec) : 'none';
      for (const [c, given, verb] of [[codec, f.codec, 'decode'], [reply, f.replyCodec, 'encode']] as const) {
        if (c === null || (c !== 'none' && !codecAccepted(this.server.codecList, c))) {
          throw kerfError('KERF_ERR_CODEC', `${this.remote} (${f.info || 'client'}) asks for codec '${given}', which this tier does not ${verb} (it accepts: ${this.server.codecList || 'none'})`);
        }
        const why = c !== 'none' ? codecUnavailable(parseCodec(c)) : null;
        if (why) throw kerfError('KERF_ERR_CODEC', `${this.remote} (${f.info || 'client'}) asks for codec '${given}', which ${this.opts.info || 'this tier'} (${this.local}) cannot ${verb}: ${why}`);
      }
      if (codec && codec !== 'none') this.parseOpts = { ...this.parseOpts, codecs: new Set([codec]) };
      this.replyCodec = reply!;
      clearTimeout(this.timer);
      this.peer = { address: this.remote, info: f.info, ...(codec && codec !== 'none' ? { codec } : {}), ...(reply !== 'none' ? { replyCodec: reply! } : {}) };
      this.state = 'open';
      this.decoder.maxFrameBytes = this.maxFrameBytes;
      this.send({ type: 'WELCOME', id: 0, mac: mac(this.opts.token, 'server', this.nonce, f.nonce), info: this.opts.info ?? '' });
      if (this.server.draining) this.send({ type: 'GOAWAY', id: 0 });
      return;
    }
    switch (f.type) {
      case 'REQUEST': return this.onRequest(f);
      case 'CONTROL': return this.onControl(f);
      case 'PING': this.send({ type: 'PONG', id: f.id, payload: f.payload }); return;
      case 'CANCEL': this.inflight.get(f.id)?.abort(kerfError('KERF_ERR_CLOSED', `request ${f.id} cancelled by ${this.remote}`)); return;
      default: throw kerfError('KERF_ERR_PROTOCOL', `${this.remote}: a client may not send ${f.type}`);
    }
  }

  private begin(id: number): AbortController {
    if (this.inflight.has(id)) throw kerfError('KERF_ERR_PROTOCOL', `${this.remote}: request id ${id} reused while in flight`);
    const ac = new AbortController();
    this.inflight.set(id, ac);
    return ac;
  }

  private finish(id: number, ac: AbortController, frame: () => Frame): void {
    if (this.inflight.get(id) === ac) this.inflight.delete(id);
    if (ac.signal.aborted) return;
    try {
      this.send(frame());
    } catch (e) {
      this.send(errorFrame(id, e));
    }
    this.server.settled();
  }

  private onRequest(f: Extract<Frame, { type: 'REQUEST' }>): void {
    const ac = this.begin(f.id);
    const req: IncomingRequest = { id: f.id, tensors: f.tensors, meta: f.meta, peer: this.peer, signal: ac.signal };
    let out: Reply | Promise<Reply>;
    try { out = this.opts.onRequest(req); } catch (e) { out = Promise.reject(e); }
    Promise.resolve(out).then(
      (r) => this.finish(f.id, ac, () => ({ type: 'RESPONSE', id: f.id, tensors: r.tensors, meta: r.meta ?? {}, ...(this.replyCodec !== 'none' ? { codec: this.replyCodec } : {}) })),
      (e) => this.finish(f.id, ac, () => errorFrame(f.id, e)),
    );
  }

  private onControl(f: Extract<Frame, { type: 'CONTROL' }>): void {
    const ac = this.begin(f.id);
    const handler = this.opts.onControl;
    let out: ReturnType<ControlHandler>;
    try {
      out = handler ? handler(f.op, f.body, this.peer) : Promise.reject(kerfError('KERF_ERR_USAGE', `unknown control operation '${f.op}'`));
    } catch (e) { out = Promise.reject(e); }
    Promise.resolve(out).then(
      (b) => this.finish(f.id, ac, () => ({ type: 'CONTROL_REPLY', id: f.id, body: typeof b === 'string' ? new TextEncoder().encode(b) : b ?? new Uint8Array(0) })),
      (e) => this.finish(f.id, ac, () => errorFrame(f.id, e)),
    );
  }

  goaway(): void { if (this.state === 'open') this.send({ type: 'GOAWAY', id: 0 }); }

  protected onClosed(reason: KerfError): void {
    clearTimeout(this.timer);
    for (const ac of this.inflight.values()) ac.abort(reason);
    this.inflight.clear();
    this.server.forget(this);
  }

  close(): Promise<void> {
    return this.shutdown(kerfError('KERF_ERR_CLOSED', `server closed the connection from ${this.remote}`), false);
  }
}

function errorFrame(id: number, e: unknown): Frame {
  if (isKerfError(e)) return { type: 'ERROR', id, code: e.code, message: e.message };
  return { type: 'ERROR', id, code: 'KERF_ERR_REMOTE', message: `internal error: ${(e as Error)?.message ?? String(e)}` };
}

/**
 * Accepts authenticated connections and hands their requests to `onRequest`; answers may
 * come back in any order. `close()` is idempotent; `drain()` lets in-flight work finish.
 *
 * Events: `'peer-error'` (err: KerfError, peer: PeerInfo) when a connection is refused or
 * broken (wrong token, garbage, handshake timeout); the server itself serves on.
 */
export class FrameServer extends EventEmitter {
  private readonly peers = new Set<ServerPeer>();
  private closing: Promise<void> | null = null;
  private drainWaiters: (() => void)[] = [];
  /** true after drain() began: new connections get GOAWAY at once */
  draining = false;
  /** codecs requests may come with, as told to clients: '*' or canonical names joined by ',' */
  readonly codecList: string;

  private constructor(private readonly server: net.Server, readonly address: { host: string; port: number }, codecList: string) {
    super();
    this.codecList = codecList;
  }

  /** Listen and resolve once the port is bound. */
  static async listen(opts: ServerOptions): Promise<FrameServer> {
    if (typeof opts.onRequest !== 'function') throw kerfError('KERF_ERR_USAGE', 'FrameServer.listen: onRequest handler is required');
    if (typeof opts.token !== 'string') throw kerfError('KERF_ERR_USAGE', 'FrameServer.listen: token must be a string');
    const host = opts.host ?? '127.0.0.1';
    const codecList = opts.codecs === undefined || opts.codecs === '*' ? '*'
      : opts.codecs.map((c) => parseCodec(c, 'FrameServer.listen: codecs entry').name).filter((c) => c !== 'none').join(',');
    if (opts.codecs !== undefined && opts.codecs !== '*') for (const c of opts.codecs) checkCodecRuns(c, 'codecs this tier decodes');
    let self: FrameServer | undefined;
    const accept = (socket: net.Socket): void => {
      if (!self || self.closing) { socket.destroy(); return; }
      const p = new ServerPeer(socket, self, opts);
      self.peers.add(p);
    };
    const server = opts.tls ? tls.createServer(opts.tls, accept) : net.createServer(accept);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(kerfError('KERF_ERR_USAGE', `cannot listen on ${host}:${opts.port ?? 0}: ${e.code ?? e.message}`)));
      server.listen(opts.port ?? 0, host, () => resolve());
    });
    server.on('error', (e) => self?.emit('error', e));
    if (opts.tls) {
      // Failed TLS handshakes never reach accept(); report them like other refused peers.
      server.on('tlsClientError', (e: Error, s: tls.TLSSocket) =>
        self?.emit('peer-error', kerfError('KERF_ERR_AUTH', `${s.remoteAddress}:${s.remotePort}: TLS handshake failed: ${e.message}`), { address: `${s.remoteAddress}:${s.remotePort}`, info: '' }));
    }
    const a = server.address() as net.AddressInfo;
    self = new FrameServer(server, { host: a.address, port: a.port }, codecList);
    return self;
  }

  /** Open connections (authenticated or still in the handshake). */
  get connections(): number { return this.peers.size; }
  /** Requests being handled across all connections. */
  get inFlight(): number { let n = 0; for (const p of this.peers) n += p.inFlight; return n; }
  /** Stop accepting new requests (clients get GOAWAY) and resolve when in-flight ones are answered. */
  async drain(): Promise<void> {
    this.draining = true;
    for (const p of this.peers) p.goaway();
    while (this.inFlight > 0 && !this.closing) await new Promise<void>((r) => this.drainWaiters.push(r));
  }

  /** @internal a request was answered */
  settled(): void {
    if (this.drainWaiters.length && this.inFlight === 0) for (const w of this.drainWaiters.splice(0)) w();
  }
  /** @internal a connection closed */
  forget(p: ServerPeer): void {
    this.peers.delete(p);
    this.settled();
  }

  /** Stop listening and close every connection (their in-flight handlers see `signal` aborted). Idempotent. */
  close(): Promise<void> {
    if (!this.closing) {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      const peers = [...this.peers].map((p) => p.close());
      for (const w of this.drainWaiters.splice(0)) w();
      this.closing = Promise.all([closed, ...peers]).then(() => undefined);
    }
    return this.closing;
  }
}

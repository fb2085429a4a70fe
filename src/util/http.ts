/**
 * Request bodies and early answers for every kerf HTTP server (gateway, control APIs, the
 * profiling agent, link control), in one place.
 *
 * - `readBody` reads a body up to a byte limit, and gives up with 408 when the body stops
 *   arriving mid-way (no byte for `idleMs`), so a stalled client cannot hold a request open.
 * - `sendJson` answers; when the request body has not been read to its end (401 before the
 *   upload, 413 over the limit, 400 on a declared length that cannot be, 408) the connection is
 *   closed after the answer, but gently: the server sends FIN and keeps discarding what the
 *   client still sends for a bounded time and byte count. Closing at once with unread bytes
 *   makes the kernel answer them with a reset, which often reaches the client before it has
 *   read the answer (it then sees ECONNRESET instead of the 413).
 */
import type * as http from 'node:http';
import type { Socket } from 'node:net';
import { kerfError, type ErrorCode, type KerfError } from '../errors.js';

/** Default wait for the next byte of a body, ms (env KERF_BODY_TIMEOUT_MS overrides it). */
export const DEFAULT_BODY_IDLE_MS = 10_000;
/** Bounds of the discard after an early answer. */
export const DRAIN_BYTES = 16 << 20;
export const DRAIN_MS = 3_000;

/** The body idle timeout in force: `ms` if given, else KERF_BODY_TIMEOUT_MS, else 10 s. */
export function bodyIdleMs(ms?: number): number {
  if (ms !== undefined) {
    if (!(Number.isFinite(ms) && ms > 0)) throw kerfError('KERF_ERR_USAGE', `body timeout ${ms} ms must be a positive number of milliseconds`);
    return ms;
  }
  const env = process.env.KERF_BODY_TIMEOUT_MS;
  if (env !== undefined && env !== '') {
    const v = Number(env);
    if (!(Number.isFinite(v) && v > 0)) throw kerfError('KERF_ERR_USAGE', `KERF_BODY_TIMEOUT_MS='${env}' must be a positive number of milliseconds`);
    return v;
  }
  return DEFAULT_BODY_IDLE_MS;
}

export interface ReadBodyOptions {
  /** largest body accepted, bytes */
  maxBytes: number;
  /** ms without a byte before giving up with 408 (default: `bodyIdleMs()`) */
  idleMs?: number;
  /** who reads, for messages ("gateway", "agent", "link control") */
  what: string;
  /** the code of a body over the limit (default KERF_ERR_USAGE) */
  tooLargeCode?: ErrorCode;
  /** the message of a body over the limit (default names the limit) */
  tooLarge?: (declared: number | null) => string;
}

/** The HTTP status a body error carries (`details.status`), or undefined for other errors. */
export function errorStatus(e: unknown): number | undefined {
  const s = (e as KerfError | undefined)?.details?.status;
  return typeof s === 'number' ? s : undefined;
}

const withStatus = (code: ErrorCode, status: number, message: string): KerfError => kerfError(code, message, { status });

/**
 * The whole body as one buffer (allocated once when Content-Length is given). Rejects with a
 * KerfError whose `details.status` is 413 (over `maxBytes`, declared or sent), 408 (no byte for
 * `idleMs`), or 400 (the client went away, or sent fewer bytes than it declared).
 */
export function readBody(req: http.IncomingMessage, opts: ReadBodyOptions): Promise<Buffer> {
  const idleMs = bodyIdleMs(opts.idleMs);
  const max = opts.maxBytes;
  const tooLarge = (declared: number | null): KerfError => withStatus(opts.tooLargeCode ?? 'KERF_ERR_USAGE', 413,
    opts.tooLarge?.(declared) ?? `${opts.what}: request body ${declared !== null ? `of ${declared} bytes ` : ''}is over the ${max}-byte limit`);
  return new Promise((resolve, reject) => {
    const header = req.headers['content-length'];
    // node's parser already refuses a Content-Length that is not a number
    const declared = header !== undefined ? Number(header) : null;
    if (declared !== null && declared > max) { reject(tooLarge(declared)); return; }
    const fixed = declared !== null && Number.isSafeInteger(declared) ? Buffer.allocUnsafeSlow(declared) : null;
    const chunks: Buffer[] = [];
    let n = 0;
    let done = false;
    let timer: NodeJS.Timeout | null = null;
    const finish = (e: KerfError | null, body?: Buffer): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      req.off('data', onData); req.off('end', onEnd); req.off('aborted', onAborted); req.off('error', onError);
      if (e) { req.pause(); reject(e); } else resolve(body!);
    };
    const arm = (): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => finish(withStatus('KERF_ERR_TIMEOUT', 408,
        `${opts.what}: the request body stopped arriving (${n}${fixed ? ` of ${fixed.length}` : ''} bytes, then nothing for ${idleMs} ms)`)), idleMs);
      timer.unref();
    };
    const onData = (c: Buffer): void => {
      if (n + c.length > (fixed ? fixed.length : max)) {
        finish(fixed ? withStatus('KERF_ERR_USAGE', 400, `${opts.what}: request body longer than its Content-Length`) : tooLarge(null));
        return;
      }
      if (fixed) c.copy(fixed, n); else chunks.push(c);
      n += c.length;
      arm();
    };
    const onEnd = (): void => {
      if (fixed && n !== fixed.length) { finish(withStatus('KERF_ERR_USAGE', 400, `${opts.what}: request body ended after ${n} of ${fixed.length} bytes`)); return; }
      finish(null, fixed ?? Buffer.concat(chunks, n));
    };
    const onAborted = (): void => finish(withStatus('KERF_ERR_CLOSED', 400, `${opts.what}: the client closed the connection after ${n} body bytes`));
    const onError = (e: Error): void => finish(withStatus('KERF_ERR_CLOSED', 400, `${opts.what}: reading the request body: ${e.message}`));
    req.on('data', onData); req.on('end', onEnd); req.on('aborted', onAborted); req.on('error', onError);
    arm();
  });
}

/**
 * Close the connection after the answer without resetting it: FIN once the answer is written,
 * then discard what the client still sends until it closes, `DRAIN_BYTES` arrived or `DRAIN_MS`
 * passed. Call before writing the answer to a request whose body was not read to its end.
 */
export function closeAfterAnswer(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (!res.headersSent) res.setHeader('connection', 'close');
  const sock = req.socket as Socket & { destroySoon?: () => void; kerfLinger?: boolean };
  if (sock.kerfLinger) return;
  sock.kerfLinger = true;
  let started = false;
  const linger = (): void => {
    if (started) return;
    started = true;
    let n = 0;
    const stop = (): void => { clearTimeout(t); sock.destroy(); };
    // not unref'd: a server's close() waits for this socket, and the wait is bounded
    const t = setTimeout(stop, DRAIN_MS);
    sock.on('data', (c: Buffer) => { n += c.length; if (n > DRAIN_BYTES) stop(); });
    sock.once('end', stop);
    sock.once('close', () => clearTimeout(t));
    sock.end();
    sock.resume();
  };
  // node's server ends a `connection: close` exchange with socket.destroySoon(), which destroys
  // the socket as soon as the answer is written: the unread upload then turns into a reset.
  sock.destroySoon = linger;
  // the body is discarded from here on (and the read side stays open for the drain)
  req.resume();
  res.once('close', () => { if (!res.writableFinished) sock.destroy(); });
}

/**
 * True while the request has body bytes not read to their end. (A request without a body is
 * answered before node marks it complete, so `req.complete` alone cannot tell.)
 */
export function bodyPending(req: http.IncomingMessage): boolean {
  if (req.complete) return false;
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

/** Write `body` as JSON with `status`; closes gently (see `closeAfterAnswer`) when the request body was not read to its end. */
export function sendJson(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: unknown, opts: { newline?: boolean } = {}): void {
  if (res.headersSent || res.destroyed) return;
  if (bodyPending(req)) closeAfterAnswer(req, res);
  const text = JSON.stringify(body) + (opts.newline ? '\n' : '');
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

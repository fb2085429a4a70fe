/**
 * Requests to a host's agent are signed, so the cluster token never crosses the network (as
 * the tier protocol's challenge/HMAC handshake in serve/conn.ts): the header
 * `authorization: Kerf-HMAC ts=<ms>,nonce=<hex>,mac=<hex>` carries
 * HMAC-SHA256(token, method \n path?query \n ts \n nonce \n sha256(body)). The agent refuses a
 * stale timestamp (±60 s) and a nonce it has seen, so a captured request cannot be replayed.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { kerfError } from '../errors.js';

export const AUTH_SCHEME = 'Kerf-HMAC';
/** how far a request's timestamp may be from the agent's clock */
export const AUTH_WINDOW_MS = 60_000;

export const bodySha = (body: Uint8Array | string = ''): string => createHash('sha256').update(body).digest('hex');

function mac(token: string, method: string, path: string, ts: string, nonce: string, sha: string): Buffer {
  return createHmac('sha256', token).update(`${method.toUpperCase()}\n${path}\n${ts}\n${nonce}\n${sha}`).digest();
}

/** The authorization header of a request. `sha`: the body's SHA-256 (hex). */
export function signRequest(token: string, method: string, path: string, sha: string, now = Date.now()): string {
  const ts = String(now);
  const nonce = randomBytes(12).toString('hex');
  return `${AUTH_SCHEME} ts=${ts},nonce=${nonce},mac=${mac(token, method, path, ts, nonce, sha).toString('hex')}`;
}

/** Checks signatures and remembers nonces for the window. */
export class RequestVerifier {
  readonly #token: string;
  readonly #seen = new Map<string, number>();

  constructor(token: string) { this.#token = token; }

  /** Throws KERF_ERR_AUTH saying what is wrong (never what the token is). */
  verify(header: string | undefined, method: string, path: string, sha: string, now = Date.now()): void {
    const m = new RegExp(`^${AUTH_SCHEME} ts=(\\d{1,16}),nonce=([0-9a-f]{16,64}),mac=([0-9a-f]{64})$`).exec(header ?? '');
    if (!m) throw kerfError('KERF_ERR_AUTH', `missing or malformed authorization (expected ${AUTH_SCHEME}, signed with the cluster token)`);
    const [, ts, nonce, given] = m as unknown as [string, string, string, string];
    if (Math.abs(now - Number(ts)) > AUTH_WINDOW_MS) throw kerfError('KERF_ERR_AUTH', `request timestamp is ${Math.round((now - Number(ts)) / 1000)} s off this host's clock (more than ${AUTH_WINDOW_MS / 1000} s: sync the clocks)`);
    const want = mac(this.#token, method, path, ts, nonce, sha);
    if (!timingSafeEqual(want, Buffer.from(given, 'hex'))) throw kerfError('KERF_ERR_AUTH', 'wrong token (the request is not signed with this agent\'s token)');
    for (const [n, t] of this.#seen) if (now - t > 2 * AUTH_WINDOW_MS) this.#seen.delete(n); else break;
    if (this.#seen.has(nonce)) throw kerfError('KERF_ERR_AUTH', 'replayed request (nonce already used)');
    this.#seen.set(nonce, now);
  }
}

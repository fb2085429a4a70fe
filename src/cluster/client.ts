/** Signed HTTP requests to a host's agent (see auth.ts), answered as JSON or a KerfError. */
import * as http from 'node:http';
import * as https from 'node:https';
import { ErrorCodes, kerfError, type ErrorCode } from '../errors.js';
import { bodySha, signRequest } from './auth.js';

/** Header with the body's SHA-256 (or `stream` for measurement uploads); the signature covers it. */
export const CONTENT_SHA = 'x-kerf-content-sha256';

export interface AgentRequestOptions {
  body?: Uint8Array | string | NodeJS.ReadableStream;
  /** SHA-256 of a streamed body (default: computed from `body`, or 'stream') */
  sha?: string;
  timeoutMs?: number;
  agent?: http.Agent;
  /** what to call the agent in errors (default its address) */
  label?: string;
  /** trust these CA certificates for an https:// agent */
  ca?: string | Buffer;
  /** client certificate and key, for an agent that requires one (kerf agent --tls-ca) */
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface AgentAnswer<T> { status: number; json: T }

/** `base`: http(s)://host:port. Resolves on 2xx with the JSON body; rejects with the agent's error code otherwise. */
export function agentRequest<T = unknown>(base: string, token: string, method: string, path: string, o: AgentRequestOptions = {}): Promise<AgentAnswer<T>> {
  const url = new URL(path, base);
  const label = o.label ?? `agent ${url.host}`;
  const body = o.body;
  const streamed = body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array);
  const sha = o.sha ?? (streamed ? 'stream' : bodySha(body ?? ''));
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    let done = false;
    const fail = (e: Error): void => { if (!done) { done = true; reject(e); } };
    const req = mod.request(url, {
      method, ...(o.agent ? { agent: o.agent } : {}), ...(o.ca ? { ca: o.ca } : {}), ...(o.cert && o.key ? { cert: o.cert, key: o.key } : {}),
      headers: {
        authorization: signRequest(token, method, url.pathname + url.search, sha), [CONTENT_SHA]: sha,
        ...(body !== undefined && !streamed ? { 'content-length': Buffer.byteLength(body as string | Uint8Array), 'content-type': typeof body === 'string' ? 'application/json' : 'application/octet-stream' } : {}),
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => fail(kerfError('KERF_ERR_REMOTE', `${label}: ${e.message}`)));
      res.on('end', () => {
        if (done) return;
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try { json = text ? JSON.parse(text) : {}; } catch { return fail(kerfError('KERF_ERR_REMOTE', `${label}: answered ${res.statusCode} with a body that is not JSON`)); }
        done = true;
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve({ status, json: json as T });
        const err = (json as { error?: { code?: string; message?: string } }).error;
        const code = err?.code && err.code in ErrorCodes ? err.code as ErrorCode : 'KERF_ERR_REMOTE';
        reject(kerfError(code, `${label}: ${err?.message ?? `answered ${status}`}`, { status }));
      });
    });
    const timedOut = (): void => { req.destroy(); fail(kerfError('KERF_ERR_REMOTE', `${label}: no answer within ${o.timeoutMs ?? 30_000} ms`)); };
    req.setTimeout(o.timeoutMs ?? 30_000, timedOut);
    // setTimeout only counts once connected: a host whose link is cut leaves the connect hanging
    // for a minute or more (SYN retries), so waiting for a socket and connecting count too.
    const connecting = setTimeout(timedOut, o.timeoutMs ?? 30_000);
    req.once('socket', (s) => { if (!s.connecting) clearTimeout(connecting); else s.once('connect', () => clearTimeout(connecting)); });
    req.once('close', () => clearTimeout(connecting));
    req.on('error', (e: NodeJS.ErrnoException) => fail(kerfError('KERF_ERR_REMOTE', /CERT|SELF_SIGNED|TLS|SSL|ALTNAME/i.test(`${e.code ?? ''} ${e.message}`)
      ? `${label}: TLS refused (${e.code ?? ''}${e.code ? ': ' : ''}${e.message}); check the CA (hosts file tls.ca or --tls-ca) and the names in its certificate`
      : `${label}: cannot reach it (${e.code ?? e.message}${url.protocol === 'http:' && /ECONNRESET|hang up/i.test(`${e.code ?? ''} ${e.message}`) ? '; if the agent serves HTTPS, give the hosts file tls or --tls-ca' : ''})`)));
    if (streamed) (body as NodeJS.ReadableStream).pipe(req);
    else req.end(body);
  });
}

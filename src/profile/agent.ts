/**
 * The profiling agent: a small HTTP service on a remote box (a Raspberry Pi, an edge server).
 * `POST /v1/profile?system=…&granularity=…` with the ONNX model as the body and
 * `Authorization: Bearer TOKEN` profiles the model there and answers the profile as JSON.
 * One job runs at a time (others wait in a queue: two jobs at once would corrupt each other's
 * timings). Errors answer `{ "error": { "code": "KERF_ERR_…", "message": "…" } }`.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { ErrorCodes, isKerfError, kerfError, type ErrorCode } from '../errors.js';
import { parseModel } from '../graph/model.js';
import { errorStatus, readBody, sendJson } from '../util/http.js';
import { profileModel, type ProfileOptions } from './profile.js';
import { checkProfile } from './schema.js';
import type { Profile } from './types.js';

/** Options of `Agent.start`. */
export interface AgentOptions {
  /** interface to listen on (default 127.0.0.1) */
  host?: string;
  /** port (default 7700; 0 picks a free one) */
  port?: number;
  /** the token clients must present; required (generate one with `newToken()`) */
  token: string;
  /** largest model accepted, bytes (default 512 MB) */
  maxModelBytes?: number;
  /** most jobs waiting behind the running one (default 8); more are refused with 503 */
  maxQueue?: number;
  /** ms without a byte of an upload before it is answered 408 (default 10 s; env KERF_BODY_TIMEOUT_MS) */
  bodyTimeoutMs?: number;
  /** system name when the client gives none (default: the host name) */
  system?: string;
  tier?: 'device' | 'edge' | 'cloud';
  /** one line per job and per error */
  log?: (line: string) => void;
  /** serves `/v1/host/…` (a host's daemon: src/cluster/host.ts), authenticating requests itself */
  daemon?: { handle(req: IncomingMessage, res: ServerResponse): Promise<void> };
  /** serve HTTPS with these options (cert, key; ca + requestCert for client certificates) */
  tls?: import('node:tls').TlsOptions;
}

/** Query options a client may send (all optional; the agent's defaults apply). */
export type RemoteProfileOptions = Omit<ProfileOptions, 'onProgress' | 'systemExtra' | 'system' | 'cpus' | 'cpuRoot'> & { system?: string };

const STATUS: Partial<Record<ErrorCode, number>> = {
  KERF_ERR_USAGE: 400, KERF_ERR_ONNX_PARSE: 400, KERF_ERR_GRAPH: 400, KERF_ERR_SHAPE: 400, KERF_ERR_CUT: 400,
  KERF_ERR_AUTH: 401, KERF_ERR_OVERLOADED: 503, KERF_ERR_ENGINE: 422,
};

export function newToken(): string { return randomBytes(18).toString('base64url'); }

/** A running agent. Created only by `Agent.start`; `close()` is idempotent. */
export class Agent {
  readonly host: string;
  readonly port: number;
  readonly #server: Server;
  readonly #opts: Required<Omit<AgentOptions, 'tier' | 'log' | 'host' | 'port' | 'daemon' | 'bodyTimeoutMs' | 'tls'>> & Pick<AgentOptions, 'tier' | 'log' | 'bodyTimeoutMs'>;
  readonly #daemon: AgentOptions['daemon'];
  readonly #tokenDigest: Buffer;
  #tail: Promise<void> = Promise.resolve();
  #waiting = 0;
  #busy = false;
  #jobs = 0;
  #closed: Promise<void> | null = null;

  private constructor(server: Server, host: string, port: number, opts: AgentOptions) {
    this.#server = server;
    this.host = host;
    this.port = port;
    this.#opts = {
      token: opts.token, maxModelBytes: opts.maxModelBytes ?? 512e6, maxQueue: opts.maxQueue ?? 8,
      system: opts.system ?? hostname(), ...(opts.bodyTimeoutMs !== undefined ? { bodyTimeoutMs: opts.bodyTimeoutMs } : {}), ...(opts.tier ? { tier: opts.tier } : {}), ...(opts.log ? { log: opts.log } : {}),
    };
    this.#tokenDigest = digest(opts.token);
    this.#daemon = opts.daemon;
    this.#secure = opts.tls !== undefined;
  }
  readonly #secure: boolean;

  static async start(opts: AgentOptions): Promise<Agent> {
    if (!opts.token) throw kerfError('KERF_ERR_USAGE', 'agent: a token is required');
    if (opts.maxModelBytes !== undefined && !(opts.maxModelBytes > 0)) throw kerfError('KERF_ERR_USAGE', `agent: max model size ${opts.maxModelBytes} must be positive`);
    const host = opts.host ?? '127.0.0.1';
    let agent: Agent | undefined;
    const handler = (req: IncomingMessage, res: ServerResponse): void => { void agent!.#handle(req, res); };
    const server: Server = opts.tls ? createHttpsServer(opts.tls, handler) : createServer(handler);
    // Profiling takes as long as it takes: no request or header timeouts on a queued job.
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(kerfError('KERF_ERR_USAGE', `agent: cannot listen on ${host}:${opts.port ?? 7700} (${e.code ?? e.message})`)));
      server.listen(opts.port ?? 7700, host, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    agent = new Agent(server, host, port, opts);
    return agent;
  }

  get url(): string { return `${this.#secure ? 'https' : 'http'}://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`; }

  async close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
    });
    return this.#closed;
  }

  #log(line: string): void { this.#opts.log?.(line); }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://agent');
      if (this.#daemon && url.pathname.startsWith('/v1/host/')) return await this.#daemon.handle(req, res);
      if (url.pathname !== '/v1/profile' && url.pathname !== '/v1/health') return this.#fail(req, res, 404, 'KERF_ERR_USAGE', `no route ${req.method} ${url.pathname} (POST /v1/profile, GET /v1/health)`);
      if (!this.#authorised(req)) return this.#fail(req, res, 401, 'KERF_ERR_AUTH', 'wrong or missing token (Authorization: Bearer TOKEN)');
      if (url.pathname === '/v1/health') {
        if (req.method !== 'GET') return this.#fail(req, res, 405, 'KERF_ERR_USAGE', `${req.method} /v1/health: use GET`);
        return sendJson(req, res, 200, { ok: true, system: this.#opts.system, busy: this.#busy, queued: this.#waiting, jobs: this.#jobs, maxModelBytes: this.#opts.maxModelBytes });
      }
      if (req.method !== 'POST') return this.#fail(req, res, 405, 'KERF_ERR_USAGE', `${req.method} /v1/profile: use POST`);
      const opts = parseQuery(url.searchParams, this.#opts.system, this.#opts.tier);
      const body = await readBody(req, {
        maxBytes: this.#opts.maxModelBytes, what: 'agent', tooLargeCode: 'KERF_ERR_REMOTE',
        tooLarge: (declared) => tooBig(declared ?? NaN, this.#opts.maxModelBytes), ...(this.#opts.bodyTimeoutMs !== undefined ? { idleMs: this.#opts.bodyTimeoutMs } : {}),
      });
      if (body.length === 0) return this.#fail(req, res, 400, 'KERF_ERR_ONNX_PARSE', 'the request body is empty: send the .onnx file');
      const label = opts.name ?? 'model';
      const model = parseModel(body, { name: label, source: label });
      if (this.#waiting >= this.#opts.maxQueue) return this.#fail(req, res, 503, 'KERF_ERR_OVERLOADED', `${this.#waiting} jobs are waiting; try again later`);
      const profile = await this.#enqueue(async () => {
        if (res.destroyed) return null;
        const t0 = performance.now();
        const p = await profileModel(model, { ...opts, system: opts.system ?? this.#opts.system });
        p.model.sha256 = createHash('sha256').update(body).digest('hex');
        this.#log(`job ${++this.#jobs}: ${label} (${(body.length / 1e6).toFixed(1)} MB), ${p.blocks.length} blocks, ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
        return p;
      });
      if (profile) sendJson(req, res, 200, profile);
    } catch (e) {
      if (isKerfError(e)) return this.#fail(req, res, errorStatus(e) ?? STATUS[e.code] ?? 422, e.code, e.message);
      this.#log(`internal error: ${(e as Error)?.stack ?? String(e)}`);
      return this.#fail(req, res, 500, 'KERF_ERR_REMOTE', `internal error: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  #authorised(req: IncomingMessage): boolean {
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
    return m !== null && timingSafeEqual(digest(m[1]!.trim()), this.#tokenDigest);
  }

  #enqueue<T>(job: () => Promise<T>): Promise<T> {
    this.#waiting++;
    const run = this.#tail.then(async () => {
      this.#waiting--;
      this.#busy = true;
      try { return await job(); } finally { this.#busy = false; }
    });
    this.#tail = run.then(() => undefined, () => undefined);
    return run;
  }

  #fail(req: IncomingMessage, res: ServerResponse, status: number, code: ErrorCode, message: string): void {
    if (status !== 404 && status !== 500) this.#log(`${status} ${req.method} ${req.url}: ${message}`);
    // an answer before the whole upload closes the connection gently (util/http.ts)
    sendJson(req, res, status, { error: { code, message } });
  }
}

function digest(s: string): Buffer { return createHash('sha256').update(s).digest(); }

function tooBig(bytes: number, max: number): string {
  return `model ${Number.isFinite(bytes) ? `of ${(bytes / 1e6).toFixed(1)} MB ` : ''}is larger than this agent accepts (${(max / 1e6).toFixed(1)} MB; kerf agent --max-model-mb)`;
}

const INT_FIELDS = ['repeats', 'warmup', 'threads', 'seed'] as const;

function parseQuery(q: URLSearchParams, system: string, tier: AgentOptions['tier']): RemoteProfileOptions & { system: string } {
  const known = new Set(['name', 'system', 'tier', 'granularity', 'method', 'optimization', 'order', 'nodes', 'inputShape', ...INT_FIELDS]);
  for (const k of q.keys()) if (!known.has(k)) throw kerfError('KERF_ERR_USAGE', `unknown option '${k}' (known: ${[...known].join(', ')})`);
  const o: RemoteProfileOptions & { system: string } = { system: q.get('system') || system };
  const t = q.get('tier') ?? tier;
  if (t) {
    if (t !== 'device' && t !== 'edge' && t !== 'cloud') throw kerfError('KERF_ERR_USAGE', `tier '${t}': expected device, edge or cloud`);
    o.tier = t;
  }
  const name = q.get('name');
  if (name) o.name = name;
  for (const k of INT_FIELDS) {
    const v = q.get(k);
    if (v === null) continue;
    if (!/^\d+$/.test(v)) throw kerfError('KERF_ERR_USAGE', `${k} '${v}': expected a whole number`);
    o[k] = Number(v);
  }
  const g = q.get('granularity');
  if (g) { if (g !== 'single' && g !== 'all') throw kerfError('KERF_ERR_USAGE', `granularity '${g}': expected single or all`); o.granularity = g; }
  const m = q.get('method');
  if (m) { if (m !== 'sessions' && m !== 'trace') throw kerfError('KERF_ERR_USAGE', `method '${m}': expected sessions or trace`); o.method = m; }
  const opt = q.get('optimization');
  if (opt) { if (!['disabled', 'basic', 'extended', 'all'].includes(opt)) throw kerfError('KERF_ERR_USAGE', `optimization '${opt}': expected disabled, basic, extended or all`); o.optimization = opt as 'disabled'; }
  const order = q.get('order');
  if (order) { if (!['auto', 'file', 'depth', 'greedy'].includes(order)) throw kerfError('KERF_ERR_USAGE', `order '${order}': expected auto, file, depth or greedy`); o.order = order as 'auto'; }
  if (q.get('nodes') === '1' || q.get('nodes') === 'true') o.nodes = true;
  const shapes = q.getAll('inputShape');
  if (shapes.length) {
    o.inputShapes = {};
    for (const s of shapes) {
      const mm = /^([^=]+)=(\d+(?:x\d+)*)$/.exec(s);
      if (!mm) throw kerfError('KERF_ERR_USAGE', `inputShape '${s}': expected NAME=DxDxD`);
      o.inputShapes[mm[1]!] = mm[2]!.split('x').map(Number);
    }
  }
  return o;
}

/** Send a model to an agent and return the profile it measured. */
export async function profileRemote(agentUrl: string, token: string, model: Uint8Array, opts: RemoteProfileOptions = {}): Promise<Profile> {
  let base: URL;
  try { base = new URL(agentUrl); } catch { throw kerfError('KERF_ERR_USAGE', `--remote '${agentUrl}': not a URL (e.g. http://pi4.local:7700)`); }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw kerfError('KERF_ERR_USAGE', `--remote '${agentUrl}': expected http:// or https://`);
  const url = new URL('/v1/profile', base);
  const q = url.searchParams;
  if (opts.system) q.set('system', opts.system);
  if (opts.tier) q.set('tier', opts.tier);
  if (opts.name) q.set('name', opts.name);
  for (const k of INT_FIELDS) if (opts[k] !== undefined) q.set(k, String(opts[k]));
  if (opts.granularity) q.set('granularity', opts.granularity);
  if (opts.method) q.set('method', opts.method);
  if (opts.optimization) q.set('optimization', opts.optimization);
  if (opts.order) q.set('order', opts.order);
  if (opts.nodes) q.set('nodes', '1');
  for (const [n, d] of Object.entries(opts.inputShapes ?? {})) q.append('inputShape', `${n}=${d.join('x')}`);
  const { status, body } = await post(url, token, model);
  let json: unknown;
  try { json = JSON.parse(body); } catch {
    throw kerfError('KERF_ERR_REMOTE', `${base.origin}: answered ${status} with a body that is not JSON`);
  }
  if (status !== 200) {
    const err = (json as { error?: { code?: string; message?: string } }).error;
    const code = err?.code && err.code in ErrorCodes ? err.code as ErrorCode : 'KERF_ERR_REMOTE';
    throw kerfError(code, `agent ${base.origin}: ${status} ${err?.message ?? 'failed'}`, { status });
  }
  return checkProfile(json, `profile from ${base.origin}`) as Profile;
}

function post(url: URL, token: string, body: Uint8Array): Promise<{ status: number; body: string }> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': body.byteLength },
    }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (e) => reject(kerfError('KERF_ERR_REMOTE', `agent ${url.origin}: ${e.message}`)));
      res.on('aborted', () => reject(kerfError('KERF_ERR_REMOTE', `agent ${url.origin}: the answer (${res.statusCode}) was cut off`)));
    });
    // The agent may answer (401, 413) before taking the whole upload and close: once an answer
    // came, the upload's write error (EPIPE, ECONNRESET) is not the outcome; the answer is.
    let answered = false;
    req.on('error', (e: NodeJS.ErrnoException) => { if (!answered) reject(kerfError('KERF_ERR_REMOTE', `agent ${url.origin}: ${e.code ?? e.message}`)); });
    req.end(body);
  });
}

/** HTTP client of a gateway's control API (`/v1/partition`): what `kerf repartition`, `kerf up --switch` and the benchmark call. */
import * as http from 'node:http';
import { kerfError, isKerfError, type ErrorCode } from '../errors.js';
import type { PlanDocument } from '../plan/types.js';
import type { PartitionStatus, SwitchReport, SwitchStrategy } from './switch.js';

function call<T>(url: string, method: string, body?: unknown, timeoutMs = 600_000, headers: Record<string, string> = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try { u = new URL(url); } catch { reject(kerfError('KERF_ERR_USAGE', `gateway URL '${url}' is not a URL (e.g. http://127.0.0.1:8000)`)); return; }
    const text = body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body);
    const type = Buffer.isBuffer(body) ? 'application/octet-stream' : 'application/json';
    const req = http.request(u, { method, headers: { ...headers, ...(text ? { 'content-type': type, 'content-length': Buffer.byteLength(text) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let doc: unknown;
        try { doc = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch {
          reject(kerfError('KERF_ERR_UPSTREAM', `${u.origin}${u.pathname}: answered ${res.statusCode} without JSON (not a kerf gateway?)`));
          return;
        }
        if (res.statusCode === 200) { resolve(doc as T); return; }
        const e = doc as { error?: string; code?: string };
        const code = isKerfError(e) ? e.code as ErrorCode : 'KERF_ERR_REMOTE';
        reject(kerfError(code, `${u.origin}: ${e.error ?? `HTTP ${res.statusCode}`}`));
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(kerfError('KERF_ERR_TIMEOUT', `${u.origin}: no answer within ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => reject(isKerfError(e) ? e : kerfError('KERF_ERR_UPSTREAM', `cannot reach the gateway at ${u.origin}: ${e.code ?? e.message}`)));
    req.end(text);
  });
}

const base = (url: string): string => url.replace(/\/$/, '');
/** The bearer header the gateway's changing endpoints need (none when no token is given). */
const bearer = (token: string | undefined): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

/** `POST /v1/partition`: switch the gateway at `url` to new cuts or a plan; resolves when done. `token`: the gateway's control token. */
export function repartition(url: string, target: { cuts: number[] } | { plan: PlanDocument }, token?: string): Promise<SwitchReport> {
  return call<SwitchReport>(`${base(url)}/v1/partition`, 'POST', target, 600_000, bearer(token));
}

/** `GET /v1/partition`: the active split, the standby, the history of switches. */
export function partitionStatus(url: string): Promise<PartitionStatus> {
  return call<PartitionStatus>(`${base(url)}/v1/partition`, 'GET');
}

/** `PUT /v1/partition/strategy`: choose how the gateway switches (standby: which cuts to keep loaded). */
export function setSwitchStrategy(url: string, strategy: SwitchStrategy, opts: { standby?: number[] } = {}, token?: string): Promise<PartitionStatus> {
  return call<PartitionStatus>(`${base(url)}/v1/partition/strategy`, 'PUT', { strategy, ...(opts.standby ? { standby: opts.standby } : {}) }, 600_000, bearer(token));
}

/** `POST /v1/rollout/model`: send a model file to the gateway's machine; resolves with the path it has there. */
export async function uploadModel(url: string, file: string, token?: string): Promise<{ file: string; sha256: string; bytes: number }> {
  const { readFile } = await import('node:fs/promises');
  let bytes: Buffer;
  try { bytes = await readFile(file); } catch (e) { throw kerfError('KERF_ERR_FILE', `${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
  return call(`${base(url)}/v1/rollout/model`, 'POST', bytes, 600_000, bearer(token));
}

/** `POST /v1/rollout`: roll the gateway at `url` onto another version of the model (or `back`); resolves when the old one is unloaded. */
export function rollout(url: string, target: { model: string; cuts?: number[]; stageByStage?: boolean; beside?: boolean } | { back: true; stageByStage?: boolean; beside?: boolean }, token?: string): Promise<SwitchReport> {
  return call<SwitchReport>(`${base(url)}/v1/rollout`, 'POST', target, 600_000, bearer(token));
}

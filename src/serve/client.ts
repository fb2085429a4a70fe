/**
 * A small Open Inference Protocol v2 client: binary tensor data both ways over a keep-alive
 * HTTP connection. Used by `kerf demo` and the benchmarks; any KServe v2 client works as well.
 */
import * as http from 'node:http';
import { kerfError, type ErrorCode } from '../errors.js';
import type { DType } from '../graph/dtypes.js';
import type { HostTensor, TypedArray } from '../engine/ort.js';
import { encodeInferRequest, HEADER_LENGTH, OIP_DATATYPE } from './oip.js';

const FROM_OIP: Record<string, DType> = Object.fromEntries(Object.entries(OIP_DATATYPE).map(([k, v]) => [v, k as DType]));
const CTOR: Partial<Record<DType, new (b: ArrayBuffer, o: number, n: number) => TypedArray>> = {
  float32: Float32Array, float64: Float64Array, int64: BigInt64Array, int32: Int32Array, int16: Int16Array, int8: Int8Array,
  uint64: BigUint64Array, uint32: Uint32Array, uint16: Uint16Array, uint8: Uint8Array, bool: Uint8Array, float16: Uint16Array,
};

export interface InferOutcome {
  status: number;
  /** seconds from sending the request to the last byte of the answer */
  seconds: number;
  outputs: Record<string, HostTensor>;
  error?: { code: ErrorCode | string; message: string };
}

export class OipClient {
  readonly base: string;
  readonly model: string;
  readonly #agent: http.Agent;
  #closed = false;

  constructor(base: string, model: string, opts: { maxSockets?: number } = {}) {
    this.base = base.replace(/\/$/, '');
    this.model = model;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 64 });
  }

  /** POST /v2/models/{model}/infer with binary inputs, asking for binary outputs. */
  async infer(inputs: Record<string, HostTensor>, id?: string): Promise<InferOutcome> {
    if (this.#closed) throw kerfError('KERF_ERR_CLOSED', 'OIP client is closed');
    const tensors = Object.entries(inputs).map(([name, t]) => {
      if (Array.isArray(t.data)) throw kerfError('KERF_ERR_SHAPE', `input '${name}': string tensors are not supported by the binary OIP client`);
      return { name, dtype: t.dtype, dims: t.dims, data: t.data };
    });
    const req = encodeInferRequest(tensors, { ...(id !== undefined ? { id } : {}), binaryOutput: true });
    const t0 = process.hrtime.bigint();
    const res = await this.#request('POST', `/v2/models/${encodeURIComponent(this.model)}/infer`, [req.head, ...req.data], {
      'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(req.head.length),
    });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (res.status !== 200) {
      let error = { code: 'HTTP_' + res.status, message: res.body.toString('utf8').slice(0, 300) };
      try { const j = JSON.parse(res.body.toString('utf8')) as { error?: string; code?: string }; error = { code: j.code ?? error.code, message: j.error ?? error.message }; } catch { /* not JSON */ }
      return { status: res.status, seconds, outputs: {}, error };
    }
    const hl = Number(res.headers['inference-header-content-length'] ?? res.body.length);
    const doc = JSON.parse(res.body.subarray(0, hl).toString('utf8')) as { outputs: { name: string; datatype: string; shape: number[]; data?: number[]; parameters?: { binary_data_size?: number } }[] };
    const outputs: Record<string, HostTensor> = {};
    let off = hl;
    for (const o of doc.outputs) {
      const dtype = FROM_OIP[o.datatype] ?? (o.datatype as DType);
      const size = o.parameters?.binary_data_size;
      const ctor = CTOR[dtype];
      if (size !== undefined && ctor) {
        const copy = res.body.subarray(off, off + size);
        off += size;
        const buf = copy.buffer.slice(copy.byteOffset, copy.byteOffset + copy.byteLength) as ArrayBuffer;
        outputs[o.name] = { dtype, dims: o.shape, data: new ctor(buf, 0, size / (ctor as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT) };
      } else if (o.data && ctor) {
        const n = o.data.length;
        const a = new ctor(new ArrayBuffer(n * (ctor as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT), 0, n);
        for (let i = 0; i < n; i++) (a as unknown as (number | bigint)[])[i] = dtype === 'int64' || dtype === 'uint64' ? BigInt(o.data[i]!) : o.data[i]!;
        outputs[o.name] = { dtype, dims: o.shape, data: a };
      }
    }
    return { status: 200, seconds, outputs };
  }

  /** GET a path; resolves with the status (and JSON body when there is one). */
  async get(path: string): Promise<{ status: number; json: unknown }> {
    const r = await this.#request('GET', path, [], {});
    let json: unknown = null;
    try { json = JSON.parse(r.body.toString('utf8')); } catch { /* not JSON */ }
    return { status: r.status, json };
  }

  async ready(): Promise<boolean> {
    try { return (await this.get('/v2/health/ready')).status === 200; } catch { return false; }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#agent.destroy();
  }

  #request(method: string, path: string, chunks: Uint8Array[], headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
    const length = chunks.reduce((s, c) => s + c.length, 0);
    return new Promise((resolve, reject) => {
      // A gateway may answer (400, 413) before reading the whole body: once an answer came, the
      // body's write error (EPIPE, ECONNRESET) is not the outcome; the answer is.
      let answered = false;
      const req = http.request(`${this.base}${path}`, { method, agent: this.#agent, headers: { ...headers, ...(method === 'POST' ? { 'content-length': String(length) } : {}) } }, (res) => {
        answered = true;
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
        res.on('error', reject);
        res.on('aborted', () => reject(kerfError('KERF_ERR_UPSTREAM', `${this.base}${path}: the answer (${res.statusCode}) was cut off`)));
      });
      req.on('error', (e) => { if (!answered) reject(kerfError('KERF_ERR_UPSTREAM', `${this.base}${path}: ${(e as Error).message}`)); });
      for (const c of chunks) req.write(c);
      req.end();
    });
  }
}

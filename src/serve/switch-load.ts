/**
 * A constant-rate load on a gateway (open loop: requests start on schedule whether or not
 * earlier ones finished), checking every answer against the expected output bytes. The
 * switching benchmark and tests drive switches under it and read what clients saw.
 */
import * as http from 'node:http';
import { encodeInferRequest } from './oip.js';
import type { WireDType } from './frames.js';

/** One input and the output bytes every answer to it must carry. */
export interface LoadCase {
  inputs: { name: string; dtype: WireDType; dims: number[]; data: ArrayBufferView }[];
  /** output name → expected bytes */
  expect: Record<string, Uint8Array>;
}

/** One request as the client saw it. Times are ms on this process's performance clock. */
export interface LoadRecord {
  i: number;
  start: number;
  end: number;
  status: number;
  /** the pipeline (version) that answered, from the response parameters */
  pipeline: string | null;
  /** the answer matched the expected output bytes */
  correct: boolean;
  /** error code for non-200 answers or transport errors */
  code?: string;
  /** the error's message for non-200 answers (which limit refused, say) */
  message?: string;
  /** the id came back as sent */
  idOk: boolean;
}

export interface LoadOptions {
  url: string;
  model: string;
  cases: LoadCase[];
  /** requests per second */
  rate: number;
  /** give up on one request after this long (default 60 s): it counts as lost */
  timeoutMs?: number;
}

/** A running load. `stop()` stops starting requests and resolves once every one has ended. */
export interface LoadHandle {
  readonly records: LoadRecord[];
  /** requests started */
  readonly sent: number;
  stop(): Promise<LoadRecord[]>;
}

/** Start sending `rate` requests per second, cycling through `cases`. */
export function startLoad(opts: LoadOptions): LoadHandle {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
  const records: LoadRecord[] = [];
  const pending = new Set<Promise<void>>();
  const url = new URL(`${opts.url.replace(/\/$/, '')}/v2/models/${opts.model}/infer`);
  const period = 1000 / opts.rate;
  const t0 = performance.now();
  let sent = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;

  const one = (i: number): Promise<void> => new Promise<void>((resolve) => {
    const c = opts.cases[i % opts.cases.length]!;
    const id = `r${i}`;
    const enc = encodeInferRequest(c.inputs, { id, binaryOutput: true });
    const body = Buffer.concat([enc.head, ...enc.data]), headerLength = enc.head.length;
    const start = performance.now();
    const rec: LoadRecord = { i, start, end: NaN, status: 0, pipeline: null, correct: false, idOk: false };
    const finish = (): void => { rec.end = performance.now(); records.push(rec); resolve(); };
    const req = http.request(url, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/octet-stream', 'content-length': body.length, 'inference-header-content-length': headerLength },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('error', () => { rec.code = 'transport'; finish(); });
      res.on('end', () => {
        const all = Buffer.concat(chunks);
        rec.status = res.statusCode ?? 0;
        try {
          if (rec.status === 200) {
            const hl = Number(res.headers['inference-header-content-length']);
            const doc = JSON.parse(all.subarray(0, hl).toString('utf8')) as { id?: string; parameters?: { pipeline?: string }; outputs: { name: string; parameters: { binary_data_size: number } }[] };
            rec.idOk = doc.id === id;
            rec.pipeline = doc.parameters?.pipeline ?? null;
            let o = hl, ok = true;
            for (const out of doc.outputs) {
              const got = all.subarray(o, o + out.parameters.binary_data_size);
              o += out.parameters.binary_data_size;
              const want = c.expect[out.name];
              if (!want || !Buffer.from(want.buffer, want.byteOffset, want.byteLength).equals(got)) ok = false;
            }
            rec.correct = ok && doc.outputs.length === Object.keys(c.expect).length;
          } else {
            const e = JSON.parse(all.toString('utf8')) as { code?: string; error?: string; message?: string };
            rec.code = e.code ?? `HTTP ${rec.status}`;
            const m = e.message ?? e.error;
            if (typeof m === 'string') rec.message = m;
          }
        } catch { rec.code = rec.code ?? 'bad response'; }
        finish();
      });
    });
    req.setTimeout(opts.timeoutMs ?? 60_000, () => { rec.code = 'timeout'; req.destroy(); });
    req.on('error', (e: NodeJS.ErrnoException) => { if (rec.code !== 'timeout') rec.code = `transport ${e.code ?? e.message}`; if (Number.isNaN(rec.end)) finish(); });
    req.end(body);
  });

  // Schedule on absolute times so timer jitter does not lower the rate.
  const tick = (): void => {
    timer = null;
    if (stopped) return;
    const due = Math.floor((performance.now() - t0) / period) + 1;
    while (sent < due) {
      const p = one(sent++);
      pending.add(p);
      void p.then(() => pending.delete(p));
    }
    timer = setTimeout(tick, Math.max(0, t0 + sent * period - performance.now()));
  };
  tick();

  return {
    records,
    get sent() { return sent; },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      while (pending.size) await Promise.all([...pending]);
      agent.destroy();
      return records;
    },
  };
}

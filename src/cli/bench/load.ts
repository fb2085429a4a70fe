/**
 * The closed-loop load of the failover and rollout benchmarks: N clients, each sending its
 * next request when the last is answered, every answer checked against reference outputs
 * (one set per model version) and its id against the request's, each id answered once.
 */
import * as http from 'node:http';
import { encodeInferRequest } from '../../serve/oip.js';
import { blockCuts } from '../../graph/cuts.js';
import { parseIntList } from '../args.js';
import { Session, normalisedBytes, randomInputs, type Prepared } from '../../engine/index.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** One answered request: when it was sent and answered (performance.now() ms), and which version's bytes it carried. */
export interface Done { start: number; end: number; version: number }

export interface LoadResult {
  done: Done[];
  sent: number;
  failed: number;
  /** sent and never answered */
  lost: number;
  duplicated: number;
  /** answered 200 with bytes of no known version */
  wrong: number;
  errors: string[];
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** Binary OIP bodies of `n` seeded inputs and each version's expected output bytes. */
async function fixtures(versions: Prepared[], n: number): Promise<{ bodies: { body: Buffer; hl: number }[]; want: Buffer[][] }> {
  const first = versions[0]!;
  const inputs = Array.from({ length: n }, (_, i) => randomInputs(first.model, first.inputShapes, 500 + i));
  const bodies = inputs.map((feeds) => {
    const { head, data } = encodeInferRequest(Object.entries(feeds).map(([name, t]) => ({ name, dtype: t.dtype, dims: t.dims, data: t.data as ArrayBufferView })), { binaryOutput: true });
    return { body: Buffer.concat([head, ...data]), hl: head.length };
  });
  const want: Buffer[][] = [];
  for (const p of versions) {
    const s = await Session.create(normalisedBytes(p), { label: 'reference' });
    try {
      want.push(await Promise.all(inputs.map(async (feeds) => {
        const out = await s.run(feeds);
        return Buffer.concat(p.model.outputs.map((o) => { const d = out[o.name]!.data as ArrayBufferView; return Buffer.from(d.buffer, d.byteOffset, d.byteLength); }));
      })));
    } finally { await s.close(); }
  }
  return { bodies, want };
}

/** Requests per second the pipeline answers with `lanes` requests in flight (closed loop). */
export async function closedLoopRate(url: string, model: string, body: Buffer, headerLength: number, ms: number, lanes = 4): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: lanes });
  const until = performance.now() + ms;
  let n = 0;
  const lane = async (): Promise<void> => {
    while (performance.now() < until) {
      await new Promise<void>((r, j) => {
        const req = http.request(`${url}/v2/models/${model}/infer`, { method: 'POST', agent, headers: { 'content-length': body.length, 'inference-header-content-length': headerLength } }, (res) => { res.resume(); res.on('end', () => r()); });
        req.on('error', j);
        req.end(body);
      });
      n++;
    }
  };
  const t0 = performance.now();
  try { await Promise.all(Array.from({ length: lanes }, lane)); } finally { agent.destroy(); }
  return n / ((performance.now() - t0) / 1000);
}

/** The two splits the switch and soak benchmarks alternate between: `--cuts` and `--to`, or
 * single-tensor cuts at 1/3 and 2/3 of the model and at 1/2 and 5/6. */
export function twoSplits(prep: Prepared, cuts: string | undefined, to: string | undefined): { A: number[]; B: number[]; ids: number[] } {
  const ids = blockCuts(prep.analysis, 'single').map((c) => c.id);
  const at = (f: number): number => ids[Math.floor(f * ids.length)]!;
  return {
    A: cuts !== undefined ? parseIntList(cuts, '--cuts') : [at(1 / 3), at(2 / 3)],
    B: to !== undefined ? parseIntList(to, '--to') : [at(1 / 2), at(5 / 6)],
    ids,
  };
}

export class Load {
  private stopping = false;
  private readonly r: LoadResult = { done: [], sent: 0, failed: 0, lost: 0, duplicated: 0, wrong: 0, errors: [] };
  private readonly answered = new Set<string>();
  private loops: Promise<void>[] = [];
  private result: Promise<LoadResult> | null = null;

  private constructor(private readonly url: string, private readonly model: string, private readonly f: Awaited<ReturnType<typeof fixtures>>) {}

  /** Start `clients` loops against the gateway at `url`; answers may be any of `versions`' outputs. */
  static async start(url: string, model: string, versions: Prepared | Prepared[], clients: number): Promise<Load> {
    const l = new Load(url, model, await fixtures(Array.isArray(versions) ? versions : [versions], 4));
    l.loops = Array.from({ length: clients }, (_, c) => l.loop(c));
    return l;
  }

  private async loop(c: number): Promise<void> {
    for (let i = 0; !this.stopping; i++) {
      const k = (c + i) % this.f.bodies.length;
      const id = `c${c}-${i}`;
      const start = performance.now();
      this.r.sent++;
      try {
        const { status, body, hl } = await this.post(id, k);
        const end = performance.now();
        if (status !== 200) { this.r.failed++; if (this.r.errors.length < 5) this.r.errors.push(body.toString().slice(0, 200)); continue; }
        const head = JSON.parse(body.subarray(0, hl).toString()) as { id?: string };
        if (head.id !== id || this.answered.has(id)) { this.r.duplicated++; continue; }
        this.answered.add(id);
        const got = body.subarray(hl);
        const version = this.f.want.findIndex((w) => w[k]!.equals(got));
        if (version < 0) { this.r.wrong++; continue; }
        this.r.done.push({ start, end, version });
      } catch (e) {
        this.r.lost++;
        if (this.r.errors.length < 5) this.r.errors.push((e as Error).message);
      }
    }
  }

  private post(id: string, k: number): Promise<{ status: number; body: Buffer; hl: number }> {
    const { body: base, hl } = this.f.bodies[k]!;
    // The request id goes into the JSON head: rebuild the head with it.
    const head = JSON.parse(base.subarray(0, hl).toString()) as Record<string, unknown>;
    const h = Buffer.from(JSON.stringify({ ...head, id }));
    const body = Buffer.concat([h, base.subarray(hl)]);
    return new Promise((resolve, reject) => {
      const req = http.request(`${this.url}/v2/models/${this.model}/infer`, {
        method: 'POST', agent, headers: { 'content-type': 'application/octet-stream', 'content-length': body.length, 'inference-header-content-length': h.length },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), hl: Number(res.headers['inference-header-content-length'] ?? 0) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Stop sending; resolves once every request sent is answered (or failed). Idempotent. */
  stop(): Promise<LoadResult> {
    this.stopping = true;
    return (this.result ??= Promise.all(this.loops).then(() => this.r));
  }
}

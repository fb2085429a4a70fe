/**
 * The operator's parts: for each stage of a placement, the ONNX bytes of exactly the segment
 * it runs (src/cluster/parts.ts `partBytes`, the same code `kerf deploy` uses for hosts), named
 * by their sha256. The operator fetches the model once per version (sha256 checked), prepares
 * it, writes each stage's part into its cache, and serves it to the stage's init container
 * (`GET /v1/parts/SHA`, the pipeline's token as bearer). The reconcile core asks for the parts
 * of a placement before bringing it up (`ReconcileResult.parts`); a part's sha256 goes into
 * the placement's status and the Deployment's init container, which checks it.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isKerfError } from '../errors.js';
import type { PartRef } from '../cluster/substrate.js';

/** One stage's part of one model version. */
export interface PartSpec {
  uri: string;
  /** the whole model's sha256 */
  sha256: string;
  cuts: number[];
  /** the stage (part) index, 0..cuts.length */
  index: number;
  inputShapes?: Record<string, number[]>;
}

/** The key a part is known by before its bytes (and so its own sha256) exist. */
export function partKey(p: PartSpec): string {
  const shapes = Object.entries(p.inputShapes ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  return createHash('sha256').update(JSON.stringify([p.sha256, p.uri, p.cuts, p.index, shapes])).digest('hex').slice(0, 32);
}

/**
 * The model name a part is made with (it is in the part's bytes): the basename of the model's
 * URI or path without `.onnx`, so the operator and an init container make the same bytes
 * wherever they keep the file.
 */
export function partModelName(uri: string): string {
  const path = uri.replace(/[?#].*$/, '');
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)).replace(/\.onnx$/i, '') || 'model';
}

/** Do parts of a model at this URI get built by the operator (it can fetch it), or in the pod? */
export const servable = (uri: string): boolean => /^https?:\/\//.test(uri);

interface Entry { ref: PartRef; file: string; key: string; owner: string }

export interface PartStoreOptions {
  /** where models and parts are cached */
  dir: string;
  /** forget a failed build after this long, so it is tried again (ms; default 30000) */
  failureTtlMs?: number;
  log?: (e: Record<string, unknown>) => void;
  /** fetch timeout, ms */
  timeoutMs?: number;
}

export class PartStore {
  private readonly byKey = new Map<string, Entry>();
  private readonly bySha = new Map<string, Entry>();
  private readonly failures = new Map<string, { message: string; permanent: boolean; at: number }>();
  private readonly building = new Map<string, Promise<void>>();
  constructor(private readonly o: PartStoreOptions) { mkdirSync(join(o.dir, 'parts'), { recursive: true }); }

  get dir(): string { return this.o.dir; }

  /** Parts built so far, by key (what the reconcile core reads). */
  refs(): Map<string, PartRef> { return new Map([...this.byKey].map(([k, e]) => [k, e.ref])); }

  /** Builds that failed recently, by key; permanent: the model is wrong (sha256, not ONNX), not just unreachable. */
  failed(): Map<string, { message: string; permanent: boolean }> {
    const ttl = this.o.failureTtlMs ?? 30_000;
    for (const [k, f] of this.failures) if (Date.now() - f.at > ttl) this.failures.delete(k);
    return new Map([...this.failures].map(([k, f]) => [k, { message: f.message, permanent: f.permanent }]));
  }

  /** The file and owner (namespace/pipeline) of a built part. */
  get(sha: string): { file: string; ref: PartRef; owner: string } | null {
    const e = this.bySha.get(sha);
    return e && existsSync(e.file) ? e : null;
  }

  /** Build every part of `specs` (one model fetch per model version); resolves when done or failed. */
  async build(specs: readonly PartSpec[], owner: string): Promise<void> {
    const byModel = new Map<string, PartSpec[]>();
    for (const s of specs) {
      const k = partKey(s);
      if (this.byKey.has(k) || this.building.has(k)) continue;
      const mk = `${s.sha256}\0${s.uri}\0${JSON.stringify(s.inputShapes ?? {})}`;
      byModel.set(mk, [...(byModel.get(mk) ?? []), s]);
    }
    const jobs: Promise<void>[] = [];
    for (const group of byModel.values()) {
      const job = this.buildGroup(group, owner);
      for (const s of group) this.building.set(partKey(s), job);
      jobs.push(job.finally(() => { for (const s of group) this.building.delete(partKey(s)); }));
    }
    const pending = specs.map((s) => this.building.get(partKey(s))).filter((p): p is Promise<void> => !!p);
    await Promise.all([...jobs, ...pending]);
  }

  private async buildGroup(group: PartSpec[], owner: string): Promise<void> {
    const first = group[0]!;
    const model = join(this.o.dir, `${first.sha256}.onnx`);
    const t0 = performance.now();
    try {
      const { fetchModel } = await import('./fetch.js');
      const { prepareModel } = await import('../engine/prepare.js');
      const { partBytes, writePart } = await import('../cluster/parts.js');
      if (!existsSync(model)) await fetchModel(first.uri, first.sha256, model, { attempts: 3, ...(this.o.timeoutMs ? { timeoutMs: this.o.timeoutMs } : {}) });
      const prep = await prepareModel(model, { name: partModelName(first.uri), ...(first.inputShapes ? { inputShapes: first.inputShapes } : {}) });
      for (const s of group) {
        const { file, ref } = await writePart(join(this.o.dir, 'parts'), partBytes(prep, s.cuts, s.index, s.index));
        const e: Entry = { ref, file, key: partKey(s), owner };
        this.byKey.set(e.key, e);
        this.bySha.set(ref.sha256, e);
        this.failures.delete(e.key);
      }
      this.o.log?.({ event: 'parts-built', model: first.sha256.slice(0, 12), parts: group.map((s) => s.index), cuts: first.cuts, ms: Math.round(performance.now() - t0) });
    } catch (e) {
      const message = isKerfError(e) ? e.message : (e as Error).message;
      const permanent = isKerfError(e) && e.code !== 'KERF_ERR_FILE';
      for (const s of group) this.failures.set(partKey(s), { message, permanent, at: Date.now() });
      this.o.log?.({ event: 'parts-failed', model: first.sha256.slice(0, 12), error: message });
      // a model whose sha256 did not match is not kept
      if (isKerfError(e) && e.code === 'KERF_ERR_INTEGRITY') rmSync(model, { force: true });
    }
  }
}

/**
 * Hot-swap's memory: a tier keeps its weights as chunk sessions (a segment between two cuts)
 * and runs any range of the model by composing chunks in order. A new split reuses the chunks
 * already loaded and loads only the missing ranges, so switching splits costs no reload and
 * about one copy of the tier's weights. With optimisation disabled, a composition answers
 * bitwise what one session over the same range answers (a split is exact at that level).
 */
import { kerfError } from '../errors.js';
import type { Prepared } from '../engine/prepare.js';
import type { TensorSpec } from '../graph/slice.js';
import type { HostTensor } from '../engine/ort.js';
import type { WireTensor } from './frames.js';
import { OffLoopSession, runChain, type ChainLink } from '../engine/compute.js';
import { Segment, checkTensors, toHost, toWire, type SegmentBounds, type SegmentRunner } from './segment.js';

/** One chunk session of the store. */
interface Chunk {
  key: string;
  start: number | null;
  end: number | null;
  segment: Segment;
  /** composed segments using it */
  refs: number;
  lastUsed: number;
}

/** What composing a range cost. */
export interface ComposeReport {
  /** chunks loaded for it / reused from the store */
  loaded: number;
  reused: number;
  loadedBytes: number;
  loadS: number;
}

const key = (s: number | null, e: number | null): string => `${s ?? 'in'}:${e ?? 'out'}`;
const pos = (c: number | null, atEnd: boolean): number => (c === null ? (atEnd ? Infinity : -Infinity) : c);

/** A range of the model run as chunks composed in order. `close()` releases the chunks (idempotent). */
export class ComposedSegment implements SegmentRunner {
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  readonly carry: readonly TensorSpec[];
  readonly accepts: ReadonlyMap<string, TensorSpec>;
  readonly bounds: SegmentBounds;
  private closedFlag = false;

  constructor(private readonly store: ChunkStore, private readonly chunks: readonly Segment[], readonly label: string, readonly loadS: number) {
    const first = chunks[0]!, last = chunks[chunks.length - 1]!;
    this.accepts = first.accepts;
    this.inputs = first.inputs;
    const crossing = [...last.outputs, ...last.carry];
    this.outputs = Object.freeze(crossing.filter((t) => !this.accepts.has(t.name)));
    this.carry = Object.freeze(crossing.filter((t) => this.accepts.has(t.name)));
    this.bounds = { start: first.bounds.start, end: last.bounds.end, label: `chunks ${chunks.map((c) => `${c.bounds.start ?? 'in'}..${c.bounds.end ?? 'out'}`).join(' ')}` };
  }

  /** The chunk sessions, in order. */
  get parts(): readonly Segment[] { return this.chunks; }
  get closed(): boolean { return this.closedFlag; }

  check(tensors: readonly WireTensor[]): Map<string, WireTensor> { return checkTensors(this.label, this.accepts, tensors); }

  async run(byName: Map<string, WireTensor>): Promise<WireTensor[]> {
    if (this.closedFlag) throw kerfError('KERF_ERR_CLOSED', `${this.label} is closed`);
    const chain = this.chain();
    if (chain) {
      // One message to the compute thread: the chunks' intermediate tensors stay there.
      const feeds: Record<string, HostTensor> = {};
      for (const n of [...chain[0]!.inputs, ...chain[0]!.carry]) feeds[n] = toHost(byName.get(n)!);
      const out = await runChain(chain, feeds);
      // What the last chunk hands on, in its order: its outputs, then the carried tensors (the
      // request's own when it brought them, else as an earlier chunk computed them).
      const last = this.chunks[this.chunks.length - 1]!;
      const wire = (name: string): WireTensor => {
        const t = out[name];
        if (!t) throw kerfError('KERF_ERR_ENGINE', `${this.label}: tensor '${name}' did not come back from the compute thread`);
        return toWire(name, t);
      };
      return [...last.outputs.map((t) => wire(t.name)), ...last.carry.map((t) => byName.get(t.name) ?? wire(t.name))];
    }
    let cur = byName;
    for (let i = 0; ; i++) {
      const out = await this.chunks[i]!.run(cur);
      if (i === this.chunks.length - 1) return out;
      cur = new Map(out.map((t) => [t.name, t]));
    }
  }

  /** The chunks as one chain on the compute thread, or null when a chunk runs elsewhere. */
  private chain(): ChainLink[] | null {
    if (this.chainCache !== undefined) return this.chainCache;
    const links: ChainLink[] = [];
    for (const c of this.chunks) {
      if (!(c.session instanceof OffLoopSession)) return (this.chainCache = null);
      links.push({ session: c.session, inputs: c.inputs.map((t) => t.name), outputs: c.outputs.map((t) => t.name), carry: c.carry.map((t) => t.name) });
    }
    return (this.chainCache = links);
  }
  private chainCache: ChainLink[] | null | undefined;

  close(): Promise<void> {
    if (this.closedFlag) return Promise.resolve();
    this.closedFlag = true;
    return this.store.release(this.chunks);
  }
}

export interface ChunkStoreOptions {
  threads?: number;
  /**
   * Bytes of chunks no composition uses that the store keeps for later splits (least
   * recently used dropped first). Default: 3 × the model's parameter bytes: room for the
   * chunks of the dozen likely splits the adapt controller warms (their ranges overlap: a chunk
   * cannot be cut, so 28..46 next to 17..46 holds the late layers twice; resnet18's edge tier
   * held 2.4 × after warming 12 splits, and at 1.5 × the LRU dropped the likeliest, warmed first).
   */
  cacheBytes?: number;
  label?: string;
}

/** The chunk sessions of one process, shared by every composed segment built from it. */
export class ChunkStore {
  private readonly chunks = new Map<string, Chunk>();
  private readonly loading = new Map<string, Promise<Chunk>>();
  private tick = 0;
  private closedFlag = false;
  readonly cacheBytes: number;

  constructor(readonly prep: Prepared, private readonly opts: ChunkStoreOptions = {}) {
    this.cacheBytes = opts.cacheBytes ?? 3 * prep.analysis.totals.paramBytes;
  }

  /** Bytes of every chunk loaded (in use or cached). */
  get bytes(): number { let n = 0; for (const c of this.chunks.values()) n += c.segment.bytes; return n; }
  /** Chunks loaded, as "start..end" cut ids with reference counts. */
  list(): { start: number | null; end: number | null; bytes: number; refs: number }[] {
    return [...this.chunks.values()].sort((a, b) => pos(a.start, false) - pos(b.start, false))
      .map((c) => ({ start: c.start, end: c.end, bytes: c.segment.bytes, refs: c.refs }));
  }

  /** The loaded chunk from cut `start` to cut `end`, if there is one (not referenced: it may be
   * dropped later; a run on a dropped chunk fails with KERF_ERR_CLOSED). */
  peek(start: number | null, end: number | null): Segment | null {
    return this.closedFlag ? null : this.chunks.get(key(start, end))?.segment ?? null;
  }

  /**
   * A segment running the model from cut `start` to cut `end` (null: the model's inputs /
   * outputs), reusing loaded chunks: among compositions of loaded and new chunks it picks the
   * one that loads the fewest parameters; when that is none, the one of the fewest chunks, else
   * the one cut at most loaded boundaries (so later splits find more to reuse).
   */
  async compose(start: number | null, end: number | null, label?: string): Promise<{ segment: ComposedSegment; report: ComposeReport }> {
    if (this.closedFlag) throw kerfError('KERF_ERR_CLOSED', 'chunk store is closed');
    const s = pos(start, false), e = pos(end, true);
    if (!(s < e)) throw kerfError('KERF_ERR_CUT', `${this.prep.model.source}: empty range ${start ?? 'inputs'}..${end ?? 'outputs'}`);
    const inside = (c: number | null, atEnd: boolean): boolean => { const p = pos(c, atEnd); return p >= s && p <= e; };
    // Candidate boundaries: the range's ends and every loaded chunk's ends inside it.
    const pts = new Map<number, number | null>([[s, start], [e, end]]);
    for (const c of this.chunks.values()) {
      if (inside(c.start, false)) pts.set(pos(c.start, false), c.start);
      if (inside(c.end, true)) pts.set(pos(c.end, true), c.end);
    }
    const order = [...pts.keys()].sort((a, b) => a - b);
    const params = (c: number | null, atEnd: boolean): number => (c === null ? (atEnd ? this.prep.analysis.totals.params : 0) : this.prep.analysis.cuts[c]!.paramsBefore);
    // Shortest path over a DAG of boundaries: cost = (new parameters, chunks).
    const best: { cost: number; n: number; prev: number }[] = order.map(() => ({ cost: Infinity, n: Infinity, prev: -1 }));
    best[0] = { cost: 0, n: 0, prev: -1 };
    for (let j = 1; j < order.length; j++) {
      const bj = pts.get(order[j]!)!;
      for (let i = 0; i < j; i++) {
        const bi = pts.get(order[i]!)!;
        const have = this.chunks.has(key(bi, bj));
        const cost = best[i]!.cost + (have ? 0 : Math.max(1, params(bj, true) - params(bi, false)));
        const n = best[i]!.n + 1;
        // Equal cost: split at the loaded chunks' ends, so later splits find more to reuse.
        if (cost < best[j]!.cost || (cost === best[j]!.cost && n > best[j]!.n)) best[j] = { cost, n, prev: i };
      }
    }
    // When loaded chunks alone cover the range, take the cover with the fewest chunks: every
    // chunk boundary costs compute (tensors copied out of one session into the next), and a
    // store warmed with many splits holds both big chunks and the small pieces of others.
    const few: { n: number; prev: number }[] = order.map(() => ({ n: Infinity, prev: -1 }));
    few[0] = { n: 0, prev: -1 };
    for (let j = 1; j < order.length; j++) {
      const bj = pts.get(order[j]!)!;
      for (let i = 0; i < j; i++) {
        if (few[i]!.n + 1 < few[j]!.n && this.chunks.has(key(pts.get(order[i]!)!, bj))) few[j] = { n: few[i]!.n + 1, prev: i };
      }
    }
    const path = Number.isFinite(few[order.length - 1]!.n) ? few : best;
    const ranges: [number | null, number | null][] = [];
    for (let j = order.length - 1; j > 0; j = path[j]!.prev) ranges.unshift([pts.get(order[path[j]!.prev]!)!, pts.get(order[j]!)!]);
    const report: ComposeReport = { loaded: 0, reused: 0, loadedBytes: 0, loadS: 0 };
    const got: Chunk[] = [];
    try {
      for (const [a, b] of ranges) {
        const k = key(a, b);
        let c = this.chunks.get(k);
        if (c) report.reused++;
        else {
          c = await this.load(a, b);
          report.loaded++;
          report.loadedBytes += c.segment.bytes;
          report.loadS += c.segment.loadS;
        }
        c.refs++;
        c.lastUsed = ++this.tick;
        got.push(c);
      }
    } catch (err) {
      await this.release(got.map((c) => c.segment));
      throw err;
    }
    const segment = new ComposedSegment(this, got.map((c) => c.segment), label ?? `${this.prep.model.name} ${start ?? 'in'}..${end ?? 'out'}`, report.loadS);
    await this.evict();
    return { segment, report };
  }

  private load(a: number | null, b: number | null): Promise<Chunk> {
    const k = key(a, b);
    let p = this.loading.get(k);
    if (!p) {
      // Two compositions asking for the same new chunk at once share one load.
      p = (async () => {
        const cuts = [a, b].filter((x): x is number => x !== null);
        const idx = a === null ? 0 : 1;
        const segment = await Segment.create(this.prep, { cuts, blocks: [idx, idx] }, { threads: this.opts.threads ?? 1, label: `${this.opts.label ?? 'chunk'} ${k}` });
        // A cached chunk may first run long after it loaded (another split, a warmed candidate):
        // allocate onnxruntime's buffers now, while switching, not then, while serving.
        await segment.warm();
        const c: Chunk = { key: k, start: a, end: b, segment, refs: 0, lastUsed: ++this.tick };
        this.chunks.set(k, c);
        return c;
      })().finally(() => this.loading.delete(k));
      this.loading.set(k, p);
    }
    return p;
  }

  /** Drop references (composed segments call this on close), then trim the cache. */
  async release(segments: readonly Segment[]): Promise<void> {
    for (const s of segments) {
      for (const c of this.chunks.values()) if (c.segment === s) { c.refs = Math.max(0, c.refs - 1); break; }
    }
    await this.evict();
  }

  private async evict(): Promise<void> {
    const idle = [...this.chunks.values()].filter((c) => c.refs === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    let total = this.bytes;
    const drop: Chunk[] = [];
    for (const c of idle) {
      // Idle chunks stay while everything fits the budget; chunks in use are never dropped.
      if (total <= this.cacheBytes) break;
      drop.push(c);
      total -= c.segment.bytes;
      this.chunks.delete(c.key);
    }
    await Promise.all(drop.map((c) => c.segment.close()));
  }

  /** Close every chunk (composed segments still open fail afterwards). Idempotent. */
  async close(): Promise<void> {
    this.closedFlag = true;
    const all = [...this.chunks.values()];
    this.chunks.clear();
    await Promise.all(all.map((c) => c.segment.close()));
  }
}

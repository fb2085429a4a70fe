/**
 * A bounded queue of jobs run `concurrency` at a time: a full queue refuses at once (backpressure).
 * Jobs pushed with an expected cost (`costS`) run shortest-expected-first, FIFO among equal
 * estimates, so a few long jobs (e.g. the backlog of a split just switched away from) do not hold
 * up many short ones; a job that has waited longer than `ageFactor` × the longest expected cost
 * among the waiting jobs goes first, so nothing starves. Without costs it is a plain FIFO.
 */
import { kerfError, type KerfError } from '../errors.js';

interface Job<T> {
  run(): Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
  tag: unknown;
  enqueuedAt: number;
  /** expected seconds of work (0 when unknown) */
  costS: number;
  signal?: AbortSignal | undefined;
  onAbort?: () => void;
}

/** What a job saw: seconds waiting and seconds running. */
export interface JobTiming { waitS: number; runS: number }

/** Options of a WorkQueue beyond its limit and concurrency. */
export interface WorkQueueOptions {
  /** order waiting jobs by expected cost ('sejf', default) or strictly by arrival ('fifo') */
  order?: 'sejf' | 'fifo';
  /** a job waiting longer than this × the longest expected cost among the waiting goes first (default 4) */
  ageFactor?: number;
}

export class WorkQueue {
  private readonly jobs: Job<unknown>[] = [];
  private running = 0;
  private readonly order: 'sejf' | 'fifo';
  private readonly ageFactor: number;

  constructor(readonly limit: number, readonly concurrency = 1, private readonly what = 'queue', opts: WorkQueueOptions = {}) {
    if (!(limit >= 0) || !(concurrency >= 1)) throw kerfError('KERF_ERR_USAGE', `${what}: limit ≥ 0 and concurrency ≥ 1 required`);
    this.order = opts.order ?? 'sejf';
    this.ageFactor = opts.ageFactor ?? 4;
    if (!(this.ageFactor > 0)) throw kerfError('KERF_ERR_USAGE', `${what}: ageFactor > 0 required`);
  }

  /** Jobs waiting (not running). */
  get depth(): number { return this.jobs.length; }
  /** Jobs running. */
  get active(): number { return this.running; }

  /**
   * Queue `fn`; rejects with KERF_ERR_OVERLOADED when `limit` jobs already wait. `tag` lets
   * `rejectWhere` fail a group (e.g. every job bound for a tier that went down). `costS`: the
   * job's expected seconds of work (absent, negative or NaN: 0, i.e. as short as any).
   */
  push<T>(fn: (t: JobTiming) => Promise<T>, opts: { tag?: unknown; signal?: AbortSignal; costS?: number } = {}): Promise<T> {
    if (this.running < this.concurrency && this.jobs.length === 0) return this.start(fn, performance.now());
    if (this.jobs.length >= this.limit) {
      return Promise.reject(kerfError('KERF_ERR_OVERLOADED', `${this.what} is full (${this.limit} waiting); retry later`));
    }
    return new Promise<T>((resolve, reject) => {
      const enqueuedAt = performance.now();
      const costS = opts.costS !== undefined && opts.costS > 0 ? opts.costS : 0;
      const job: Job<T> = { run: () => this.start(fn, enqueuedAt), resolve, reject, tag: opts.tag, enqueuedAt, costS, signal: opts.signal };
      if (opts.signal) {
        if (opts.signal.aborted) { reject(opts.signal.reason); return; }
        job.onAbort = () => { this.remove(job as Job<unknown>); reject(opts.signal!.reason); };
        opts.signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.jobs.push(job as Job<unknown>);
    });
  }

  /** Fail every waiting job whose tag matches. */
  rejectWhere(pred: (tag: unknown) => boolean, err: KerfError): number {
    let n = 0;
    for (const j of [...this.jobs]) {
      if (!pred(j.tag)) continue;
      this.remove(j);
      j.reject(err);
      n++;
    }
    return n;
  }

  private remove(j: Job<unknown>): void {
    const i = this.jobs.indexOf(j);
    if (i >= 0) this.jobs.splice(i, 1);
    if (j.onAbort) j.signal?.removeEventListener('abort', j.onAbort);
  }

  private async start<T>(fn: (t: JobTiming) => Promise<T>, enqueuedAt: number): Promise<T> {
    this.running++;
    const t0 = performance.now();
    const timing: JobTiming = { waitS: (t0 - enqueuedAt) / 1000, runS: 0 };
    try {
      const r = await fn(timing);
      return r;
    } finally {
      this.running--;
      this.next();
    }
  }

  /** Index of the job to run next (jobs are kept in arrival order). */
  private pick(nowMs: number): number {
    if (this.order === 'fifo' || this.jobs.length < 2) return 0;
    let longest = 0;
    for (const j of this.jobs) if (j.costS > longest) longest = j.costS;
    // The oldest job first once it has waited too long (it is jobs[0]: arrival order).
    if ((nowMs - this.jobs[0]!.enqueuedAt) / 1000 > this.ageFactor * longest) return 0;
    let best = 0;
    for (let i = 1; i < this.jobs.length; i++) if (this.jobs[i]!.costS < this.jobs[best]!.costS) best = i;
    return best;
  }

  private next(): void {
    while (this.running < this.concurrency && this.jobs.length > 0) {
      const j = this.jobs.splice(this.pick(performance.now()), 1)[0]!;
      if (j.onAbort) j.signal?.removeEventListener('abort', j.onAbort);
      j.run().then(j.resolve, j.reject);
    }
  }
}

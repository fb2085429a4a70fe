/** A bounded FIFO of jobs run `concurrency` at a time: a full queue refuses at once (backpressure). */
import { kerfError, type KerfError } from '../errors.js';

interface Job<T> {
  run(): Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
  tag: unknown;
  enqueuedAt: number;
  signal?: AbortSignal | undefined;
  onAbort?: () => void;
}

/** What a job saw: seconds waiting and seconds running. */
export interface JobTiming { waitS: number; runS: number }

export class WorkQueue {
  private readonly jobs: Job<unknown>[] = [];
  private running = 0;

  constructor(readonly limit: number, readonly concurrency = 1, private readonly what = 'queue') {
    if (!(limit >= 0) || !(concurrency >= 1)) throw kerfError('KERF_ERR_USAGE', `${what}: limit ≥ 0 and concurrency ≥ 1 required`);
  }

  /** Jobs waiting (not running). */
  get depth(): number { return this.jobs.length; }
  /** Jobs running. */
  get active(): number { return this.running; }

  /**
   * Queue `fn`; rejects with KERF_ERR_OVERLOADED when `limit` jobs already wait. `tag` lets
   * `rejectWhere` fail a group (e.g. every job bound for a tier that went down).
   */
  push<T>(fn: (t: JobTiming) => Promise<T>, opts: { tag?: unknown; signal?: AbortSignal } = {}): Promise<T> {
    if (this.running < this.concurrency && this.jobs.length === 0) return this.start(fn, performance.now());
    if (this.jobs.length >= this.limit) {
      return Promise.reject(kerfError('KERF_ERR_OVERLOADED', `${this.what} is full (${this.limit} waiting); retry later`));
    }
    return new Promise<T>((resolve, reject) => {
      const enqueuedAt = performance.now();
      const job: Job<T> = { run: () => this.start(fn, enqueuedAt), resolve, reject, tag: opts.tag, enqueuedAt, signal: opts.signal };
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

  private next(): void {
    while (this.running < this.concurrency && this.jobs.length > 0) {
      const j = this.jobs.shift()!;
      if (j.onAbort) j.signal?.removeEventListener('abort', j.onAbort);
      j.run().then(j.resolve, j.reject);
    }
  }
}

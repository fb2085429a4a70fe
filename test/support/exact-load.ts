/**
 * The checked load of the failover and replay tests: `clients` loops send binary OIP requests
 * with ids to a gateway; every answer must be 200, carry an id, and be bitwise the expected
 * outputs (the unsplit model's). What went wrong is collected in `bad`, answers per id in
 * `answers` (so a test can assert each one answered exactly once).
 */
import type { HostTensor } from '../../src/engine/index.js';
import { bytesOf, inferBinary } from '../serve/serve-helpers.js';

export interface ExactLoadOptions {
  url: string;
  model: string;
  inputs: Record<string, HostTensor>[];
  /** expected outputs per input, same order */
  want: Record<string, HostTensor>[];
  clients: number;
  /** send exactly this many requests, ids r0…r{n-1}, request i with input i mod inputs.length;
   * absent: send until stop(), ids c{client}-{i} */
  requests?: number;
}

export interface ExactLoad {
  /** requests answered (any status) or failed on the client side */
  readonly done: number;
  /** answers (status 200) per request id */
  readonly answers: Map<string, number>;
  /** one line per failed, wrong or client-side failed request */
  readonly bad: string[];
  /** resolves when every loop has ended: all `requests` sent and answered, or after stop() */
  readonly finished: Promise<void>;
  /** stop sending (the loops end after their current request) and wait for them */
  stop(): Promise<void>;
}

export function exactLoad(o: ExactLoadOptions): ExactLoad {
  const answers = new Map<string, number>();
  const bad: string[] = [];
  let next = 0, done = 0, stopping = false;
  const client = async (c: number): Promise<void> => {
    for (let j = 0; !stopping && (o.requests === undefined || next < o.requests); j++) {
      const i = o.requests === undefined ? c + j : next++;
      const k = i % o.inputs.length, id = o.requests === undefined ? `c${c}-${j}` : `r${i}`;
      const r = await inferBinary(o.url, o.model, o.inputs[k]!, id)
        .catch((e: Error) => ({ status: 0, code: 'client', error: e.message, outputs: {} as Record<string, Buffer>, id: undefined }));
      done++;
      if (r.status !== 200) { bad.push(`${id}: ${r.status} ${r.code} ${r.error}`); continue; }
      if (r.id === undefined) { bad.push(`${id}: answered without an id`); continue; }
      answers.set(r.id, (answers.get(r.id) ?? 0) + 1);
      for (const [name, t] of Object.entries(o.want[k]!)) if (!r.outputs[name] || !bytesOf(t).equals(r.outputs[name])) bad.push(`${id}: output ${name} differs`);
    }
  };
  const finished = Promise.all(Array.from({ length: o.clients }, (_, c) => client(c))).then(() => {});
  return {
    get done() { return done; }, answers, bad, finished,
    stop() { stopping = true; return finished; },
  };
}

import { kerfError } from '../errors.js';
import type { Split } from '../graph/slice.js';
import { serializeModel } from '../graph/slice.js';
import { Session, type HostTensor, type SessionOptions } from './ort.js';

/** Sessions for every part of a split, run in order; tensors chain by name. */
export class Chain {
  readonly sessions: Session[];
  readonly split: Split;
  private constructor(split: Split, sessions: Session[]) { this.split = split; this.sessions = sessions; }

  static async create(split: Split, opts: SessionOptions = {}): Promise<Chain> {
    const sessions: Session[] = [];
    try {
      for (const p of split.parts) {
        sessions.push(await Session.create(serializeModel(p.proto), { ...opts, label: `part ${p.index}` }));
      }
    } catch (e) {
      await Promise.all(sessions.map((s) => s.close()));
      throw e;
    }
    return new Chain(split, sessions);
  }

  /** Run all parts; returns the model's outputs. */
  async run(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    let live: Record<string, HostTensor> = { ...feeds };
    for (let k = 0; k < this.split.parts.length; k++) {
      const part = this.split.parts[k]!;
      const inputs: Record<string, HostTensor> = {};
      for (const t of part.inputs) {
        const v = live[t.name];
        if (!v) throw kerfError('KERF_ERR_CUT', `part ${k}: tensor '${t.name}' did not arrive`);
        inputs[t.name] = v;
      }
      const out = await this.sessions[k]!.run(inputs, part.outputs.map((t) => t.name));
      const next: Record<string, HostTensor> = {};
      for (const t of part.carry) next[t.name] = live[t.name]!;
      for (const t of part.outputs) next[t.name] = out[t.name]!;
      live = next;
    }
    return live;
  }

  async close(): Promise<void> { await Promise.all(this.sessions.map((s) => s.close())); }
}

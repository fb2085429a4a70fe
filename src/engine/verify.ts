import { normalisedModel, serializeModel, splitModel } from '../graph/slice.js';
import type { Prepared } from './prepare.js';
import { Chain } from './chain.js';
import { Session, type HostTensor, type Optimization } from './ort.js';
import { randomInputs } from './shapes.js';

export interface VerifyResult {
  cuts: number[];
  optimization: Optimization;
  /** largest |whole − chained| over all output elements */
  maxAbsDiff: number;
  /** every output element has the same bits */
  bitwiseEqual: boolean;
  outputs: { name: string; maxAbsDiff: number; bitwiseEqual: boolean }[];
}

/** Run the whole model and the chained parts on the same input and compare every output. */
export async function verifySplit(
  prep: Prepared, cuts: readonly number[], opts: { seed?: number; feeds?: Record<string, HostTensor>; optimization?: Optimization; whole?: Session } = {},
): Promise<VerifyResult> {
  const optimization = opts.optimization ?? 'disabled';
  const split = splitModel(prep.model, prep.analysis, cuts);
  const feeds = opts.feeds ?? randomInputs(prep.model, prep.inputShapes, opts.seed ?? 0);
  const whole = opts.whole ?? await Session.create(normalisedBytes(prep), { optimization, label: `${prep.model.source} (whole)` });
  const chain = await Chain.create(split, { optimization });
  try {
    const a = await whole.run(feeds);
    const b = await chain.run(feeds);
    return { cuts: [...cuts], optimization, ...compareOutputs(a, b, prep.model.outputs.map((o) => o.name)) };
  } finally {
    await chain.close();
    if (!opts.whole) await whole.close();
  }
}

/** The whole model as onnxruntime should see it: the original file's bytes. */
export function normalisedBytes(prep: Pick<Prepared, 'model'>): Uint8Array {
  const m = prep.model as Prepared['model'] & { bytes?: Uint8Array };
  if (m.bytes && !m.externalData) return m.bytes;
  return serializeModel(normalisedModel(m));
}

export function compareOutputs(a: Record<string, HostTensor>, b: Record<string, HostTensor>, names: string[]) {
  let maxAbsDiff = 0, bitwiseEqual = true;
  const outputs = names.map((name) => {
    const x = a[name], y = b[name];
    if (!x || !y || x.data.length !== y.data.length || x.dims.join() !== y.dims.join()) {
      bitwiseEqual = false; maxAbsDiff = Infinity;
      return { name, maxAbsDiff: Infinity, bitwiseEqual: false };
    }
    let d = 0, eq = true;
    if (Array.isArray(x.data)) {
      eq = x.data.every((v, i) => v === (y.data as string[])[i]);
      d = eq ? 0 : Infinity;
    } else {
      const xb = new Uint8Array(x.data.buffer, x.data.byteOffset, x.data.byteLength);
      const yd = y.data as typeof x.data;
      const yb = new Uint8Array(yd.buffer, yd.byteOffset, yd.byteLength);
      eq = Buffer.compare(xb, yb) === 0;
      if (!eq) {
        for (let i = 0; i < x.data.length; i++) {
          const diff = Math.abs(Number(x.data[i]) - Number(yd[i]));
          if (diff > d || Number.isNaN(diff)) d = Number.isNaN(diff) ? Infinity : diff;
        }
      }
    }
    if (!eq) bitwiseEqual = false;
    if (d > maxAbsDiff) maxAbsDiff = d;
    return { name, maxAbsDiff: d, bitwiseEqual: eq };
  });
  return { maxAbsDiff, bitwiseEqual, outputs };
}

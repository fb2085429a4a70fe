import { ModelBuilder, Rng } from '../../src/graph/builder.js';
import { Chain } from '../../src/engine/chain.js';
import { randomInputs } from '../../src/engine/shapes.js';
import type { Prepared } from '../../src/engine/prepare.js';
import { splitModel } from '../../src/graph/slice.js';
import type { HostTensor } from '../../src/engine/ort.js';

/** A small residual CNN: conv → relu → [conv → relu → conv] + skip → relu → pool → gemm. */
export function tinyNet(): Uint8Array {
  const b = new ModelBuilder({ opset: 13, name: 'tiny' });
  const r = new Rng(7);
  b.input('x', 'float32', [1, 3, 16, 16]);
  b.initializer('w0', 'float32', [8, 3, 3, 3], r.he([8, 3, 3, 3]));
  b.initializer('w1', 'float32', [8, 8, 3, 3], r.he([8, 8, 3, 3]));
  b.initializer('w2', 'float32', [8, 8, 3, 3], r.he([8, 8, 3, 3]));
  b.initializer('fc', 'float32', [10, 8], r.he([10, 8]));
  b.initializer('fcb', 'float32', [10], new Float32Array(10));
  b.node('Conv', ['x', 'w0'], ['c0'], { pads: [1, 1, 1, 1] });
  b.node('Relu', ['c0'], ['r0']);
  b.node('Conv', ['r0', 'w1'], ['c1'], { pads: [1, 1, 1, 1] });
  b.node('Relu', ['c1'], ['r1']);
  b.node('Conv', ['r1', 'w2'], ['c2'], { pads: [1, 1, 1, 1] });
  b.node('Add', ['c2', 'r0'], ['s']);
  b.node('Relu', ['s'], ['r2']);
  b.node('GlobalAveragePool', ['r2'], ['p']);
  b.node('Flatten', ['p'], ['f']);
  b.node('Gemm', ['f', 'fc', 'fcb'], ['y'], { transB: 1 });
  b.output('y', 'float32', [1, 10]);
  return b.toBytes();
}

const bytesOf = (t: HostTensor): number => (Array.isArray(t.data) ? t.data.join('').length : t.data.byteLength);

/**
 * Bytes each block really hands on, found independently of the profiler: run the split chain
 * part by part and add up the tensors that cross each part's end (outputs and carried ones).
 */
export async function trueCrossingBytes(prep: Prepared, cutIds: number[]): Promise<number[]> {
  const split = splitModel(prep.model, prep.analysis, cutIds);
  const chain = await Chain.create(split);
  try {
    let live: Record<string, HostTensor> = randomInputs(prep.model, prep.inputShapes, 0);
    const out: number[] = [];
    for (const [k, p] of split.parts.entries()) {
      const ins: Record<string, HostTensor> = {};
      for (const t of p.inputs) ins[t.name] = live[t.name]!;
      const r = await chain.sessions[k]!.run(ins, p.outputs.map((t) => t.name));
      const next: Record<string, HostTensor> = {};
      for (const t of p.carry) next[t.name] = live[t.name]!;
      for (const t of p.outputs) next[t.name] = r[t.name]!;
      out.push(Object.values(next).reduce((s, t) => s + bytesOf(t), 0));
      live = next;
    }
    return out;
  } finally {
    await chain.close();
  }
}

/** The compute thread: sessions run off the event loop, answer bitwise what an inline session
 * answers, chain as one message, and fail clearly (closed, missing input, dead thread). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModelBuilder } from '../../src/graph/builder.js';
import { Session, type HostTensor } from '../../src/engine/ort.js';
import { OffLoopSession, runChain, stopComputeThread } from '../../src/engine/compute.js';

/** x [n, d] → y = relu(x·W1)·W2 …, `layers` matmuls: heavy enough to take tens of ms. */
function mlp(d: number, layers: number, seed = 1): Uint8Array {
  const b = new ModelBuilder({ name: 'mlp' });
  b.input('x', 'float32', [64, d]);
  let cur = 'x';
  let s = seed;
  const rnd = (): number => { s = (s * 1103515245 + 12345) % 2 ** 31; return s / 2 ** 31 - 0.5; };
  for (let i = 0; i < layers; i++) {
    const w = b.initializer(`w${i}`, 'float32', [d, d], Float32Array.from({ length: d * d }, () => rnd() * 0.1));
    const [m] = b.node('MatMul', [cur, w], [`m${i}`]);
    [cur] = b.node('Relu', [m!], [`r${i}`]);
  }
  b.node('Identity', [cur], ['y']);
  b.output('y', 'float32', [64, d]);
  return b.toBytes();
}

/** Two stages of a chain: a → (b, a carried), then (b, a) → c = b + a. */
function stages(): [Uint8Array, Uint8Array] {
  const s1 = new ModelBuilder({ name: 's1' });
  s1.input('a', 'float32', [4]);
  s1.node('Relu', ['a'], ['b']);
  s1.output('b', 'float32', [4]);
  const s2 = new ModelBuilder({ name: 's2' });
  s2.input('b', 'float32', [4]);
  s2.input('a', 'float32', [4]);
  s2.node('Add', ['b', 'a'], ['c']);
  s2.output('c', 'float32', [4]);
  return [s1.toBytes(), s2.toBytes()];
}

const x = (d: number): HostTensor => ({ dtype: 'float32', dims: [64, d], data: Float32Array.from({ length: 64 * d }, (_, i) => Math.sin(i)) });
const bytes = (t: HostTensor): Buffer => { const a = t.data as Float32Array; return Buffer.from(a.buffer, a.byteOffset, a.byteLength); };

test('compute thread: bitwise equal to an inline session; the caller keeps its inputs', async () => {
  const model = mlp(128, 3);
  const inline = await Session.create(model.slice());
  const off = await OffLoopSession.create(model.slice(), { label: 'mlp off' });
  try {
    assert.deepEqual(off.inputNames, ['x']);
    assert.deepEqual(off.outputNames, ['y']);
    const input = x(128);
    const [a, b, c] = await Promise.all([inline.run({ x: input }), off.run({ x: input }), off.run({ x: input })]);
    assert.equal(bytes(b.y!).compare(bytes(a.y!)), 0);
    assert.equal(bytes(c.y!).compare(bytes(a.y!)), 0);
    assert.equal((input.data as Float32Array).length, 64 * 128, 'the input was copied, not taken');
    await assert.rejects(off.run({}), (e: Error & { code?: string }) => e.code === 'KERF_ERR_SHAPE' && /mlp off: input tensor 'x' is missing/.test(e.message));
  } finally {
    await inline.close();
    await off.close();
  }
  assert.equal(off.closed, true);
  await assert.rejects(off.run({ x: x(128) }), (e: Error & { code?: string }) => e.code === 'KERF_ERR_CLOSED');
});

test('compute thread: the event loop keeps turning while a run computes (inline it does not)', async () => {
  // a run long enough (~30–60 ms) that a busy machine's scheduler still gives the loop turns during it
  const model = mlp(1024, 24);
  const turnsDuring = async (run: () => Promise<unknown>): Promise<number> => {
    let turns = 0, done = false;
    const spin = (): void => { if (!done) { turns++; setImmediate(spin); } };
    setImmediate(spin);
    await run();
    done = true;
    return turns;
  };
  const inline = await Session.create(model.slice());
  const off = await OffLoopSession.create(model.slice());
  try {
    const input = x(1024);
    await inline.run({ x: input });
    await off.run({ x: input });
    const t0 = performance.now();
    const inl = await turnsDuring(() => inline.run({ x: input }));
    const ms = performance.now() - t0;
    const offTurns = await turnsDuring(() => off.run({ x: input }));
    assert.ok(inl <= 1, `inline: ${inl} turns of the event loop during a ${ms.toFixed(0)} ms run`);
    assert.ok(offTurns >= 3, `off the loop: only ${offTurns} turns during a ~${ms.toFixed(0)} ms run`);
  } finally {
    await inline.close();
    await off.close();
  }
});

test('compute thread: a chain runs as one message, carried tensors pass through', async () => {
  const [m1, m2] = stages();
  const s1 = await OffLoopSession.create(m1, { label: 's1' });
  const s2 = await OffLoopSession.create(m2, { label: 's2' });
  try {
    const a: HostTensor = { dtype: 'float32', dims: [4], data: Float32Array.from([-1, 2, -3, 4]) };
    const out = await runChain([
      { session: s1, inputs: ['a'], outputs: ['b'], carry: ['a'] },
      { session: s2, inputs: ['b', 'a'], outputs: ['c'], carry: ['b'] },
    ], { a });
    assert.deepEqual([...(out.c!.data as Float32Array)], [-1, 4, -3, 8]);
    assert.deepEqual([...(out.b!.data as Float32Array)], [0, 2, 0, 4]);
    assert.deepEqual(Object.keys(out).sort(), ['b', 'c']);
    await assert.rejects(runChain([{ session: s2, inputs: ['b', 'a'], outputs: ['c'], carry: [] }], { a }), /s2: input tensor 'b' is missing/);
  } finally {
    await s1.close();
    await s2.close();
  }
});

test('compute thread: sessions on a stopped thread fail clearly; new sessions start a new thread', async () => {
  const [m1] = stages();
  const s = await OffLoopSession.create(m1.slice(), { label: 'old' });
  await stopComputeThread();
  await assert.rejects(s.run({ a: { dtype: 'float32', dims: [4], data: new Float32Array(4) } }), (e: Error & { code?: string }) => e.code === 'KERF_ERR_ENGINE' && /old: compute thread/.test(e.message));
  const t = await OffLoopSession.create(m1.slice(), { label: 'new' });
  const out = await t.run({ a: { dtype: 'float32', dims: [4], data: Float32Array.from([1, -1, 1, -1]) } });
  assert.deepEqual([...(out.b!.data as Float32Array)], [1, 0, 1, 0]);
  await t.close();
  await s.close();
  await assert.rejects(OffLoopSession.create(new Uint8Array([1, 2, 3]), { label: 'junk' }), (e: Error & { code?: string }) => e.code === 'KERF_ERR_ENGINE' && /junk: onnxruntime cannot load/.test(e.message));
});

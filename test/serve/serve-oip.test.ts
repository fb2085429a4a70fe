/** The OIP body codec: JSON and binary tensors, and 400-class errors naming the tensor. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isKerfError } from '../../src/errors.js';
import { encodeInferResponse, httpStatus, parseInferRequest, type TensorMeta, WorkQueue, Registry } from '../../src/serve/index.js';

const MODEL: TensorMeta[] = [{ name: 'x', dtype: 'float32', shape: [2, 2] }, { name: 'ids', dtype: 'int64', shape: [3] }];
const OUT = ['y'];
const json = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o));
const shapeErr = (re: RegExp) => (e: unknown): boolean => isKerfError(e) && e.code === 'KERF_ERR_SHAPE' && re.test(e.message) && httpStatus(e.code) === 400;

test('JSON tensors, nested or flat, in model order', () => {
  const r = parseInferRequest(json({ id: 'a', inputs: [
    { name: 'ids', shape: [3], datatype: 'INT64', data: [1, 2, 3] },
    { name: 'x', shape: [2, 2], datatype: 'FP32', data: [[1.5, 2], [3, 4]] },
  ] }), null, MODEL, OUT);
  assert.equal(r.id, 'a');
  assert.deepEqual(r.inputs.map((t) => t.name), ['x', 'ids']);
  assert.deepEqual(Array.from(r.inputs[0]!.data as Float32Array), [1.5, 2, 3, 4]);
  assert.deepEqual(Array.from(r.inputs[1]!.data as BigInt64Array), [1n, 2n, 3n]);
});

test('binary tensor data extension, misaligned offsets included', () => {
  const x = new Float32Array([1, 2, 3, 4]);
  const ids = new BigInt64Array([7n, 8n, 9n]);
  const head = json({ inputs: [
    { name: 'x', shape: [2, 2], datatype: 'FP32', parameters: { binary_data_size: 16 } },
    { name: 'ids', shape: [3], datatype: 'INT64', parameters: { binary_data_size: 24 } },
  ], outputs: [{ name: 'y', parameters: { binary_data: true } }] });
  const body = Buffer.concat([head, Buffer.from(x.buffer), Buffer.from(ids.buffer)]);
  const r = parseInferRequest(body, head.length, MODEL, OUT);
  assert.deepEqual(Array.from(r.inputs[0]!.data as Float32Array), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(r.inputs[1]!.data as BigInt64Array), [7n, 8n, 9n]);
  const enc = encodeInferResponse('m', r, [{ name: 'y', dtype: 'float32', dims: [2], data: new Float32Array([5, 6]) }]);
  assert.ok(enc.binary);
  const doc = JSON.parse(Buffer.from(enc.chunks[0]!).toString()) as { outputs: { parameters: { binary_data_size: number } }[] };
  assert.equal(doc.outputs[0]!.parameters.binary_data_size, 8);
  assert.equal(enc.length, enc.jsonLength + 8);
});

test('wrong name, dtype, shape, length or a missing input → 400 naming the tensor', () => {
  const x = { name: 'x', shape: [2, 2], datatype: 'FP32', data: [1, 2, 3, 4] };
  const ids = { name: 'ids', shape: [3], datatype: 'INT64', data: [1, 2, 3] };
  const p = (inputs: unknown[], extra: object = {}) => () => parseInferRequest(json({ inputs, ...extra }), null, MODEL, OUT);
  assert.throws(p([x, ids, { ...x, name: 'z' }]), shapeErr(/input 'z' is not an input/));
  assert.throws(p([{ ...x, datatype: 'FP64' }, ids]), shapeErr(/input 'x': datatype "FP64", the model expects FP32/));
  assert.throws(p([{ ...x, shape: [4] }, ids]), shapeErr(/input 'x': shape \[4\]/));
  assert.throws(p([{ ...x, data: [1, 2, 3] }, ids]), shapeErr(/input 'x': 3 elements/));
  assert.throws(p([x]), shapeErr(/input 'ids' is missing/));
  assert.throws(p([x, { ...ids, data: [1.5, 2, 3] }]), shapeErr(/input 'ids': element 0/));
  assert.throws(p([x, ids], { outputs: [{ name: 'nope' }] }), shapeErr(/output 'nope'/));
  const head = json({ inputs: [{ ...x, data: undefined, parameters: { binary_data_size: 12 } }, ids] });
  assert.throws(() => parseInferRequest(Buffer.concat([head, Buffer.alloc(12)]), head.length, MODEL, OUT), shapeErr(/input 'x': binary_data_size 12/));
});

test('the work queue refuses when full and fails a tagged group at once', async () => {
  const q = new WorkQueue(1, 1, 'q');
  let release!: () => void;
  const first = q.push(() => new Promise<number>((r) => { release = () => r(1); }));
  const second = q.push(async () => 2, { tag: 'a' });
  await assert.rejects(q.push(async () => 3), (e: unknown) => isKerfError(e) && e.code === 'KERF_ERR_OVERLOADED');
  assert.equal(q.depth, 1);
  const third = q.rejectWhere((t) => t === 'a', Object.assign(new Error('down'), { code: 'KERF_ERR_UPSTREAM' }) as never);
  assert.equal(third, 1);
  await assert.rejects(second, /down/);
  release();
  assert.equal(await first, 1);
});

test('metrics render as Prometheus text', () => {
  const r = new Registry();
  r.counter('c_total', 'a counter').inc({ k: 'v"x' }, 2);
  const h = r.histogram('h_seconds', 'a histogram', [0.1, 1]);
  h.observe(0.05); h.observe(0.5); h.observe(5);
  const text = r.render();
  assert.match(text, /# TYPE c_total counter\nc_total\{k="v\\"x"\} 2\n/);
  assert.match(text, /h_seconds_bucket\{le="0.1"\} 1\nh_seconds_bucket\{le="1"\} 2\nh_seconds_bucket\{le="\+Inf"\} 3\nh_seconds_sum 5.55\nh_seconds_count 3/);
});

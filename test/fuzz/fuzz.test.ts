/**
 * Fuzz and property tests (issue 14, item 13) for everything that reads outside bytes: the ONNX
 * parser, OIP JSON and binary requests, tier frames, network/cluster YAML and JSON, profiles.
 * Every generated case must either be accepted or end in a KERF_ERR_* error: never a TypeError,
 * RangeError or other internal error, never a hang. Seeds are fixed, so a failure reproduces
 * (fast-check prints the seed and the shrunk counterexample).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isKerfError } from '../../src/errors.js';
import { parseModel } from '../../src/graph/model.js';
import { parseInferRequest, encodeInferRequest, type TensorMeta } from '../../src/serve/oip.js';
import { FrameDecoder, encodeFrame, parseFrame, type Frame } from '../../src/serve/frames.js';
import { parseNetworkYaml } from '../../src/plan/network-yaml.js';
import { validateCluster } from '../../src/plan/place/cluster.js';
import { checkProfile } from '../../src/profile/schema.js';
import { tinyNet } from '../profile/support.js';

/** Run `fn`; a throw must be a kerf error. Returns the error's code, or 'ok'. */
function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (isKerfError(e)) return e.code;
    throw new Error(`internal error instead of a KERF_ERR_*: ${(e as Error)?.stack ?? String(e)}`);
  }
}

/** Mutations of a valid byte string: flips, overwrites, truncations, splices of random bytes. */
function mutated(base: Uint8Array): fc.Arbitrary<Uint8Array> {
  const edit = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 16 }) }),
  );
  return fc.array(edit, { minLength: 1, maxLength: 6 }).map((edits) => {
    let b = Uint8Array.from(base);
    for (const e of edits) {
      const at = b.length ? e.at % b.length : 0;
      if (e.kind === 'flip') { if (b.length) b[at]! ^= 1 << e.bit; }
      else if (e.kind === 'set') { if (b.length) b[at] = e.v; }
      else if (e.kind === 'cut') b = b.subarray(0, at);
      else { const n = new Uint8Array(b.length + e.bytes.length); n.set(b.subarray(0, at)); n.set(e.bytes, at); n.set(b.subarray(at), at + e.bytes.length); b = n; }
    }
    return b;
  });
}

const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
};

test('fuzz: the ONNX parser ends every mutated or random file in a KERF_ERR_* error or a model', () => {
  const model = tinyNet();
  fc.assert(fc.property(fc.oneof(mutated(model), fc.uint8Array({ maxLength: 512 })), (bytes) => {
    outcome(() => parseModel(bytes, { name: 'fuzz', source: 'fuzz.onnx' }));
  }), { seed: 1401, numRuns: 1500 });
});

const MODEL: TensorMeta[] = [{ name: 'x', dtype: 'float32', shape: [2, 2] }, { name: 'ids', dtype: 'int64', shape: [3] }];

/** JSON-ish values, with the shapes of an infer request likely. */
const jsonValue = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small' },
    fc.constantFrom(null, true, false, 0, -1, 1e300, -0, 2 ** 53, 'x', 'ids', 'FP32', 'INT64', 'BYTES', 'FP16', ''),
    fc.double(), fc.integer(), fc.string({ maxLength: 8 }),
    fc.array(tie('v'), { maxLength: 5 }),
    fc.dictionary(fc.constantFrom('name', 'shape', 'datatype', 'data', 'parameters', 'binary_data_size', 'binary_data', 'binary_data_output', 'inputs', 'outputs', 'id', '__proto__', 'constructor'), tie('v'), { maxKeys: 5 })),
})).v;

const inputLike = fc.record({
  name: fc.constantFrom('x', 'ids', 'y', '', 'constructor'),
  shape: fc.oneof(fc.constant([2, 2]), fc.constant([3]), fc.array(fc.oneof(fc.integer({ min: -2, max: 5 }), fc.constant(1e20)), { maxLength: 3 }), jsonValue),
  datatype: fc.constantFrom('FP32', 'INT64', 'BYTES', 'FP16', 'BOOL', 'nope', 3),
  data: fc.oneof(fc.array(fc.oneof(fc.double(), fc.integer(), fc.boolean(), fc.string({ maxLength: 2 })), { maxLength: 6 }), jsonValue),
  parameters: fc.oneof(fc.record({ binary_data_size: fc.oneof(fc.integer({ min: -4, max: 40 }), fc.double(), fc.constant('16')) }), jsonValue),
}, { requiredKeys: ['name'] });

test('fuzz: OIP infer requests (JSON and binary, with any Inference-Header-Content-Length) end in KERF_ERR_* or parse', () => {
  const body = fc.record({
    inputs: fc.oneof(fc.array(inputLike, { maxLength: 3 }), jsonValue),
    outputs: fc.oneof(fc.constant(undefined), fc.array(fc.record({ name: fc.constantFrom('y', 'z', '') }), { maxLength: 2 }), jsonValue),
    parameters: fc.oneof(fc.constant(undefined), jsonValue),
    id: fc.oneof(fc.constant(undefined), jsonValue),
  }, { requiredKeys: [] });
  fc.assert(fc.property(body, fc.uint8Array({ maxLength: 64 }), fc.oneof(fc.constant(null), fc.integer({ min: -5, max: 400 }), fc.constant(NaN), fc.constant(1e20)), (doc, tail, hl) => {
    const head = Buffer.from(JSON.stringify(doc));
    const bytes = concat([head, tail]);
    const jsonLength = hl === null ? (tail.length ? head.length : null) : hl;
    outcome(() => parseInferRequest(bytes, jsonLength, MODEL, ['y']));
  }), { seed: 1402, numRuns: 2500 });
  // raw bytes that are not JSON at all, and mutations of a valid binary request
  const valid = encodeInferRequest([
    { name: 'x', dtype: 'float32', dims: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    { name: 'ids', dtype: 'int64', dims: [3], data: new BigInt64Array([1n, 2n, 3n]) },
  ], { binaryOutput: true });
  const validBytes = concat([valid.head, ...valid.data]);
  assert.equal(outcome(() => parseInferRequest(validBytes, valid.head.length, MODEL, ['y'])), 'ok');
  fc.assert(fc.property(fc.oneof(mutated(validBytes), fc.uint8Array({ maxLength: 128 })), fc.integer({ min: -2, max: validBytes.length + 2 }), (bytes, hl) => {
    outcome(() => parseInferRequest(bytes, hl, MODEL, ['y']));
    outcome(() => parseInferRequest(bytes, null, MODEL, ['y']));
  }), { seed: 1403, numRuns: 1500 });
});

test('fuzz: tier frames: mutated and random bytes through FrameDecoder and parseFrame end in KERF_ERR_* or frames', () => {
  const frames: Frame[] = [
    { type: 'REQUEST', id: 7, tensors: [{ name: 't', dtype: 'float32', dims: [2, 3], data: new Float32Array(6).fill(1.5) }, { name: 's', dtype: 'int64', dims: [2], data: new BigInt64Array([1n, -2n]) }], meta: { k: 'v' } },
    { type: 'RESPONSE', id: 8, tensors: [{ name: 'u', dtype: 'uint8', dims: [4], data: new Uint8Array([1, 2, 3, 4]) }], meta: {} },
    { type: 'ERROR', id: 9, code: 'KERF_ERR_SHAPE', message: 'bad' },
    { type: 'CONTROL', id: 10, op: 'load', body: new Uint8Array([123, 125]) },
    { type: 'PING', id: 11, payload: new Uint8Array(8) },
    { type: 'CHALLENGE', id: 0, nonce: new Uint8Array(16), info: 'w' },
  ];
  const encoded = frames.map((f) => concat(encodeFrame(f)));
  for (const e of encoded) {
    const raw = new FrameDecoder().push(e);
    assert.equal(raw.length, 1);
    parseFrame(raw[0]!);
  }
  fc.assert(fc.property(fc.oneof(...encoded.map(mutated), fc.uint8Array({ maxLength: 200 })), fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 4 }), (bytes, splits) => {
    outcome(() => {
      const d = new FrameDecoder({ maxFrameBytes: 1 << 20 });
      // in pieces, as a socket delivers them
      let o = 0;
      const raws: Uint8Array[] = [];
      for (const s of splits) { raws.push(...d.push(bytes.subarray(o, o + s))); o += s; }
      raws.push(...d.push(bytes.subarray(o)));
      for (const r of raws) parseFrame(r);
    });
  }), { seed: 1404, numRuns: 2500 });
});

const YAML_SCALARS = ['5', '-5', '0', '1e400', 'fast', 'null', '~', 'true', '[]', '{}', '"8"', '.inf', '0x10', '1_000'];

test('fuzz: network YAML (generated and random text) ends in KERF_ERR_* or a network', () => {
  const key = fc.constantFrom('from', 'to', 'rttMs', 'bandwidthMbps', 'links', 'systems', 'extra', 'rtt', 'bandwidth');
  const link = fc.dictionary(key, fc.oneof(fc.constantFrom(...YAML_SCALARS), fc.constantFrom('pi', 'edge1', 'cloud1')), { maxKeys: 5 })
    .map((o) => `  - {${Object.entries(o).map(([k, v]) => `${k}: ${v}`).join(', ')}}`);
  const doc = fc.tuple(fc.constantFrom('links:', 'links: 3', 'systems:', 'links: []', ''), fc.array(link, { maxLength: 4 })).map(([h, ls]) => `${h}\n${ls.join('\n')}\n`);
  fc.assert(fc.property(fc.oneof(doc, fc.string({ maxLength: 80 }), fc.stringMatching(/^[a-z:{}\[\],\- \n0-9"'&*!|>%@`]{0,60}$/)), (text) => {
    outcome(() => parseNetworkYaml(text, 'fuzz.yaml'));
  }), { seed: 1405, numRuns: 1500 });
  // found by this test: an unknown tag or directive was read as text, with a warning on stderr
  assert.equal(outcome(() => parseNetworkYaml('links:\n  - {from: pi, to: e, rttMs: !slow 5, bandwidthMbps: 8}\n', 'n.yaml')), 'KERF_ERR_NETWORK_FILE');
  assert.equal(outcome(() => parseNetworkYaml('%FOO bar\n---\nlinks: []\n', 'n.yaml')), 'KERF_ERR_NETWORK_FILE');
  assert.equal(outcome(() => parseNetworkYaml('links:\n  - {from: pi, to: e, rttMs: 5, bandwidthMbps: 8}\n', 'n.yaml')), 'ok');
});

test('fuzz: cluster documents and profiles (generated JSON) end in KERF_ERR_* or a value', () => {
  const node = fc.dictionary(fc.constantFrom('name', 'memoryMB', 'cpus', 'speed', 'tier', 'labels', 'bogus'), jsonValue, { maxKeys: 5 });
  const cluster = fc.record({
    schema: fc.constantFrom('kerf.cluster/v1', 'kerf.cluster/v9', 3),
    nodes: fc.oneof(fc.array(node, { maxLength: 3 }), jsonValue),
    links: fc.oneof(fc.array(fc.dictionary(fc.constantFrom('from', 'to', 'bandwidthMbps', 'rttMs'), jsonValue, { maxKeys: 4 }), { maxLength: 3 }), jsonValue),
  }, { requiredKeys: [] });
  fc.assert(fc.property(fc.oneof(cluster, jsonValue), (doc) => { outcome(() => validateCluster(doc, 'fuzz-cluster')); }), { seed: 1406, numRuns: 1000 });
  const block = fc.dictionary(fc.constantFrom('index', 'name', 'latency', 'outputBytes', 'cut', 'median', 'runs'), jsonValue, { maxKeys: 5 });
  const profile = fc.record({
    schema: fc.constantFrom('kerf.profile/v1', 'kerf.profile/v2'),
    model: fc.oneof(fc.record({ name: fc.string({ maxLength: 4 }), inputBytes: jsonValue }), jsonValue),
    system: fc.oneof(fc.record({ name: fc.string({ maxLength: 4 }), tier: fc.constantFrom('device', 'edge', 'cloud', 'x') }), jsonValue),
    blocks: fc.oneof(fc.array(block, { maxLength: 3 }), jsonValue),
  }, { requiredKeys: [] });
  fc.assert(fc.property(fc.oneof(profile, jsonValue), (doc) => { outcome(() => checkProfile(doc, 'fuzz-profile')); }), { seed: 1407, numRuns: 1000 });
});

/**
 * Inputs that used to be taken silently or answered in internal words: each is refused with a
 * stable code and a message that names the field (table-driven, unit level, fast).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { parseIntList, parse } from '../../src/cli/args.js';
import { parseRate, configFromJson, validateConfig } from '../../src/link/index.js';
import { parseNetworkYaml } from '../../src/plan/network-yaml.js';
import { parseInferRequest, type TensorMeta } from '../../src/serve/oip.js';
import { parseModel } from '../../src/graph/model.js';
import { AdaptController } from '../../src/adapt/live.js';
import { ROOT } from '../support/shared.js';
import { join } from 'node:path';

interface Case { what: string; run: () => unknown; code: string; names: RegExp }

const X: TensorMeta[] = [{ name: 'x', dtype: 'float32', shape: [1, 2] }];
const U8: TensorMeta[] = [{ name: 'img', dtype: 'uint8', shape: [2] }];
const body = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o));
const link = (rttMs: unknown, bandwidthMbps: unknown): string => `links:\n  - {from: pi, to: box, rttMs: ${rttMs}, bandwidthMbps: ${bandwidthMbps}}\n`;

const CASES: Case[] = [
  // item 7: silent acceptance
  { what: "--cuts ''", run: () => parseIntList('', '--cuts', { allowEmpty: true }), code: 'KERF_ERR_USAGE', names: /--cuts '': expected comma-separated integers.*--cuts none for no cut/ },
  { what: "--cuts '3,,5'", run: () => parseIntList('3,,5', '--cuts'), code: 'KERF_ERR_USAGE', names: /--cuts '3,,5': item 2 is empty/ },
  { what: "--cuts '3,'", run: () => parseIntList('3,', '--cuts'), code: 'KERF_ERR_USAGE', names: /--cuts '3,': item 2 is empty/ },
  { what: 'kerf link --rate 0', run: () => parseRate('0', '--rate'), code: 'KERF_ERR_USAGE', names: /--rate '0' must be a positive rate .*say 'unlimited'/ },
  { what: '{"rate":"0"}', run: () => configFromJson({ rate: '0' }), code: 'KERF_ERR_CONFIG', names: /link config: rate '0' must be a positive rate/ },
  { what: '{"rateBps":0}', run: () => validateConfig(configFromJson({ rateBps: 0 }), { rateBps: Infinity, delayMs: 0, jitterMs: 0 }), code: 'KERF_ERR_CONFIG', names: /rateBps = 0 must be a positive/ },
  { what: 'network YAML unknown top-level key', run: () => parseNetworkYaml(`${link(5, 50)}systems: [pi]\n`, 'net.yaml'), code: 'KERF_ERR_NETWORK_FILE', names: /net\.yaml: unknown field 'systems'/ },
  { what: 'network YAML unknown link key', run: () => parseNetworkYaml('links:\n  - {from: pi, to: box, rttMs: 5, bandwith: 50}\n', 'net.yaml'), code: 'KERF_ERR_NETWORK_FILE', names: /net\.yaml: links\[0\]: unknown field 'bandwith' \(known: from, to, rttMs, bandwidthMbps\)/ },
  { what: 'network YAML conflicting duplicate', run: () => parseNetworkYaml(`${link(5, 50)}  - {from: pi, to: box, rttMs: 5, bandwidthMbps: 10}\n`, 'net.yaml'), code: 'KERF_ERR_NETWORK_FILE', names: /links\[1\] \(pi → box: 5 ms, 10 Mbit\/s\) conflicts with links\[0\]/ },
  { what: 'network YAML link to itself', run: () => parseNetworkYaml('links:\n  - {from: pi, to: pi, rttMs: 1, bandwidthMbps: 1}\n', 'net.yaml'), code: 'KERF_ERR_NETWORK_FILE', names: /links\[0\] goes from 'pi' to itself/ },
  { what: 'FP32 data of 1e300', run: () => parseInferRequest(body({ inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 1e300] }] }), null, X, []), code: 'KERF_ERR_SHAPE', names: /input 'x': element 1 \(1e\+300\) does not fit FP32/ },
  { what: 'UINT8 data of 300', run: () => parseInferRequest(body({ inputs: [{ name: 'img', shape: [2], datatype: 'UINT8', data: [1, 300] }] }), null, U8, []), code: 'KERF_ERR_SHAPE', names: /input 'img': element 1 \(300\) does not fit UINT8 \(integers 0\.\.255\)/ },
  // item 8: internal words
  { what: 'bandwidthMbps: -5', run: () => parseNetworkYaml(link(5, -5), 'net.yaml'), code: 'KERF_ERR_NETWORK_FILE', names: /links\[0\]\.bandwidthMbps must be a bandwidth in megabits per second > 0, got -5/ },
  { what: 'rttMs: "slow"', run: () => parseNetworkYaml(link('slow', 5), 'net.yaml'), code: 'KERF_ERR_NETWORK_FILE', names: /links\[0\]\.rttMs must be a round-trip time in milliseconds ≥ 0, got "slow"/ },
  { what: 'Inference-Header-Content-Length: abc', run: () => parseInferRequest(body({ inputs: [] }), 'abc', X, []), code: 'KERF_ERR_USAGE', names: /header Inference-Header-Content-Length "abc": expected the JSON header's length in bytes/ },
  { what: 'Inference-Header-Content-Length too long', run: () => parseInferRequest(body({ inputs: [] }), '999', X, []), code: 'KERF_ERR_USAGE', names: /header Inference-Header-Content-Length 999: the JSON header cannot be longer than the 13-byte body/ },
  { what: 'empty ONNX file', run: () => parseModel(new Uint8Array(0), { source: 'm.onnx' }), code: 'KERF_ERR_ONNX_PARSE', names: /m\.onnx: the file is empty \(0 bytes\), not an ONNX model/ },
  { what: 'unknown option', run: () => parse(['--cust', '3'], { cuts: { type: 'string' } }, 'usage: kerf up …'), code: 'KERF_ERR_USAGE', names: /^unknown option --cust \(did you mean --cuts\?\) \(kerf up --help lists the options\)$/ },
  { what: 'option without its value', run: () => parse(['--cuts'], { cuts: { type: 'string' } }, 'usage: kerf up …'), code: 'KERF_ERR_USAGE', names: /^option --cuts needs a value/ },
  { what: 'value for a flag', run: () => parse(['--json=yes'], { json: { type: 'boolean' } }, 'usage: kerf up …'), code: 'KERF_ERR_USAGE', names: /^option --json takes no value/ },
];

test('refusals: each bad input is refused with its code and a message naming the field', () => {
  for (const c of CASES) {
    assert.throws(c.run, (e: Error & { code?: string }) => {
      assert.equal(e.code, c.code, `${c.what}: ${e.message}`);
      assert.match(e.message, c.names, c.what);
      assert.doesNotMatch(e.message, /To specify a positional|rateBps = -|delayMs = null|NaN/, `${c.what}: internal words: ${e.message}`);
      return true;
    }, c.what);
  }
  // what is still accepted
  assert.deepEqual(parseIntList('none', '--cuts', { allowEmpty: true }), []);
  assert.deepEqual(parseIntList(' 3, 5 ', '--cuts'), [3, 5]);
  assert.equal(parseRate('unlimited'), Infinity);
  assert.equal(parseNetworkYaml(`${link(5, 50)}${link(5, 50).slice('links:\n'.length)}  - {from: box, to: pi, rttMs: 5, bandwidthMbps: 10}\n`, 'n.yaml').links.length, 3, 'an identical duplicate and the reverse direction are fine');
  assert.equal(parseInferRequest(body({ inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [3.4e38, -1e-300] }] }), null, X, []).inputs[0]!.data.length, 2);
});

test('adapt log lines speak cut ids only: reasons name splits as cuts, not block boundaries', () => {
  // The mapping only needs the controller's cut table (block boundary b → cut id).
  const c = Object.create(AdaptController.prototype) as AdaptController;
  Object.assign(c, { cutOf: [-1, 17, 43, 80] });
  assert.equal(c.reasonInCuts('gain 31.0% ≥ 20.0%: [1,2] → [2,3]'), 'gain 31.0% ≥ 20.0%: cuts 17,43 → cuts 43,80');
  assert.equal(c.reasonInCuts('best [3] leaves a tier empty'), 'best cuts 80 leaves a tier empty');
  assert.equal(c.reasonInCuts('current placement is the best'), 'current placement is the best');
});

test('kerf up refuses a bad model, cuts and flags before starting anything: one line each, no duplicate', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'kerf.js'), 'up', '--model', '/nonexistent.onnx', '--cuts', '3,,5', '--switch', 'foo', '--threads', '0', '--links', '1mbit/1ms'],
    { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2);
  const lines = r.stderr.trimEnd().split('\n');
  assert.deepEqual(lines, [
    "kerf: --cuts '3,,5': item 2 is empty (expected comma-separated integers, e.g. 3,17)",
    'kerf: --model /nonexistent.onnx: no such file',
    "kerf: --threads '0': expected an integer ≥ 1",
    "kerf: --switch 'foo': expected one of pause-resume, standby, on-demand, hot-swap",
  ]);
  assert.equal(r.stdout, '');
});

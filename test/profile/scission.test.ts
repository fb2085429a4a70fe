import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedPath, ROOT } from '../support/shared.js';
import { readPickle, isPickledObject } from '../../src/profile/pickle.js';
import { parseScissionBenchmark, scissionFileSystem, scissionToProfiles } from '../../src/profile/scission.js';

const DATA = sharedPath('scission/benchmark_data');

// pickle.dumps({'m': [b, b], 'x': [1, -2, 300, 70000, -(2**70), 1.5, True, None, (1, 2), 'é', b'ab', {'__proto__': 1}]})
// where b is a __main__.LayerBenchmark(model='m', input_layer=0, output_layer=3, second_prediction=0.25, output_size=2**40)
const PICKLES: Record<number, string> = {
  0: '286470300a566d0a70310a286c70320a63636f70795f7265670a5f7265636f6e7374727563746f720a70330a28635f5f6d61696e5f5f0a4c6179657242656e63686d61726b0a70340a635f5f6275696c74696e5f5f0a6f626a6563740a70350a4e7470360a5270370a286470380a566d6f64656c0a70390a67310a73566465766963650a7031300a560a7031310a7356696e7075745f6c617965720a7031320a49300a73566f75747075745f6c617965720a7031330a49330a73567365636f6e645f70726564696374696f6e0a7031340a46302e32350a73566f75747075745f73697a650a7031350a4c313039393531313632373737364c0a73626167370a617356780a7031360a286c7031370a49310a61492d320a61493330300a614937303030300a614c2d313138303539313632303731373431313330333432344c0a6146312e350a614930310a614e612849310a49320a747031380a6156e90a7031390a61635f636f646563730a656e636f64650a7032300a285661620a7032310a566c6174696e310a7032320a747032330a527032340a6128647032350a565f5f70726f746f5f5f0a7032360a49310a7361732e',
  3: '80037d71002858010000006d71015d710228635f5f6d61696e5f5f0a4c6179657242656e63686d61726b0a7103298171047d71052858050000006d6f64656c710668015806000000646576696365710758000000007108580b000000696e7075745f6c6179657271094b00580c0000006f75747075745f6c61796572710a4b0358110000007365636f6e645f70726564696374696f6e710b473fd0000000000000580b0000006f75747075745f73697a65710c8a060000000000017562680465580100000078710d5d710e284b014afeffffff4d2c014a701101008a090000000000000000c0473ff8000000000000884e4b014b0286710f5802000000c3a971104302616271117d711258090000005f5f70726f746f5f5f71134b017365752e',
  4: '800495ed000000000000007d94288c016d945d94288c085f5f6d61696e5f5f948c0e4c6179657242656e63686d61726b9493942981947d94288c056d6f64656c9468018c06646576696365948c00948c0b696e7075745f6c61796572944b008c0c6f75747075745f6c61796572944b038c117365636f6e645f70726564696374696f6e94473fd00000000000008c0b6f75747075745f73697a65948a0600000000000175626806658c0178945d94284b014afeffffff4d2c014a701101008a090000000000000000c0473ff8000000000000884e4b014b0286948c02c3a99443026162947d948c095f5f70726f746f5f5f944b017365752e',
};

for (const [proto, hex] of Object.entries(PICKLES)) {
  test(`pickle reader: protocol ${proto} objects, ints, floats, strings, memo`, () => {
    const v = readPickle(Buffer.from(hex, 'hex')) as Record<string, unknown[]>;
    const [a, b] = v.m as unknown[];
    assert.ok(isPickledObject(a));
    assert.equal(a, b, 'memoised object is shared');
    assert.equal(a.name, 'LayerBenchmark');
    assert.deepEqual(a.state, { model: 'm', device: '', input_layer: 0, output_layer: 3, second_prediction: 0.25, output_size: 2 ** 40 });
    const x = v.x!;
    assert.deepEqual(x.slice(0, 9), [1, -2, 300, 70000, -(2n ** 70n), 1.5, true, null, [1, 2]]);
    assert.equal(x[9], 'é');
    const proto = x[11] as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(proto), Object.prototype, '__proto__ key stays data');
    assert.equal(Object.getOwnPropertyDescriptor(proto, '__proto__')?.value, 1);
  });
}

test('pickle reader: truncated and unknown input fail with the file named', () => {
  const bytes = Buffer.from(PICKLES[3]!, 'hex');
  assert.throws(() => readPickle(bytes.subarray(0, 40), 'x.dat'), (e: Error & { code?: string }) => e.code === 'KERF_ERR_IMPORT' && /x\.dat: (truncated|unterminated)/.test(e.message));
  assert.throws(() => readPickle(Buffer.from([0x80, 0x03, 0xff]), 'y.dat'), /y\.dat: unsupported pickle opcode 0xff/);
  assert.throws(() => parseScissionBenchmark(Buffer.from('80034b012e', 'hex'), 'edge-a.dat'), /edge-a\.dat: expected a dict/);
});

test('Scission file names: tier and system as scission_predict.py splits them', () => {
  assert.deepEqual(scissionFileSystem('cloud-6700k(GPU).dat'), { tier: 'cloud', name: '6700k(GPU)' });
  assert.equal(scissionFileSystem('network_stats.csv'), null);
  assert.throws(() => scissionFileSystem('fog-pi.dat'), /TYPE 'fog' is not device, edge or cloud/);
  assert.throws(() => scissionFileSystem('edge-a-b.dat'), /one '-'/);
});

const COUNTS: Record<string, number> = {
  vgg19: 25, xception: 14, resnet50: 24, resnet101: 41, resnet152: 58, resnet50v2: 16, resnet101v2: 16, resnet152v2: 16,
  inception_v3: 19, inceptionresnet_v2: 61, mobilenet: 92, vgg16: 22, mobilenetv2: 66, densenet121: 22, densenet169: 22,
  densenet201: 22, nasnetlarge: 5, nasnetmobile: 5,
};

test('all five Scission .dat files import: 18 models each, Scission block counts, values equal', { skip: !DATA }, () => {
  const files = readdirSync(DATA!).filter((f) => f.endsWith('.dat')).sort();
  assert.equal(files.length, 5);
  for (const f of files) {
    const sys = parseScissionBenchmark(readFileSync(join(DATA!, f)), f);
    assert.equal(sys.models.size, 18, f);
    for (const [m, n] of Object.entries(COUNTS)) assert.equal(sys.models.get(m)?.length, n, `${f} ${m}`);
    const profiles = scissionToProfiles(sys);
    assert.equal(profiles.length, 18);
    for (const p of profiles) {
      assert.equal(p.schema, 'kerf.profile/v1');
      assert.equal(p.granularity, 'imported');
      assert.equal(p.source, 'scission');
      assert.equal(p.system.tier, sys.tier);
      // blocks are contiguous Keras layer ranges
      p.blocks.forEach((b, i) => {
        assert.equal(b.index, i);
        if (i > 0) assert.equal(b.firstLayer, p.blocks[i - 1]!.lastLayer + 1, `${f} ${p.model.name} block ${i}`);
      });
    }
  }
  // values as Python's pickle reads them
  const raspi = parseScissionBenchmark(readFileSync(join(DATA!, 'device-raspi4.dat')), 'device-raspi4.dat');
  assert.deepEqual(raspi.models.get('vgg19')![0], { model: 'vgg19', inputLayer: 0, outputLayer: 1, secondPrediction: 0.07058942317962646, outputSize: 12845184 });
  const gpu = scissionToProfiles(parseScissionBenchmark(readFileSync(join(DATA!, 'cloud-6700k(GPU).dat')), 'cloud-6700k(GPU).dat'));
  const v = gpu.find((p) => p.model.name === 'vgg19')!;
  assert.equal(v.blocks[0]!.latency.median, 0.0008213520050048828);
  assert.equal(v.blocks[0]!.outputBytes, 12845184);
  assert.equal(v.blocks.at(-1)!.lastLayer, 25);
});

test('kerf import scission writes <model>.<system>.profile.json for 5 systems × 18 models', { skip: !DATA }, () => {
  const out = mkdtempSync(join(tmpdir(), 'kerf-import-'));
  try {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'kerf.js'), 'import', 'scission', DATA!, '-o', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /imported 5 systems × 18 models → 90 profiles/);
    const files = readdirSync(out);
    assert.equal(files.length, 90);
    const p = JSON.parse(readFileSync(join(out, 'mobilenet.raspi4.profile.json'), 'utf8'));
    assert.equal(p.blocks.length, 92);
    assert.equal(p.system.tier, 'device');
    const bad = spawnSync(process.execPath, [join(ROOT, 'bin', 'kerf.js'), 'import', 'caffe', DATA!], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown import format 'caffe'/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

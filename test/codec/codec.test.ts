import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isKerfError } from '../../src/errors.js';
import { codecSet, decodeEnvelope, encodeEnvelope, halfBits, losslessPart, parseCodec, type TensorInfo } from '../../src/codec/index.js';
import { mulberry32 } from '../../src/util/prng.js';

const LOSSLESS = ['none', 'lz4', 'zstd-1', 'zstd-9', 'shuffle+lz4', 'shuffle+zstd-3'];
const LOSSY = ['fp16', 'fp16+zstd-1', 'fp16+shuffle+lz4', 'int8', 'int8+zstd-1', 'int8-ch', 'int8-ch+lz4'];
const SIZES: Record<string, number> = { float32: 4, float64: 8, float16: 2, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8, bool: 1, int4: 0.5, uint4: 0.5, string: 0 };

/** Post-ReLU-like float32 activations: about half zeros, the rest smooth positives. */
function activations(n: number, seed = 1): Float32Array {
  const r = mulberry32(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) { const v = Math.sin(i / 37) + (r() - 0.5) * 0.5; x[i] = v > 0 ? v : 0; }
  return x;
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function info(dtype: string, dims: number[]): TensorInfo { return { dtype, dims, elementBytes: SIZES[dtype]! }; }

function rawFor(dtype: string, n: number, r: () => number): Uint8Array {
  if (dtype === 'float32') return bytesOf(activations(n));
  if (dtype === 'float64') return bytesOf(Float64Array.from(activations(n), (v, i) => v * (1 + i * 1e-9)));
  // Low-entropy integers so that lossless stages actually compress.
  const size = Math.max(1, Math.ceil(SIZES[dtype]!));
  const len = dtype.endsWith('4') ? Math.ceil(n / 2) : n * size;
  return Uint8Array.from({ length: len }, (_, i) => (i % size === 0 ? Math.floor(r() * 4) : 0));
}

test('codec names parse to canonical stages; bad names are refused naming the problem', () => {
  assert.equal(parseCodec('zstd').name, 'zstd-1');
  assert.equal(parseCodec('INT8-CH+Shuffle+ZSTD-3').name, 'int8-ch+shuffle+zstd-3');
  assert.equal(losslessPart(parseCodec('fp16+lz4')).name, 'lz4');
  assert.equal(losslessPart(parseCodec('int8')).name, 'none');
  for (const [bad, why] of [['zstd+fp16', 'must come first'], ['shuffle', 'needs a lossless'], ['zstd-0', 'outside'], ['gzip', "unknown stage 'gzip'"], ['none+lz4', 'cannot be combined'], ['lz4+zstd', 'only one'], ['', 'empty']] as const) {
    assert.throws(() => parseCodec(bad), (e: unknown) => isKerfError(e) && e.code === 'KERF_ERR_USAGE' && e.message.includes(why), bad);
  }
  assert.deepEqual(codecSet('none').map((c) => c.name), ['none']);
  assert.ok(codecSet('lossless').every((c) => c.lossy === 'none') && codecSet('lossless').length > 2);
  assert.ok(codecSet('lossy').some((c) => c.lossy === 'int8'));
  assert.deepEqual(codecSet('zstd,lz4,zstd-1').map((c) => c.name), ['none', 'zstd-1', 'lz4']);
});

test('every lossless codec round-trips every dtype bitwise, empty tensors included', () => {
  const r = mulberry32(7);
  for (const dtype of Object.keys(SIZES)) {
    for (const dims of [[0], [2, 0, 3], [1, 3, 17, 5]]) {
      const n = dims.reduce((a, b) => a * b, 1);
      const raw = dtype === 'string' ? new TextEncoder().encode(n ? 'x'.repeat(300) : '') : rawFor(dtype, n, r);
      for (const name of [...LOSSLESS, ...LOSSY]) {
        const c = parseCodec(name);
        // lossy codecs are lossless on every dtype but float32/float64
        if (c.lossy !== 'none' && (dtype === 'float32' || dtype === 'float64')) continue;
        const env = encodeEnvelope(c, raw, info(dtype, dims));
        const back = decodeEnvelope(env, info(dtype, dims), dtype === 'string' ? null : raw.length, `${dtype} ${name}`);
        assert.deepEqual(back, raw, `${dtype} [${dims}] ${name}`);
        assert.equal(back.byteOffset, 0, 'decoded bytes start their own buffer (aligned for any view)');
      }
    }
  }
});

test('lossless codecs compress post-ReLU-like activations (over 1.5x); incompressible data costs only the header', () => {
  const raw = bytesOf(activations(64 * 1024));
  for (const name of ['lz4', 'zstd-1', 'shuffle+zstd-1']) {
    const env = encodeEnvelope(parseCodec(name), raw, info('float32', [64, 1024]));
    assert.ok(raw.length / env.length >= 1.5, `${name}: ratio ${(raw.length / env.length).toFixed(2)}`);
  }
  const r = mulberry32(3);
  const noise = Uint8Array.from({ length: 4096 }, () => Math.floor(r() * 256));
  const env = encodeEnvelope(parseCodec('zstd-3'), noise, info('uint8', [4096]));
  assert.equal(env.length, 16 + noise.length, 'stored raw when compression does not help');
  assert.deepEqual(decodeEnvelope(env, info('uint8', [4096]), 4096, 'noise'), noise);
});

test('fp16: round to nearest even, within 2^-11 relative (2^-25 absolute near zero); NaN, Inf and out-of-range values exact', () => {
  const f = new Float32Array(1); const u = new Uint32Array(f.buffer);
  const h = (v: number): number => { f[0] = v; return halfBits(u[0]!); };
  assert.equal(h(1), 0x3c00); assert.equal(h(-2), 0xc000); assert.equal(h(65504), 0x7bff); assert.equal(h(65520), 0x7c00);
  assert.equal(h(2 ** -24), 0x0001); assert.equal(h(2 ** -25), 0x0000); assert.equal(h(1 + 2 ** -11), 0x3c00, 'tie to even');
  assert.equal(h(1 + 3 * 2 ** -11), 0x3c02, 'tie to even, upward');
  const r = mulberry32(11);
  const n = 20000;
  for (const dtype of ['float32', 'float64'] as const) {
    const x = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
    for (let i = 0; i < n; i++) x[i] = (r() - 0.5) * 2 ** Math.floor(r() * 60 - 35);
    x[0] = NaN; x[1] = Infinity; x[2] = -Infinity; x[3] = 1e6; x[4] = -70000; x[5] = -0; x[6] = 3e-9;
    for (const name of ['fp16', 'fp16+zstd-1', 'fp16+shuffle+lz4']) {
      const raw = bytesOf(x);
      const env = encodeEnvelope(parseCodec(name), raw, info(dtype, [n]));
      const back = decodeEnvelope(env, info(dtype, [n]), raw.length, name);
      const y = dtype === 'float32' ? new Float32Array(back.buffer) : new Float64Array(back.buffer);
      assert.ok(Number.isNaN(y[0]!)); assert.equal(y[1], Infinity); assert.equal(y[2], -Infinity);
      assert.equal(y[3], 1e6); assert.equal(y[4], -70000); assert.ok(Object.is(y[5], -0));
      for (let i = 6; i < n; i++) {
        const a = Math.abs(x[i]!);
        const bound = a >= 2 ** -14 ? a * 2 ** -11 * (1 + 1e-6) : 2 ** -25 * (1 + 1e-6);
        assert.ok(Math.abs(y[i]! - x[i]!) <= bound, `${dtype} ${name} [${i}] ${x[i]} -> ${y[i]}`);
      }
    }
  }
});

test('int8 per tensor and per channel: within scale/2 of each value; NaN and Inf exact; constant tensors exact', () => {
  const dims = [2, 5, 7, 9];
  const n = 2 * 5 * 7 * 9;
  const r = mulberry32(5);
  const x = new Float32Array(n);
  // channels with very different ranges: per-channel must be tighter
  for (let i = 0; i < n; i++) { const ch = Math.floor(i / 63) % 5; x[i] = (r() - 0.3) * 10 ** (ch - 2); }
  x[10] = NaN; x[200] = -Infinity;
  const raw = bytesOf(x);
  const errs: Record<string, number> = {};
  for (const name of ['int8', 'int8+zstd-1', 'int8-ch', 'int8-ch+lz4']) {
    const c = parseCodec(name);
    const back = new Float32Array(decodeEnvelope(encodeEnvelope(c, raw, info('float32', dims)), info('float32', dims), raw.length, name).buffer);
    assert.ok(Number.isNaN(back[10]!)); assert.equal(back[200], -Infinity);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      if (i === 10 || i === 200) continue;
      // the range of x's tensor or channel, finite values only
      let lo = Infinity; let hi = -Infinity;
      for (let j = 0; j < n; j++) {
        if (j === 10 || j === 200 || (c.lossy === 'int8-ch' && Math.floor(j / 63) % 5 !== Math.floor(i / 63) % 5)) continue;
        lo = Math.min(lo, x[j]!); hi = Math.max(hi, x[j]!);
      }
      const bound = (hi - lo) / 510 + Math.abs(x[i]!) * 2 ** -23 + 1e-12;
      const e = Math.abs(back[i]! - x[i]!);
      assert.ok(e <= bound, `${name} [${i}] err ${e} > ${bound}`);
      worst = Math.max(worst, e / 10 ** (Math.floor(i / 63) % 5 - 2));
    }
    errs[name] = worst;
  }
  assert.ok(errs['int8-ch']! < errs['int8']! / 10, `per-channel is tighter on channels of unequal range: ${JSON.stringify(errs)}`);
  const k = new Float32Array(100).fill(3.25);
  const kb = decodeEnvelope(encodeEnvelope(parseCodec('int8'), bytesOf(k), info('float32', [100])), info('float32', [100]), 400, 'const');
  assert.deepEqual(new Float32Array(kb.buffer), k);
  const allNaN = new Float32Array(8).fill(NaN);
  const nb = new Float32Array(decodeEnvelope(encodeEnvelope(parseCodec('int8-ch'), bytesOf(allNaN), info('float32', [2, 4])), info('float32', [2, 4]), 32, 'nan').buffer);
  assert.ok(nb.every((v) => Number.isNaN(v)));
});

test('a huge tensor (32 MB) round-trips losslessly and through int8', () => {
  const n = 8 * 1024 * 1024;
  const x = activations(n, 9);
  const raw = bytesOf(x);
  const env = encodeEnvelope(parseCodec('zstd-1'), raw, info('float32', [n]));
  assert.ok(Buffer.from(decodeEnvelope(env, info('float32', [n]), raw.length, 'huge')).equals(Buffer.from(raw)));
  const q = new Float32Array(decodeEnvelope(encodeEnvelope(parseCodec('int8+lz4'), raw, info('float32', [n])), info('float32', [n]), raw.length, 'huge int8').buffer);
  let lo = Infinity; let hi = -Infinity;
  for (const v of x) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  for (let i = 0; i < n; i += 997) assert.ok(Math.abs(q[i]! - x[i]!) <= (hi - lo) / 510 + 1e-6);
});

test('garbage and truncated envelopes are refused with KERF_ERR_PROTOCOL, never a crash or an allocation beyond the tensor', () => {
  const raw = bytesOf(activations(4096));
  const t = info('float32', [4096]);
  const r = mulberry32(13);
  let refused = 0;
  for (const name of ['lz4', 'zstd-1', 'shuffle+zstd-1', 'fp16+lz4', 'int8+zstd-1', 'int8-ch']) {
    const env = encodeEnvelope(parseCodec(name), raw, info('float32', [4, 1024]));
    const trials: Uint8Array[] = [env.subarray(0, 3), env.subarray(0, env.length - 1), Uint8Array.from({ length: 300 }, () => Math.floor(r() * 256))];
    for (let k = 0; k < 150; k++) {
      const m = env.slice();
      const flips = 1 + Math.floor(r() * 4);
      // mostly the headers and the side data, where a flip must be caught
      for (let j = 0; j < flips; j++) m[Math.floor(r() * Math.min(m.length, k % 2 ? 64 : m.length))] = Math.floor(r() * 256);
      trials.push(m);
    }
    for (const m of trials) {
      try {
        const out = decodeEnvelope(m, info('float32', [4, 1024]), raw.length, name);
        assert.equal(out.length, raw.length, 'whatever decodes has the tensor size');
      } catch (e) {
        assert.ok(isKerfError(e) && e.code === 'KERF_ERR_PROTOCOL', `${name}: ${(e as Error).message}`);
        refused++;
      }
    }
  }
  assert.ok(refused > 300, `refused ${refused}`);
  // A small envelope that claims a huge size is refused before decoding.
  const env = encodeEnvelope(parseCodec('zstd-1'), new Uint8Array(1 << 20), info('uint8', [1 << 20]));
  assert.throws(() => decodeEnvelope(env, info('uint8', [1 << 30]), 1 << 30, 'bomb'), (e: unknown) => isKerfError(e) && e.code === 'KERF_ERR_PROTOCOL');
  assert.throws(() => decodeEnvelope(env, info('string', [1]), null, 'bomb', 1000), (e: unknown) => isKerfError(e) && /exceeds the limit/.test(String(e.message)));
  assert.throws(() => decodeEnvelope(encodeEnvelope(parseCodec('int8'), raw, t), info('int32', [4096]), raw.length, 'int8 on ints'), /lossy stage int8 on a int32 tensor/);
});

test('kerf profile --codecs measures every cut with both methods (trace, the default, and sessions); post-ReLU cuts compress', async () => {
  const { profileModel } = await import('../../src/profile/profile.js');
  const { tinyNet } = await import('../profile/support.js');
  const model = tinyNet();
  for (const method of ['trace', 'sessions'] as const) {
    const p = await profileModel(model, { name: 'tiny', system: 'core', repeats: 2, warmup: 1, method, codecs: ['zstd-1', 'int8'] });
    const cut = p.blocks.filter((b) => b.cutId !== undefined);
    assert.ok(cut.length >= 2, `${method}: ${cut.length} cut blocks`);
    for (const b of p.blocks) {
      const z = b.codecs?.['zstd-1'], q = b.codecs?.int8;
      assert.ok(z && q, `${method}: block ${b.index} has no codec measurements: ${JSON.stringify(b.codecs)}`);
      assert.ok(z.ratio > 0 && z.encodeS >= 0 && z.decodeS >= 0 && !z.lossy, `${method}: block ${b.index} zstd-1 ${JSON.stringify(z)}`);
      assert.equal(q.lossy, true);
    }
    // The tensor after the first ReLU (r0, half zeros on random inputs) compresses.
    const relu = p.blocks.find((b) => b.outputTensors?.length === 1 && b.outputTensors[0] === 'r0');
    if (relu) assert.ok(relu.codecs!['zstd-1']!.ratio > 1.3, `${method}: r0 zstd-1 ratio ${relu.codecs!['zstd-1']!.ratio}`);
  }
});

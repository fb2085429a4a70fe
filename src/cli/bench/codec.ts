/**
 * `kerf bench codec`: what the wire codecs do on real activations and to a real split.
 *
 * 1. Per model (PaddleOCR's detector, the demo's model; resnet18 from ../shared) and cut, on the
 *    activations of text images the bench renders itself: ratio, bits per element, zero fraction,
 *    encode/decode MB/s on a whole core and in a child process held to the demo's device share.
 * 2. The hop choice of the planner's one pricing function (src/plan/codec-cost.ts) for the demo
 *    cut at 10, 50, 100 and 1000 Mbit/s, with the measured device-share encode and edge decode.
 * 3. End to end: the demo split (detector, device → edge at the demo cut, device at its CPU share)
 *    served through kerf's link emulator at each rate, per codec: p50/p90 and the ratio to raw
 *    measured in the same run, and whether answers are bitwise equal to the unsplit model.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kerfError } from '../../errors.js';
import { parse } from '../args.js';
import { table } from '../format.js';
import type { HostTensor } from '../../engine/ort.js';
import type { CodecMeasure, CodecSample } from '../../codec/measure.js';
import { FONTS, renderText, sampleText, toTensor } from './text-images.js';

const HELP = `usage: kerf bench codec [options]

Wire codecs on real activations (PaddleOCR det, resnet18 from ../shared) of text images rendered
here, the planner's hop choice, and the demo split end to end through kerf's link emulator.

options:
  --codecs LIST        codecs to measure (default lz4,zstd-1,zstd-3,shuffle+zstd-1,fp16,fp16+zstd-1,int8,int8+zstd-1,int8-ch+zstd-1)
  --e2e-codecs LIST    codecs served end to end (default none,lz4,zstd-1,fp16+zstd-1,int8+zstd-1,int8+zstd-1/int8+zstd-1)
  --rates LIST         link rates in Mbit/s for the end-to-end runs (default 10,50,100)
  --requests N         requests per end-to-end configuration (default 10)
  --device-cpu F       the device's share of one core (default 0.15, as kerf demo)
  --edge-cpu F         the edge's share (default 0.5, as kerf demo)
  --cut C              the split's cut (default 20, the cut kerf demo plans)
  --e2e-splits LIST    serve these CUT:CODEC splits end to end instead (e.g. 20:none,322:zstd-1,
                       a cut another plan chose); vs raw is then vs the first split of the list
  --e2e-only           only the end-to-end runs (no activation tables)
  --no-e2e             skip the end-to-end runs
  --accuracy           lossy codecs' effect on PaddleOCR det, rec and cls answers instead
  -o, --out FILE       write the results as JSON
  --json               print the results as JSON`;

const OPTIONS = {
  codecs: { type: 'string' }, 'e2e-codecs': { type: 'string' }, rates: { type: 'string' }, requests: { type: 'string' },
  'device-cpu': { type: 'string' }, 'edge-cpu': { type: 'string' }, cut: { type: 'string' }, 'no-e2e': { type: 'boolean' }, 'e2e-splits': { type: 'string' }, 'e2e-only': { type: 'boolean' },
  accuracy: { type: 'boolean' }, out: { type: 'string', short: 'o' }, json: { type: 'boolean' }, child: { type: 'string' },
} as const;

const here = dirname(fileURLToPath(import.meta.url));
const KERF_BIN = resolve(here, '..', '..', '..', '..', 'bin', 'kerf.js');

interface CutRow { model: string; cut: number; bytes: number; elements: number; zeros: number; codecs: (CodecMeasure & { bitsPerElement: number })[] }
interface ShareRow { model: string; cut: number; codec: string; encodeMBs: number; decodeMBs: number }
interface E2eRow { rateMbps: number; cut: number; codec: string; p50: number; p90: number; vsRaw: number; wireBytes: number; equal: number; n: number; failed: number }

export async function run(argv: string[]): Promise<number> {
  const p = parse(argv, OPTIONS, HELP);
  if (!p) return 0;
  const v = p.values;
  if (v.child) return child(v.child);
  if (v.accuracy) {
    const { runAccuracy } = await import('./codec-accuracy.js');
    return runAccuracy(v);
  }
  const { parseCodec, parseHopCodec } = await import('../../codec/index.js');
  const codecs = (v.codecs ?? 'lz4,zstd-1,zstd-3,shuffle+zstd-1,fp16,fp16+zstd-1,int8,int8+zstd-1,int8-ch+zstd-1').split(',').map((c) => parseCodec(c.trim(), '--codecs entry').name);
  const e2eCodecs = (v['e2e-codecs'] ?? 'none,lz4,zstd-1,fp16+zstd-1,int8+zstd-1,int8+zstd-1/int8+zstd-1').split(',').map((c) => parseHopCodec(c.trim(), '--e2e-codecs entry').name);
  const num = (s: string | undefined, def: number, flag: string, lo: number, hi: number): number => {
    const x = s === undefined ? def : Number(s);
    if (!(x >= lo && x <= hi)) throw kerfError('KERF_ERR_USAGE', `--${flag} '${s}': expected a number in ${lo}..${hi}`);
    return x;
  };
  const rates = (v.rates ?? '10,50,100').split(',').map((r) => num(r, 0, 'rates', 0.1, 100000));
  const requests = Math.round(num(v.requests, 10, 'requests', 1, 1000));
  const deviceCpu = num(v['device-cpu'], 0.15, 'device-cpu', 0.01, 1);
  const edgeCpu = num(v['edge-cpu'], 0.5, 'edge-cpu', 0.01, 1);
  const demoCut = Math.round(num(v.cut, 20, 'cut', 0, 1e6));
  const say = (s: string): void => { if (!v.json) process.stdout.write(s + '\n'); };
  const command = `kerf bench codec ${argv.join(' ')}`.trim();

  const { ocrDetector } = await import('../demo-model.js');
  const splits = v['e2e-splits'] === undefined ? e2eCodecs.map((codec) => ({ cut: demoCut, codec })) : v['e2e-splits'].split(',').map((x) => {
    const [c, codec, more] = x.trim().split(':');
    if (more !== undefined || codec === undefined) throw kerfError('KERF_ERR_USAGE', `--e2e-splits entry '${x}': expected CUT:CODEC`);
    return { cut: Math.round(num(c, 0, 'e2e-splits cut', 0, 1e6)), codec: parseHopCodec(codec, '--e2e-splits codec').name };
  });
  const sayE2e = (e2e: E2eRow[]): void => {
    if (!e2e.length) return;
    say(`\ndemo split (det, device ${deviceCpu} core, edge ${edgeCpu}) through kerf's link emulator, ${requests} requests each; vs raw = ${v['e2e-splits'] ? `the first split's (cut ${splits[0]!.cut} ${splits[0]!.codec})` : 'raw'} p50 ÷ this p50 (same run)`);
    say(table(['Mbit/s', 'cut', 'codec', 'p50 ms', 'p90 ms', 'vs raw', 'bytes to edge/req', 'bitwise = unsplit'],
      e2e.map((r) => [String(r.rateMbps), String(r.cut), r.codec, (r.p50 * 1000).toFixed(1), (r.p90 * 1000).toFixed(1), `${r.vsRaw.toFixed(2)}×`, String(Math.round(r.wireBytes)), `${r.equal}/${r.n}${r.failed ? ` (${r.failed} failed)` : ''}`])));
  };
  if (v['e2e-only']) {
    say(`# ${command}`);
    const e2e = await endToEnd(ocrDetector(), splits, rates, requests, deviceCpu, edgeCpu, say, v['e2e-splits'] !== undefined);
    sayE2e(e2e);
    const result = { command, deviceCpu, edgeCpu, e2e };
    if (v.out) writeFileSync(v.out, JSON.stringify(result, null, 2) + '\n');
    if (v.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    return 0;
  }
  const sharedR18 = resolve(here, '..', '..', '..', '..', '..', 'shared', 'models', 'resnet18.onnx');
  const models: { name: string; file: string; shape: number[]; cuts: 'all' | number[] }[] = [{ name: 'det', file: ocrDetector(), shape: [1, 3, 320, 320], cuts: 'all' }];
  const r18 = existsSync(sharedR18) ? sharedR18 : null;
  if (r18) models.push({ name: 'resnet18', file: r18, shape: [1, 3, 224, 224], cuts: 'all' });
  else say('# SKIP: resnet18: ../shared/models/resnet18.onnx absent');

  // 1. activations at every single-tensor cut, codecs measured on a whole core
  const rows: CutRow[] = [];
  const keep: { model: string; cut: number; samples: CodecSample[] }[] = [];
  const { measureCodec, zeroFraction } = await import('../../codec/measure.js');
  for (const m of models) {
    const acts = await activations(m.file, m.shape, m.cuts);
    for (const a of acts) {
      const elements = a.samples.reduce((s, x) => s + (x.elementBytes ? x.bytes.length / x.elementBytes : 0), 0);
      const ms = codecs.map((c) => { const r = measureCodec(c, a.samples, 5); return { ...r, bitsPerElement: (8 * r.codedBytes) / elements }; });
      rows.push({ model: m.name, cut: a.cut, bytes: a.samples.reduce((s, x) => s + x.bytes.length, 0), elements, zeros: zeroFraction(a.samples), codecs: ms });
      if ((m.name === 'det' && [demoCut, 322, 326].includes(a.cut)) || (m.name === 'resnet18' && keep.filter((k) => k.model === 'resnet18').length < 3 && a.cut % 5 === 3)) keep.push({ model: m.name, cut: a.cut, samples: a.samples });
    }
  }
  say(`# ${command}`);
  say(`ratio (raw ÷ coded) per codec on the activations of rendered text images, one run; zeros = exact 0.0 among floats`);
  say(table(['model', 'cut', 'bytes', 'zeros', ...codecs], rows.map((r) => [r.model, String(r.cut), String(r.bytes), `${(100 * r.zeros).toFixed(0)}%`, ...r.codecs.map((c) => c.ratio.toFixed(2))])));

  // ...and in a child held to the device's share
  const share = await shareMeasures(keep, codecs, deviceCpu);
  const shareRows: ShareRow[] = share.rows;
  say(`\nencode/decode MB/s (raw MB per second) on a whole core and on the device's share (${share.enforced ? `${deviceCpu} of a core, cgroup quota` : `NOT enforced: ${share.notice}`})`);
  const tr: string[][] = [];
  for (const k of keep) {
    const r = rows.find((x) => x.model === k.model && x.cut === k.cut)!;
    for (const c of r.codecs) {
      const s = shareRows.find((x) => x.model === k.model && x.cut === k.cut && x.codec === c.codec);
      tr.push([k.model, String(k.cut), c.codec, c.ratio.toFixed(2), c.bitsPerElement.toFixed(2), mbs(c.rawBytes, c.encodeS), mbs(c.rawBytes, c.decodeS), s ? s.encodeMBs.toFixed(0) : '-', s ? s.decodeMBs.toFixed(0) : '-']);
    }
  }
  say(table(['model', 'cut', 'codec', 'ratio', 'bits/elem', 'enc MB/s core', 'dec MB/s core', 'enc MB/s share', 'dec MB/s share'], tr));

  // 2. the planner's choice for the demo cut (device-share encode, whole-core decode on the edge)
  const { chooseCodec, breakEvenBytesPerS } = await import('../../plan/codec-cost.js');
  const demo = rows.find((r) => r.model === 'det' && r.cut === demoCut);
  const choices: { rateMbps: number; lossless: string; any: string }[] = [];
  if (demo) {
    const enc = (c: string): number => { const s = shareRows.find((x) => x.model === 'det' && x.cut === demoCut && x.codec === c); return s ? demo.bytes / (s.encodeMBs * 1e6) : NaN; };
    const lossless = demo.codecs.filter((c) => !c.lossy);
    const sys = (set: typeof demo.codecs, device: boolean) => ({
      names: set.map((c) => c.codec), lossy: set.map((c) => c.lossy), ratio: set.map((c) => Float64Array.of(c.ratio)),
      encodeS: set.map((c) => Float64Array.of(device ? enc(c.codec) : c.encodeS)), decodeS: set.map((c) => Float64Array.of(c.decodeS)),
    });
    const pick = (set: typeof demo.codecs, mbps: number): string => {
      const pairs = Int32Array.from(set.flatMap((_, k) => [k, k]));
      const ch = chooseCodec(demo.bytes, mbps * 125000, 0, sys(set, true), sys(set, false), pairs);
      return `${ch.codec} (${(ch.seconds * 1000).toFixed(1)} ms)`;
    };
    for (const mbps of [...new Set([...rates, 1000])]) choices.push({ rateMbps: mbps, lossless: pick(lossless, mbps), any: pick(demo.codecs, mbps) });
    say(`\nplanner's hop choice for det cut ${demoCut} (${demo.bytes} bytes; encode at the device share, decode on a whole core; raw = none)`);
    say(table(['Mbit/s', 'lossless', 'lossy allowed'], choices.map((c) => [String(c.rateMbps), c.lossless, c.any])));
    say(table(['codec', 'break-even Mbit/s'], lossless.map((c) => [c.codec, (breakEvenBytesPerS(demo.bytes, c.ratio, enc(c.codec), c.decodeS) / 125000).toFixed(0)])));
  }

  // 3. end to end
  const e2e: E2eRow[] = v['no-e2e'] ? [] : await endToEnd(ocrDetector(), splits, rates, requests, deviceCpu, edgeCpu, say, v['e2e-splits'] !== undefined);
  sayE2e(e2e);
  const result = { command, deviceCpu, edgeCpu, shareEnforced: share.enforced, cuts: rows, share: shareRows, planner: choices, e2e };
  if (v.out) writeFileSync(v.out, JSON.stringify(result, null, 2) + '\n');
  if (v.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  return 0;
}

const mbs = (bytes: number, s: number): string => (s > 0 ? (bytes / s / 1e6).toFixed(0) : '-');

/** The crossing tensors of every single-tensor cut of `file` on a rendered text image. */
export async function activations(file: string, shape: number[], which: 'all' | number[]): Promise<{ cut: number; samples: CodecSample[] }[]> {
  const { prepareModel } = await import('../../engine/prepare.js');
  const { splitModel, serializeModel } = await import('../../graph/slice.js');
  const { Session } = await import('../../engine/ort.js');
  const { dtypeSize } = await import('../../graph/dtypes.js');
  const prep = await prepareModel(file, { inputShapes: { [(await import('../../graph/load.js')).loadModel(file).inputs[0]!.name]: shape } });
  const cutIds = prep.analysis.cuts.filter((c) => c.single && (which === 'all' || which.includes(c.id))).map((c) => c.id);
  const split = splitModel(prep.model, prep.analysis, cutIds);
  const feeds = { [prep.model.inputs[0]!.name]: textInput(shape) };
  let live: Record<string, HostTensor> = feeds;
  const out: { cut: number; samples: CodecSample[] }[] = [];
  for (const part of split.parts) {
    const s = await Session.create(serializeModel(part.proto), { threads: 1, optimization: 'disabled' });
    try {
      const mine: Record<string, HostTensor> = {};
      for (const t of part.inputs) mine[t.name] = live[t.name]!;
      const res = await s.run(mine, part.outputs.map((t) => t.name));
      const next: Record<string, HostTensor> = {};
      for (const t of part.carry) next[t.name] = live[t.name]!;
      for (const t of part.outputs) next[t.name] = res[t.name]!;
      live = next;
    } finally { await s.close(); }
    if (part.index < cutIds.length) {
      out.push({
        cut: cutIds[part.index]!,
        samples: Object.values(live).map((t) => {
          const d = t.data as Float32Array;
          return { dtype: t.dtype, dims: t.dims, elementBytes: dtypeSize(t.dtype), bytes: new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice() };
        }),
      });
    }
  }
  return out;
}

/** A detector-style input: several lines of text on a page, rendered and normalised. */
export function textInput(shape: number[], seed = 1): HostTensor {
  const [, , h, w] = shape as [number, number, number, number];
  return { dtype: 'float32', dims: shape, data: pageTensor(w, h, seed) };
}

/** Lines of text in a few fonts and sizes down a page, with light noise. */
export function pageTensor(w: number, h: number, seed: number): Float32Array {
  const lines: string[] = [];
  let y = 24;
  for (let i = 0; y < h - 8; i++) {
    const size = [18, 26, 14, 32][(i + seed) % 4]!;
    lines.push(`<text x="${8 + (i * 13) % 40}" y="${y}" font-family="${FONTS[(i + seed) % FONTS.length]}" font-size="${size}" fill="rgb(20,24,32)">${sampleText(seed * 31 + i, 2 + (i % 3))}</text>`);
    y += Math.round(size * 1.7);
  }
  const img = renderText({ text: '', width: w, height: h, font: FONTS[0]!, size: 10, noise: 6, seed, extraSvg: lines.join('') });
  return toTensor(img);
}

/** Measure codecs on the kept activations in a child process held to `cpus` of a core. */
async function shareMeasures(keep: { model: string; cut: number; samples: CodecSample[] }[], codecs: string[], cpus: number): Promise<{ rows: ShareRow[]; enforced: boolean; notice?: string }> {
  const { CpuGroup, cpuQuotaUnavailable } = await import('../../serve/cpu.js');
  const why = cpuQuotaUnavailable();
  const dir = mkdtempSync(join(tmpdir(), 'kerf-bench-codec-'));
  try {
    const meta = keep.map((k, i) => ({ model: k.model, cut: k.cut, samples: k.samples.map((s, j) => { writeFileSync(join(dir, `${i}-${j}.bin`), s.bytes); return { dtype: s.dtype, dims: s.dims, elementBytes: s.elementBytes, file: `${i}-${j}.bin` }; }) }));
    writeFileSync(join(dir, 'meta.json'), JSON.stringify({ meta, codecs }));
    const proc = spawn(process.execPath, [KERF_BIN, 'bench', 'codec', '--child', dir], { stdio: ['pipe', 'pipe', 'inherit'] });
    let group: Awaited<ReturnType<typeof CpuGroup.create>> | null = null;
    try {
      if (!why && proc.pid) {
        group = await CpuGroup.create('bench-codec-device', cpus, { periodUs: Math.max(10_000, Math.ceil(1000 / cpus)) });
        await group.add(proc.pid);
      }
      let out = '';
      proc.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
      const done = new Promise<number>((res) => proc.on('exit', (code) => res(code ?? 1)));
      proc.stdin!.end('go\n');
      const code = await done;
      if (code !== 0) throw kerfError('KERF_ERR_REMOTE', `bench codec: the device-share child exited with ${code}`);
      return { rows: JSON.parse(out) as ShareRow[], enforced: group !== null, ...(why ? { notice: why } : {}) };
    } finally {
      if (proc.exitCode === null) proc.kill();
      await group?.remove();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function child(dir: string): Promise<number> {
  await new Promise<void>((res) => process.stdin.once('data', () => res()));
  const { measureCodec } = await import('../../codec/measure.js');
  const { meta, codecs } = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as { meta: { model: string; cut: number; samples: (Omit<CodecSample, 'bytes'> & { file: string })[] }[]; codecs: string[] };
  const rows: ShareRow[] = [];
  for (const m of meta) {
    const samples = m.samples.map((s) => ({ ...s, bytes: new Uint8Array(readFileSync(join(dir, s.file))) }));
    for (const c of codecs) {
      const r = measureCodec(c, samples, 5, 0.3);
      rows.push({ model: m.model, cut: m.cut, codec: r.codec, encodeMBs: r.rawBytes / r.encodeS / 1e6, decodeMBs: r.rawBytes / r.decodeS / 1e6 });
    }
  }
  process.stdout.write(JSON.stringify(rows));
  return 0;
}

/** The demo split served per rate and codec; p50/p90 per configuration. */
async function endToEnd(file: string, splits: { cut: number; codec: string }[], rates: number[], requests: number, deviceCpu: number, edgeCpu: number, say: (s: string) => void, vsFirst: boolean): Promise<E2eRow[]> {
  const { up } = await import('../../serve/up.js');
  const { OipClient } = await import('../../serve/client.js');
  const { prepareModel } = await import('../../engine/prepare.js');
  const { Session } = await import('../../engine/ort.js');
  const { compareOutputs, normalisedBytes } = await import('../../engine/verify.js');
  const shape = [1, 3, 320, 320];
  const prep = await prepareModel(file, { inputShapes: { x: shape } });
  const inputs = Array.from({ length: requests }, (_, i) => ({ x: { dtype: 'float32' as const, dims: shape, data: pageTensor(320, 320, 10 + i) } }));
  const outNames = prep.model.outputs.map((o) => o.name);
  const whole = await Session.create(normalisedBytes(prep), { threads: 1, optimization: 'disabled' });
  const expected: Record<string, HostTensor>[] = [];
  try { for (const f of inputs) expected.push(await whole.run(f, outNames)); } finally { await whole.close(); }
  const rows: E2eRow[] = [];
  for (const rate of rates) {
    let raw = NaN;
    for (const [k, { cut, codec }] of splits.entries()) {
      const h = await up({
        model: file, cuts: [cut], inputShapes: { x: shape }, name: 'det',
        tiers: [{ name: 'device', threads: 1, cpus: deviceCpu }, { name: 'edge', threads: 1, cpus: edgeCpu }],
        links: [{ rateBps: rate * 1e6, delayMs: 2 }], codecs: [codec],
        cpu: { periodUs: Math.max(10_000, Math.ceil(1000 / deviceCpu)) }, log: () => {},
      });
      try {
        const client = new OipClient(h.url, 'det');
        try {
          await client.infer(inputs[0]!);
          const before = h.links[0]!.link.stats().up.bytesIn;
          const times: number[] = [];
          let equal = 0, failed = 0;
          for (const [i, f] of inputs.entries()) {
            const r = await client.infer(f);
            if (r.status !== 200) { failed++; if (failed === 1) say(`  ${rate} Mbit/s ${codec}: ${r.status} ${r.error?.code}: ${r.error?.message}`); continue; }
            times.push(r.seconds);
            if (compareOutputs(expected[i]!, r.outputs, outNames).bitwiseEqual) equal++;
          }
          const after = h.links[0]!.link.stats().up.bytesIn;
          const s = [...times].sort((a, b) => a - b);
          const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
          if (vsFirst ? k === 0 : codec === 'none') raw = q(0.5);
          rows.push({ rateMbps: rate, cut, codec, p50: q(0.5), p90: q(0.9), vsRaw: raw / q(0.5), wireBytes: (after - before) / Math.max(1, times.length), equal, n: inputs.length, failed });
        } finally { client.close(); }
      } finally { await h.close(); }
    }
  }
  return rows;
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, mkdtempSync, copyFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedPath, ROOT } from '../support/shared.js';
import { loadScissionFolder } from '../../src/cli/scission.js';
import { parseNetworkCsv } from '../../src/plan/network.js';
import { pyFixed4, scissionPredict, type ScissionArgs } from '../../src/plan/scission.js';

const DATA = sharedPath('scission/benchmark_data');
const KERF = join(ROOT, 'bin', 'kerf.js');

/** scission_predict.py's argv (after folder) → our arguments. */
function toArgs(argv: string[]): { net: string; args: ScissionArgs } {
  const [net, model, ...rest] = argv as [string, string, ...string[]];
  const a: ScissionArgs = { model };
  const names: Record<string, keyof ScissionArgs> = {
    '-d': 'device', '-e': 'edge', '-c': 'cloud', '--device-upload': 'deviceUpload', '--edge-upload': 'edgeUpload',
    '--device-time': 'deviceTime', '--edge-time': 'edgeTime', '--cloud-time': 'cloudTime',
  };
  for (let i = 0; i < rest.length; i += 2) {
    const f = rest[i]!, v = rest[i + 1]!;
    if (f === '-i') a.inputMB = Number(v);
    else if (f === '--result-count') a.resultCount = Number(v);
    else (a as unknown as Record<string, string>)[names[f]!] = v;
  }
  return { net, args: a };
}

const total = (l: string): string => l.replace(/^\[\d+\] /, '').split('s - ')[0]!;

/** Equal line for line, except that placements tied on the printed total may swap. */
function sameModuloTies(got: string[], want: string[], what: string): void {
  assert.equal(got.length, want.length, `${what}: line count\n${got.join('\n')}`);
  assert.deepEqual(got.map(total), want.map(total), `${what}: totals`);
  const groups = (ls: string[]): string[] => ls.map((l) => `${total(l)}|${l.replace(/^\[\d+\] /, '')}`).sort();
  // a tie at the last rank may be cut differently; compare the others exactly
  const last = total(want[want.length - 1]!);
  const strip = (ls: string[]): string[] => groups(ls.filter((l) => !/^\[\d+\] /.test(l) || total(l) !== last));
  assert.deepEqual(strip(got), strip(want), `${what}\n got:\n${got.join('\n')}\n want:\n${want.join('\n')}`);
}

test('the three example outputs of the Scission README, exactly', { skip: !DATA }, () => {
  const systems = loadScissionFolder(DATA!);
  const net = parseNetworkCsv(readFileSync(join(DATA!, 'network_stats.csv'), 'utf8'));
  const ex1 = scissionPredict(systems, net, { model: 'vgg19', device: '!-1', edge: '10', cloud: '16' });
  assert.deepEqual(ex1, [
    '[+] 5 systems loaded : 1 device, 2 edge, 2 cloud',
    '[+] vgg19 results',
    '[1] 9.0106s - 2.4087MB - Device(raspi4) = 0 - 6, Edge(vm2Core) = 7 - 11, Cloud(6700k(GPU)) = 12 - 25',
    '[2] 9.0594s - 2.4087MB - Device(raspi4) = 0 - 6, Edge(2500) = 7 - 11, Cloud(6700k(GPU)) = 12 - 25',
    '[3] 9.0721s - 2.4087MB - Device(raspi4) = 0 - 6, Edge(vm2Core) = 7 - 11, Cloud(6700k(NoGPU)) = 12 - 25',
    '[4] 9.1209s - 2.4087MB - Device(raspi4) = 0 - 6, Edge(2500) = 7 - 11, Cloud(6700k(NoGPU)) = 12 - 25',
    '[5] 9.1511s - 3.2115MB - Device(raspi4) = 0 - 6, Edge(vm2Core) = 7 - 12, Cloud(6700k(GPU)) = 13 - 25',
  ]);
  const ex2 = scissionPredict(systems, net, { model: 'vgg19' });
  assert.deepEqual(ex2.slice(1), [
    '[+] vgg19 results',
    '[1] 0.8586s - 0.1500MB - Device(raspi4) = -1 - -1, Edge(None) = -1 - -1, Cloud(6700k(GPU)) = 0 - 25',
    '[2] 0.9826s - 0.1500MB - Device(raspi4) = -1 - -1, Edge(None) = -1 - -1, Cloud(6700k(NoGPU)) = 0 - 25',
    '[3] 1.1214s - 0.1500MB - Device(raspi4) = -1 - -1, Edge(vm2Core) = 0 - 25, Cloud(None) = -1 - -1',
    '[4] 1.1255s - 0.2505MB - Device(raspi4) = -1 - -1, Edge(vm2Core) = 0 - 22, Cloud(6700k(GPU)) = 23 - 25',
    '[5] 1.1257s - 0.2505MB - Device(raspi4) = -1 - -1, Edge(vm2Core) = 0 - 21, Cloud(6700k(GPU)) = 22 - 25',
  ]);
  const ex3 = scissionPredict(systems, net, { model: 'mobilenet', deviceUpload: '0.5', edgeTime: '50%' });
  assert.deepEqual(ex3.slice(1), [
    '[+] mobilenet results',
    '[1] 0.3444s - 0.0000MB - Device(raspi4) = 0 - 92, Edge(None) = -1 - -1, Cloud(None) = -1 - -1',
    '[2] 0.4249s - 0.0042MB - Device(raspi4) = 0 - 87, Edge(2500) = 88 - 92, Cloud(None) = -1 - -1',
    '[3] 0.4263s - 0.0042MB - Device(raspi4) = 0 - 88, Edge(2500) = 89 - 92, Cloud(None) = -1 - -1',
    '[4] 0.4264s - 0.0042MB - Device(raspi4) = 0 - 89, Edge(vm2Core) = 90 - 92, Cloud(None) = -1 - -1',
    '[5] 0.4268s - 0.0042MB - Device(raspi4) = 0 - 89, Edge(2500) = 90 - 92, Cloud(None) = -1 - -1',
  ]);
});

test('20 more queries: every criterion kind, both network files, -i, time limits, empty results', { skip: !DATA }, () => {
  // expected lines come from running scission_predict.py's algorithm on these files
  const cases = JSON.parse(readFileSync(join(ROOT, 'test', 'plan', 'scission-oracle.json'), 'utf8')) as { args: string[]; out: string[] }[];
  const systems = loadScissionFolder(DATA!);
  const nets = new Map<string, ReturnType<typeof parseNetworkCsv>>();
  for (const c of cases) {
    const { net, args } = toArgs(c.args);
    if (!nets.has(net)) nets.set(net, parseNetworkCsv(readFileSync(join(DATA!, net), 'utf8'), net));
    sameModuloTies(scissionPredict(systems, nets.get(net)!, args), c.out, c.args.join(' '));
  }
});

test('pyFixed4 rounds exact halves to even, like Python', () => {
  assert.equal(pyFixed4(0.03125), '0.0312');
  assert.equal(pyFixed4(0.09375), '0.0938');
  assert.equal(pyFixed4(1.21875), '1.2188');
  assert.equal(pyFixed4(2.5e-5), '0.0000');
  assert.equal(pyFixed4(0.15), '0.1500');
  assert.equal(pyFixed4(9.010560347785036), '9.0106');
  assert.equal(pyFixed4(-0.03125), '-0.0312');
});

// Parsed .dat files are cached; tests keep theirs out of the user's home.
const CACHE = mkdtempSync(join(tmpdir(), 'kerf-cache-'));

function kerf(args: string[], cwd?: string, cache = CACHE): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [KERF, ...args], { encoding: 'utf8', cwd, env: { ...process.env, KERF_CACHE_DIR: cache } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('kerf scission: the .dat cache gives the same answer, and a damaged entry is ignored and rewritten', { skip: !DATA }, () => {
  const cache = mkdtempSync(join(tmpdir(), 'kerf-cache-'));
  const args = ['scission', DATA!, 'network_stats.csv', 'mobilenet', '--device-upload', '0.5', '--edge-time', '50%'];
  const off = kerf(args, undefined, 'off');
  const cold = kerf(args, undefined, cache);
  const entries = readdirSync(join(cache, 'scission'));
  assert.equal(entries.length, 5, 'one entry per .dat file');
  const warm = kerf(args, undefined, cache);
  writeFileSync(join(cache, 'scission', entries[0]!), '{"v":1,"fileName":');
  const damaged = kerf(args, undefined, cache);
  for (const r of [off, cold, warm, damaged]) assert.equal(r.code, 0, r.err);
  assert.equal(cold.out, off.out);
  assert.equal(warm.out, off.out);
  assert.equal(damaged.out, off.out);
  assert.match(warm.out, /\[1\] 0\.3444s - 0\.0000MB - Device\(raspi4\) = 0 - 92/);
  assert.ok(JSON.parse(readFileSync(join(cache, 'scission', entries[0]!), 'utf8')).v === 1, 'rewritten');
});

test('kerf scission CLI: README example end to end, -d -1 as argparse takes it', { skip: !DATA }, () => {
  const r = kerf(['scission', DATA!, 'network_stats.csv', 'vgg19', '-d', '!-1', '-e', '10', '-c', '16']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.split('\n')[2], '[1] 9.0106s - 2.4087MB - Device(raspi4) = 0 - 6, Edge(vm2Core) = 7 - 11, Cloud(6700k(GPU)) = 12 - 25');
  const u = kerf(['scission', DATA!, 'network_stats.csv', 'vgg19', '-d', '-1', '-e', '-1']);
  assert.equal(u.code, 0, u.err);
  assert.match(u.out, /\[2\] 0\.9826s - 0\.1500MB - Device\(raspi4\) = -1 - -1, Edge\(None\) = -1 - -1, Cloud\(6700k\(NoGPU\)\) = 0 - 25\n$/);
});

test('kerf scission CLI: clear one-line errors', { skip: !DATA }, () => {
  const unknown = kerf(['scission', DATA!, 'network_stats.csv', 'alexnet']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /^kerf: unknown model 'alexnet': .*vgg19/);
  assert.doesNotMatch(unknown.err, /\n\s+at /);
  const bad = kerf(['scission', DATA!, 'network_stats.csv', 'vgg19', '-d', '1,,2']);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /-d\/--device '1,,2': empty item/);
  const time = kerf(['scission', DATA!, 'network_stats.csv', 'vgg19', '--edge-time', 'fast']);
  assert.match(time.err, /--edge-time 'fast'/);
  const dir = mkdtempSync(join(tmpdir(), 'kerf-scission-'));
  try {
    for (const f of ['device-raspi4.dat', 'edge-2500.dat', 'cloud-6700k(GPU).dat']) copyFileSync(join(DATA!, f), join(dir, f));
    writeFileSync(join(dir, 'net.csv'), 'source,destination,ping(ms),bandwidth(mbps)\nraspi4,2500,10,10\n');
    const missing = kerf(['scission', dir, 'net.csv', 'vgg19']);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /system '6700k\(GPU\)' .* is missing from the network file/);
    const nofile = kerf(['scission', dir, 'nope.csv', 'vgg19']);
    assert.match(nofile.err, /nope\.csv: network file not found/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

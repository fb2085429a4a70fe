/**
 * `kerf bench hosts`: serving across hosts vs the same plan on one machine. The model cut in
 * three runs on 3 network-namespace hosts (src/cluster/netns.ts: veth pairs on a bridge, each
 * host's egress held to --mbit by tbf, a `kerf agent` in each) and as child processes of one
 * deployment on this machine with emulated links of the same rate. Sequential requests, rounds
 * alternated so both see the same machine load; every answer checked against the unsplit
 * model's bytes. Prints both p50s (and p95s) and their ratio (issue 15's target: ≤ 1.1).
 * Needs root (namespaces).
 */
import * as http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { kerfError } from '../../errors.js';
import { parse } from '../args.js';
import { table } from '../format.js';
import { quantile, sleep } from './load.js';

const HELP = `usage: kerf bench hosts [--arch resnet18 | --model FILE] [--requests 60] [--rounds 3] [--mbit 100] [--json]

Serving across hosts vs the same plan on one machine: the model cut in three (single-tensor cuts
at 1/3 and 2/3) on 3 network-namespace hosts made for the run (each host's egress held to
--mbit by tc tbf, each running its own kerf agent; the gateway on the first), and the same cuts
as child processes on this machine with emulated links of --mbit. --rounds alternated rounds
of --requests sequential requests on each; every answer checked against the unsplit model.
Prints p50 and p95 of both and the p50 ratio hosts ÷ one machine (target ≤ 1.1). Needs root;
everything it makes is removed when it ends.

options:
  --arch NAME     zoo architecture (default resnet18; see kerf zoo list)
  --model FILE    an ONNX model instead of the zoo's
  --requests N    sequential requests per round and pipeline (default 60; 3 more warm up)
  --rounds N      alternated rounds (default 3)
  --mbit R        each hop's rate, Mbit/s (default 100)
  --json          one JSON line
  -h, --help      this help`;

const OPTIONS = { arch: { type: 'string' }, model: { type: 'string' }, requests: { type: 'string' }, rounds: { type: 'string' }, mbit: { type: 'string' }, json: { type: 'boolean' } } as const;

export interface HostsBenchResult {
  model: string;
  cuts: number[];
  mbit: number;
  rounds: number;
  requests: number;
  hosts: { p50Ms: number; p95Ms: number };
  oneMachine: { p50Ms: number; p95Ms: number };
  p50Ratio: number;
  wrong: number;
}

const here = dirname(fileURLToPath(import.meta.url));
const KERF = resolve(here, '..', '..', '..', '..', 'bin', 'kerf.js');

function positive(flag: string, x: string | undefined, dflt: number, int: boolean): number {
  if (x === undefined) return dflt;
  const n = Number(x);
  if (!(n > 0) || (int && !Number.isInteger(n))) throw kerfError('KERF_ERR_USAGE', `${flag} '${x}': expected a positive ${int ? 'whole ' : ''}number`);
  return n;
}

/** Start `kerf agent` inside a namespace host; resolves with "ip:port" once it listens. */
function agentIn(net: import('../../cluster/netns.js').TestNet, h: import('../../cluster/netns.js').NetHost, token: string, cache: string): Promise<{ proc: ChildProcess; agent: string }> {
  const proc = net.spawn(h, process.execPath, [KERF, 'agent', '--listen', `${h.ip}:7700`, '--token', token, '--cache', cache]);
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  return new Promise((resolvePromise, reject) => {
    let out = '';
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(kerfError('KERF_ERR_TIMEOUT', `bench hosts: the agent of ${h.name} did not start within 30 s: ${err.trim()}`)); }, 30_000);
    proc.once('exit', (c) => { clearTimeout(timer); reject(kerfError('KERF_ERR_UPSTREAM', `bench hosts: the agent of ${h.name} exited (${c}): ${err.trim()}`)); });
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on https?:\/\/(\S+)/.exec(out);
      if (m) { clearTimeout(timer); proc.removeAllListeners('exit'); resolvePromise({ proc, agent: m[1]! }); }
    });
  });
}

export async function run(argv: string[]): Promise<number | void> {
  const p = parse(argv, OPTIONS, HELP, false);
  if (!p) return 0;
  const v = p.values;
  const N = positive('--requests', v.requests, 60, true), ROUNDS = positive('--rounds', v.rounds, 3, true), MBIT = positive('--mbit', v.mbit, 100, false);
  const { TestNet, netnsUnavailable } = await import('../../cluster/netns.js');
  const why = netnsUnavailable();
  if (why) throw kerfError('KERF_ERR_USAGE', `bench hosts: its hosts are network namespaces it makes, and ${why}`);
  const { prepareModel } = await import('../../engine/prepare.js');
  const { Session, normalisedBytes, randomInputs } = await import('../../engine/index.js');
  const { encodeInferRequest } = await import('../../serve/oip.js');
  const { blockCuts } = await import('../../graph/cuts.js');
  const { AgentSubstrate } = await import('../../cluster/agents.js');
  const { LocalSubstrate } = await import('../../cluster/local.js');
  const { deploy } = await import('../../cluster/deploy.js');
  const { validateHosts } = await import('../../cluster/hosts.js');
  const dir = mkdtempSync(join(tmpdir(), 'kerf-bench-hosts-'));
  let model = v.model ? resolve(v.model) : '';
  const arch = v.arch ?? 'resnet18';
  if (!model) {
    const { zooModel } = await import('../../zoo/index.js');
    model = join(dir, `${arch}.onnx`);
    writeFileSync(model, zooModel(arch, { seed: 1 }));
  }
  const name = v.model ? 'model' : arch;
  const prep = await prepareModel(model);
  const ids = blockCuts(prep.analysis, 'single').map((c) => c.id);
  if (ids.length < 2) throw kerfError('KERF_ERR_CUT', `bench hosts: ${model} has fewer than 2 single-tensor cuts; it cannot be cut in three`);
  const cuts = [ids[Math.floor(ids.length / 3)]!, ids[Math.floor((2 * ids.length) / 3)]!];
  // request bodies and the unsplit model's answers
  const inputs = Array.from({ length: 4 }, (_, i) => randomInputs(prep.model, prep.inputShapes, 1000 + i));
  const bodies = inputs.map((feeds) => {
    const { head, data } = encodeInferRequest(Object.entries(feeds).map(([n, t]) => ({ name: n, dtype: t.dtype, dims: t.dims, data: t.data as ArrayBufferView })), { binaryOutput: true });
    return { body: Buffer.concat([head, ...data]), hl: head.length };
  });
  const ref = await Session.create(normalisedBytes(prep), { label: 'reference' });
  const want = await Promise.all(inputs.map(async (feeds) => {
    const out = await ref.run(feeds);
    return Buffer.concat(prep.model.outputs.map((o) => { const d = out[o.name]!.data as ArrayBufferView; return Buffer.from(d.buffer, d.byteOffset, d.byteLength); }));
  })).finally(() => ref.close());
  let wrong = 0;
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const timed = async (url: string, n: number): Promise<number[]> => {
    const ms: number[] = [];
    for (let i = 0; i < n + 3; i++) {
      const k = i % bodies.length;
      const t0 = performance.now();
      const r = await new Promise<{ status: number; body: Buffer; hl: number }>((res, rej) => {
        const req = http.request(`${url}/v2/models/${name}/infer`, { method: 'POST', agent: httpAgent, headers: { 'content-type': 'application/octet-stream', 'content-length': bodies[k]!.body.length, 'inference-header-content-length': bodies[k]!.hl } }, (resp) => {
          const chunks: Buffer[] = [];
          resp.on('data', (c: Buffer) => chunks.push(c));
          resp.on('end', () => res({ status: resp.statusCode!, body: Buffer.concat(chunks), hl: Number(resp.headers['inference-header-content-length'] ?? 0) }));
          resp.on('error', rej);
        });
        req.on('error', rej);
        req.end(bodies[k]!.body);
      });
      const dt = performance.now() - t0;
      if (r.status !== 200) throw kerfError('KERF_ERR_UPSTREAM', `bench hosts: a request to ${url} failed: ${r.status} ${r.body.toString().slice(0, 200)}`);
      if (!r.body.subarray(r.hl).equals(want[k]!)) wrong++;
      if (i >= 3) ms.push(dt);
    }
    return ms;
  };
  const say = (s: string): void => { if (!v.json) process.stderr.write(`${s}\n`); };
  const token = randomBytes(16).toString('hex');
  const hostsMs: number[] = [], localMs: number[] = [];
  const net = await TestNet.create(3, { names: ['device', 'edge', 'cloud'], rateMbit: [MBIT, MBIT, MBIT], prefix: 'kbh', skipLine: (w) => say(`cannot make namespaces: ${w}`) });
  if (!net) { rmSync(dir, { recursive: true, force: true }); throw kerfError('KERF_ERR_USAGE', 'bench hosts: cannot make the network namespaces (see above)'); }
  const agents: ChildProcess[] = [];
  try {
    const where: string[] = [];
    for (const h of net.hosts) {
      const a = await agentIn(net, h, token, join(dir, `cache-${h.name}`));
      agents.push(a.proc);
      where.push(a.agent);
    }
    say(`3 netns hosts, ${MBIT} Mbit/s egress each (tbf): ${net.hosts.map((h, i) => `${h.name} ${where[i]}`).join(', ')}`);
    const hosts = validateHosts({ schema: 'kerf.hosts/v1', token, entry: 'device', hosts: net.hosts.map((h, i) => ({ name: h.name, agent: where[i]! })) });
    const sub = await AgentSubstrate.connect(hosts);
    const local = new LocalSubstrate();
    try {
      const across = await deploy(sub, { model, cuts, hostOf: ['device', 'edge', 'cloud'], name });
      try {
        const one = await deploy(local, { model, cuts, name, links: [{ rateBps: MBIT * 1e6 }, { rateBps: MBIT * 1e6 }] });
        try {
          for (let r = 0; r < ROUNDS; r++) {
            hostsMs.push(...await timed(across.url, N));
            localMs.push(...await timed(one.url, N));
            say(`round ${r + 1}/${ROUNDS}: p50 so far ${quantile(hostsMs, 0.5).toFixed(1)} ms across hosts, ${quantile(localMs, 0.5).toFixed(1)} ms on one machine`);
          }
        } finally { await one.close(); }
      } finally { await across.close(); }
    } finally {
      await sub.close();
      await local.close();
    }
  } finally {
    httpAgent.destroy();
    await Promise.all(agents.map((a) => new Promise<void>((r) => {
      if (a.exitCode !== null || a.signalCode !== null) { r(); return; }
      a.once('exit', () => r());
      a.kill('SIGTERM');
      void sleep(10_000).then(() => { a.kill('SIGKILL'); r(); });
    })));
    await net.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const res: HostsBenchResult = {
    model: v.model ? model : arch, cuts, mbit: MBIT, rounds: ROUNDS, requests: N,
    hosts: { p50Ms: quantile(hostsMs, 0.5), p95Ms: quantile(hostsMs, 0.95) },
    oneMachine: { p50Ms: quantile(localMs, 0.5), p95Ms: quantile(localMs, 0.95) },
    p50Ratio: quantile(hostsMs, 0.5) / quantile(localMs, 0.5), wrong,
  };
  if (v.json) process.stdout.write(JSON.stringify(res) + '\n');
  else {
    const f = (x: number): string => x.toFixed(1);
    process.stdout.write(`${res.model}, cuts ${cuts.join(',')}, ${MBIT} Mbit/s per hop, sequential requests, ${ROUNDS} alternated rounds of ${N}\n\n`);
    process.stdout.write(table(['pipeline', 'requests', 'p50 ms', 'p95 ms'], [
      ['3 netns hosts (agents, tbf)', String(hostsMs.length), f(res.hosts.p50Ms), f(res.hosts.p95Ms)],
      ['one machine (child processes, emulated links)', String(localMs.length), f(res.oneMachine.p50Ms), f(res.oneMachine.p95Ms)],
    ]) + '\n');
    process.stdout.write(`\np50 ratio hosts ÷ one machine: ${res.p50Ratio.toFixed(3)} (target ≤ 1.1: ${res.p50Ratio <= 1.1 ? 'met' : 'MISSED'}); answers not the unsplit model's: ${wrong}\n`);
  }
  return wrong === 0 ? 0 : 1;
}

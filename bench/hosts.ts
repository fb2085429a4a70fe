/**
 * Serving across hosts vs the same plan on one machine with emulated links: resnet18 cut in
 * three, on 3 network-namespace hosts (each agent's egress held to RATE by tbf) and as child
 * processes of one `kerf up` with emulated links of the same rate; p50 and p95 of sequential
 * requests, rounds alternated so both see the same machine load. Needs root and ../shared.
 *
 *   flock /tmp/kerf-heavy.lock node dist/bench/hosts.js [--requests 60] [--rounds 3] [--mbit 100]
 */
import { parseArgs } from 'node:util';
import { prepareModel } from '../src/engine/index.js';
import { AgentSubstrate } from '../src/cluster/agents.js';
import { LocalSubstrate } from '../src/cluster/local.js';
import { deploy, type Deployment } from '../src/cluster/deploy.js';
import { validateHosts } from '../src/cluster/hosts.js';
import { TestNet, netnsUnavailable } from '../test/support/netns.js';
import { sharedPath } from '../test/support/shared.js';
import { inferBinary, inputsFor, thirds } from '../test/serve/serve-helpers.js';
import { CLUSTER_TOKEN, startAgent, type RunningAgent } from '../test/cluster/helpers.js';

const { values } = parseArgs({ options: { requests: { type: 'string' }, rounds: { type: 'string' }, mbit: { type: 'string' } } });
const N = Number(values.requests ?? 60), ROUNDS = Number(values.rounds ?? 3), MBIT = Number(values.mbit ?? 100);
const why = netnsUnavailable();
const model = why ? null : sharedPath('models/resnet18.onnx');
if (why || !model) { process.stdout.write(`# SKIP: ${why ?? 'resnet18 absent'}\n`); process.exit(0); }

const q = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]!; };

async function timed(d: Deployment, feeds: ReturnType<typeof inputsFor>, n: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n + 3; i++) {
    const t0 = performance.now();
    const r = await inferBinary(d.url, d.name, feeds[i % feeds.length]!);
    if (r.status !== 200) throw new Error(`request failed: ${r.status} ${r.error}`);
    if (i >= 3) ms.push(performance.now() - t0);
  }
  return ms;
}

const prep = await prepareModel(model);
const cuts = thirds(prep);
const feeds = inputsFor(prep, 4);
const net = (await TestNet.create(3, { names: ['device', 'edge', 'cloud'], rateMbit: [MBIT, MBIT, MBIT] }))!;
const agents: RunningAgent[] = [];
const hostsMs: number[] = [], localMs: number[] = [];
try {
  for (const h of net.hosts) agents.push(await startAgent({ net, host: h }));
  const hosts = validateHosts({ schema: 'kerf.hosts/v1', token: CLUSTER_TOKEN, entry: 'device', hosts: net.hosts.map((h, i) => ({ name: h.name, agent: agents[i]!.agent })) });
  const sub = await AgentSubstrate.connect(hosts);
  const across = await deploy(sub, { model, cuts, hostOf: ['device', 'edge', 'cloud'] });
  const local = new LocalSubstrate();
  const one = await deploy(local, { model, cuts, links: [{ rateBps: MBIT * 1e6 }, { rateBps: MBIT * 1e6 }] });
  try {
    for (let r = 0; r < ROUNDS; r++) {
      hostsMs.push(...await timed(across, feeds, N));
      localMs.push(...await timed(one, feeds, N));
    }
  } finally {
    await across.close(); await sub.close(); await one.close(); await local.close();
  }
} finally {
  for (const a of agents) a.proc.kill('SIGTERM');
  await net.close();
}
const row = (name: string, xs: number[]): string => `| ${name} | ${xs.length} | ${q(xs, 0.5).toFixed(1)} | ${q(xs, 0.95).toFixed(1)} |`;
process.stdout.write(`resnet18, cuts ${cuts.join(',')}, ${MBIT} Mbit/s per hop, sequential requests, ${ROUNDS} alternated rounds\n\n`);
process.stdout.write(`| pipeline | requests | p50 ms | p95 ms |\n| --- | --- | --- | --- |\n${row('3 netns hosts (agents, tbf)', hostsMs)}\n${row('one machine (child processes, emulated links)', localMs)}\n`);
process.stdout.write(`\np50 ratio hosts / one machine: ${(q(hostsMs, 0.5) / q(localMs, 0.5)).toFixed(3)} (target ≤ 1.1)\n`);

import { writeFile } from 'node:fs/promises';
import { kerfError } from '../errors.js';
import { parse, TLS_OPTIONS } from './args.js';

const HELP = `usage: kerf measure --hosts hosts.yaml -o cluster.yaml [--network net.yaml] [options]

Measure the cluster of a hosts file (kerf.hosts/v1) with its agents: every pair of hosts
measures bandwidth in both directions and RTT between themselves (not through this machine),
pairs that share no host at the same time, --seconds per direction; every host times a
reference block (a resnet18 residual block) on its CPU share, and reports its memory. Writes a
kerf.cluster/v1 file for \`kerf place\` (speed relative to this machine, so a profile taken
here applies; --relative-to HOST: to that host, e.g. where the profile was taken) and, with
--network, a network file for \`kerf plan\` (the hosts are its systems).

options:
  --hosts FILE         the hosts file (kerf.hosts/v1)
  -o, --output FILE    the cluster file to write (.yaml/.yml as YAML, else JSON)
  --network FILE       also write the links as a network file for kerf plan
  --seconds S          seconds per direction per pair (default 1)
  --bench-seconds S    seconds of reference block timing per host (default 1)
  --relative-to HOST   speed 1 = that host's speed (default: this machine)
  --profile FILE       speed 1 = the system of this profile, when a host has its name
  --json               print the measurement as one JSON line
  --tls-ca F [--tls-cert F --tls-key F]   HTTPS to the agents (and between them), verified with
                       this CA; the certificate is this machine's client one (as the hosts file's tls)
  -h, --help           this help

example:
  kerf measure --hosts hosts.yaml -o cluster.yaml --network net.yaml
  kerf place model.onnx --profile model.profile.json --cluster cluster.yaml -o placement.json`;

const OPTIONS = {
  hosts: { type: 'string' }, output: { type: 'string', short: 'o' }, network: { type: 'string' }, seconds: { type: 'string' },
  'bench-seconds': { type: 'string' }, 'relative-to': { type: 'string' }, profile: { type: 'string' }, json: { type: 'boolean' },
  'reference-run': { type: 'string' }, ...TLS_OPTIONS,
} as const;

function seconds(v: string | undefined, flag: string, def: number): number {
  if (v === undefined) return def;
  const x = Number(v);
  if (!(x > 0 && x <= 30)) throw kerfError('KERF_ERR_USAGE', `${flag} '${v}': expected seconds, 0 < S ≤ 30`);
  return x;
}

async function write(file: string, doc: unknown): Promise<void> {
  const text = /\.ya?ml$/i.test(file) ? (await import('yaml')).stringify(doc) : JSON.stringify(doc, null, 2) + '\n';
  try { await writeFile(file, text); } catch (e) {
    throw kerfError('KERF_ERR_FILE', `${file}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

export async function run(argv: string[]): Promise<number | void> {
  const p = parse(argv, OPTIONS, HELP);
  if (!p) return 0;
  const v = p.values;
  if (v['reference-run'] !== undefined) {
    // An agent's child: time the reference block on this process's CPU share.
    const { timeReferenceBlock } = await import('../cluster/reference.js');
    process.stdout.write(JSON.stringify(await timeReferenceBlock(seconds(v['reference-run'], '--reference-run', 1))) + '\n');
    return 0;
  }
  if (!v.hosts) throw kerfError('KERF_ERR_USAGE', `--hosts FILE is required\n${HELP}`);
  if (!v.output && !v.json && !v.network) throw kerfError('KERF_ERR_USAGE', '-o cluster.yaml (or --network net.yaml, or --json) is required');
  const secs = seconds(v.seconds, '--seconds', 1);
  const bench = seconds(v['bench-seconds'], '--bench-seconds', 1);
  const { loadHosts, withTlsFlags } = await import('../cluster/hosts.js');
  const hosts = withTlsFlags(await loadHosts(v.hosts), v);
  let relativeTo = v['relative-to'];
  if (v.profile) {
    const { readFile } = await import('node:fs/promises');
    let system: unknown;
    try { system = (JSON.parse(await readFile(v.profile, 'utf8')) as { system?: { name?: unknown } }).system?.name; } catch (e) {
      throw kerfError('KERF_ERR_FILE', `${v.profile}: cannot read the profile (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    if (typeof system !== 'string' || !hosts.hosts.some((h) => h.name === system)) {
      throw kerfError('KERF_ERR_USAGE', `--profile ${v.profile}: its system '${String(system)}' is not a host of ${v.hosts}; use --relative-to HOST or profile on this machine`);
    }
    relativeTo = system;
  }
  if (relativeTo !== undefined && !hosts.hosts.some((h) => h.name === relativeTo)) throw kerfError('KERF_ERR_USAGE', `--relative-to '${relativeTo}': not a host of ${v.hosts}`);
  const quiet = v.json ?? false;
  const log = (line: string): void => { if (!quiet) process.stderr.write(`kerf measure: ${line}\n`); };
  const { AgentSubstrate } = await import('../cluster/agents.js');
  const { measureHosts, clusterOf, networkOf } = await import('../cluster/measure.js');
  const sub = await AgentSubstrate.connect(hosts, { log });
  let m;
  try {
    let ref: number | undefined;
    if (relativeTo !== undefined) ref = (await sub.request<{ secondsPerRun: number }>(relativeTo, 'POST', '/v1/host/bench', { seconds: bench }, 120_000)).secondsPerRun;
    m = await measureHosts(sub, { seconds: secs, benchSeconds: bench, log, ...(ref !== undefined ? { referenceSecondsPerRun: ref, reference: `host ${relativeTo}` } : {}) });
  } finally {
    await sub.close();
  }
  if (v.output) { await write(v.output, clusterOf(m, hosts.entry)); log(`wrote ${v.output}`); }
  if (v.network) { await write(v.network, networkOf(m)); log(`wrote ${v.network}`); }
  if (v.json) process.stdout.write(JSON.stringify({ schema: 'kerf.measurement/v1', entry: hosts.entry, ...m }) + '\n');
  else {
    for (const l of m.links) process.stdout.write(`${l.from.padEnd(12)} → ${l.to.padEnd(12)} ${l.bandwidthMbps.toFixed(1).padStart(8)} Mbit/s  RTT ${l.rttMs.toFixed(2)} ms\n`);
    for (const h of m.hosts) process.stdout.write(`${h.name.padEnd(12)} speed ${h.speed.toFixed(2)}  ${h.memoryMB} MB  ${h.cpus} CPU${h.held ? ' (held by cgroup)' : ''}\n`);
  }
  return 0;
}

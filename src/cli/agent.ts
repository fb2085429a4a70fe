import { resolve } from 'node:path';
import { kerfError } from '../errors.js';
import { parse, TLS_OPTIONS, tlsFromFlags } from './args.js';

const HELP = `usage: kerf agent [--listen HOST:PORT] [--token T] [--memory-mb M] [--cpus C] [--cache DIR] [--max-model-mb N] [--system NAME] [--tier T]

A host's daemon. Serves profiling jobs on this box for \`kerf profile --remote http://HOST:PORT
--token T …\` (one at a time, so timings never interleave), and runs the stages a controller
(\`kerf up --hosts\`, \`kerf measure --hosts\`) deploys here: parts by content hash (sent once,
cached in --cache), workers started and stopped, health, memory and CPU reports, link and speed
measurements. Controller requests are signed with the token (HMAC; it never crosses the
network). A controller that stops renewing its lease (15 s) has its stages stopped. The first
line on stdout is \`kerf agent listening on http://HOST:PORT\`.
  --listen HOST:PORT   interface and port (default 127.0.0.1:7700; 0.0.0.0:7700 to serve the network;
                       port 0 picks a free one)
  --token T            token clients must present (default: env KERF_AGENT_TOKEN, else a random
                       one, printed on stdout)
  --memory-mb M        memory this host offers stages, MB (default: the host's). A stage is refused
                       (KERF_ERR_MEMORY, with the figures) unless its memory by kerf's memory model fits
                       beside the stages running here; with the cgroup v1 memory controller (root) the
                       stages are also held together to M MB by a memory cgroup (removed on exit)
  --cpus C             cores it offers; stages are held to them with a cgroup CPU quota where
                       cgroups are writable (default: the host's cores, no quota)
  --cache DIR          where parts are cached (default ~/.cache/kerf/parts)
  --max-model-mb N     refuse larger models with 413 (default 512)
  --max-queue N        refuse jobs with 503 when N are already waiting (default 8)
  --system NAME        system name when a client gives none (default: the host name)
  --tier T             device, edge or cloud, when a client gives none
  --tls-cert F --tls-key F   serve HTTPS (kerf profile --remote https://…; a private CA is trusted
                       with NODE_EXTRA_CA_CERTS=ca.pem on the client). The stages a TLS controller
                       (hosts file tls, or kerf up --hosts --tls-ca) starts here serve their tier
                       frames over TLS with the same certificate (it must name this host's address)
  --tls-ca F           also require client certificates signed by this CA (controllers, and the
                       stages of other hosts: mutual TLS between the tiers)`;

const OPTIONS = {
  listen: { type: 'string' }, token: { type: 'string' }, 'max-model-mb': { type: 'string' }, 'max-queue': { type: 'string' },
  system: { type: 'string' }, tier: { type: 'string' }, 'memory-mb': { type: 'string' }, cpus: { type: 'string' }, cache: { type: 'string' }, ...TLS_OPTIONS,
} as const;

export async function run(argv: string[]): Promise<number> {
  const a = parse(argv, OPTIONS, HELP, false);
  if (!a) return 0;
  const v = a.values;
  const m = /^(.*):(\d+)$/.exec(v.listen ?? '127.0.0.1:7700');
  if (!m || Number(m[2]) > 65535) throw kerfError('KERF_ERR_USAGE', `--listen '${v.listen}': expected HOST:PORT, e.g. 0.0.0.0:7700`);
  const host = m[1]!.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  const mb = v['max-model-mb'] ?? '512';
  if (!/^\d+(\.\d+)?$/.test(mb) || Number(mb) <= 0) throw kerfError('KERF_ERR_USAGE', `--max-model-mb '${mb}': expected a positive number`);
  const queue = v['max-queue'] ?? '8';
  if (!/^\d+$/.test(queue)) throw kerfError('KERF_ERR_USAGE', `--max-queue '${queue}': expected a whole number`);
  if (v.tier && !['device', 'edge', 'cloud'].includes(v.tier)) throw kerfError('KERF_ERR_USAGE', `--tier '${v.tier}': expected device, edge or cloud`);
  const num = (flag: string, x: string | undefined): number | undefined => {
    if (x === undefined) return undefined;
    if (!/^\d+(\.\d+)?$/.test(x) || !(Number(x) > 0)) throw kerfError('KERF_ERR_USAGE', `${flag} '${x}': expected a positive number`);
    return Number(x);
  };
  const memoryMB = num('--memory-mb', v['memory-mb']);
  const cpus = num('--cpus', v.cpus);
  const tls = tlsFromFlags(v);
  if (tls && !tls.server) throw kerfError('KERF_ERR_USAGE', '--tls-ca needs --tls-cert and --tls-key: the agent serves HTTPS with them');
  const { Agent, newToken } = await import('../profile/agent.js');
  const { HostDaemon } = await import('../cluster/host.js');
  const given = v.token ?? process.env.KERF_AGENT_TOKEN;
  const token = given || newToken();
  const log = (line: string): void => { process.stderr.write(`kerf agent: ${line}\n`); };
  const daemon = await HostDaemon.create({
    token, host, log, ...(memoryMB !== undefined ? { memoryMB } : {}), ...(cpus !== undefined ? { cpus } : {}), ...(v.cache ? { cacheDir: v.cache } : {}),
    // the stages a TLS controller starts here serve with this agent's certificate
    ...(tls?.server ? { tls: { cert: resolve(v['tls-cert']!), key: resolve(v['tls-key']!), ...(v['tls-ca'] ? { ca: resolve(v['tls-ca']) } : {}) } } : {}),
  });
  const agent = await Agent.start({
    host, port: Number(m[2]), token, maxModelBytes: Number(mb) * 1e6, maxQueue: Number(queue),
    ...(v.system ? { system: v.system } : {}), ...(v.tier ? { tier: v.tier as 'device' } : {}),
    log, daemon, ...(tls?.server ? { tls: tls.server } : {}),
  }).catch(async (e: unknown) => { await daemon.close(); throw e; });
  process.stdout.write(`kerf agent listening on ${agent.url}\n`);
  if (!given) process.stdout.write(`token: ${token}\n`);
  await new Promise<void>((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', stop); process.off('SIGTERM', stop);
      log(`${sig}: stopping every stage`);
      void Promise.all([agent.close(), daemon.close()]).then(() => resolve());
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}

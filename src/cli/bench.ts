import { kerfError } from '../errors.js';

/** `kerf bench <name>`: each benchmark lives in src/cli/bench/<name>.ts exporting run(argv). */
const BENCHES: Record<string, string> = {
  switch: 'live repartitioning: downtime and latency per switching strategy',
  adapt: 'live adaptation on a device → edge → cloud pipeline under bandwidth and load traces',
  'adapt-offline': "adaptation policies replayed on AdaptiveDNN's measured data",
  place: 'cluster placement: kerf vs greedy, random, lower bound and exact optimum',
  pipeline: 'N-stage pipeline throughput vs the placement prediction',
  failover: 'kill a stage\'s host under load: time to serve again (detect/re-plan/deploy/switch), staged vs not',
  rollout: 'roll onto a new model version under load and back: downtime, p99 ratio, extra memory per host',
  blocksum: "profiles' block-sum/whole per model (../shared/models and the zoo) and method",
  codec: 'wire codecs: ratios on real activations, MB/s, the planner\'s choice, the demo split end to end (--accuracy: lossy codecs on OCR answers)',
  dashboard: "the live dashboard's cost on the gateway: p50 and CPU with the page open vs closed",
  hosts: 'serving across 3 network-namespace hosts vs the same cuts on one machine with emulated links: p50 ratio',
  soak: 'minutes at a share of capacity with a live repartition every few seconds: RSS growth per process, lost/wrong, p99 first vs last',
};

export async function run(argv: string[]): Promise<number | void> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    const lines = ['usage: kerf bench <name> [options]', '', 'benchmarks:'];
    for (const [n, s] of Object.entries(BENCHES)) lines.push(`  ${n.padEnd(14)} ${s}`);
    process.stdout.write(lines.join('\n') + '\n');
    return name ? 0 : 2;
  }
  if (!(name in BENCHES)) throw kerfError('KERF_ERR_USAGE', `unknown benchmark '${name}' (one of: ${Object.keys(BENCHES).join(', ')})`);
  const mod = (await import(`./bench/${name}.js`)) as { run(argv: string[]): Promise<number | void> };
  return mod.run(rest);
}

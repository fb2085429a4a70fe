import { isKerfError } from '../errors.js';

/** Each verb lives in its own file exporting `run(argv)`; imported lazily so `kerf inspect`
 * never loads the serving stack. */
interface VerbModule { run(argv: string[]): Promise<number | void>; }

const VERBS: Record<string, { file: string; summary: string }> = {
  inspect: { file: './inspect.js', summary: 'ops, params, FLOPs and the cut table of a model' },
  split: { file: './split.js', summary: 'write runnable sub-models and a manifest (--verify checks them)' },
  profile: { file: './profile.js', summary: 'time every block on this system or a remote agent' },
  agent: { file: './agent.js', summary: "a host's daemon: profiling jobs, and stages for `kerf up --hosts`" },
  measure: { file: './measure.js', summary: 'measure the links and speeds of the hosts of a hosts file' },
  import: { file: './import.js', summary: 'import foreign benchmarks (`kerf import scission DIR -o DIR`)' },
  plot: { file: './plot.js', summary: 'chart per-block latency and output size of profiles' },
  view: { file: './view.js', summary: 'a self-contained HTML report of profiles, plans, placements, benchmarks' },
  zoo: { file: './zoo.js', summary: 'list or export standard architectures with seeded weights' },
  plan: { file: './plan.js', summary: 'rank placements across device, edge and cloud' },
  scission: { file: './scission.js', summary: "Scission's scission_predict.py, same output" },
  worker: { file: './worker.js', summary: 'run one segment of a split model as a tier' },
  gateway: { file: './gateway.js', summary: 'the device tier: Open Inference Protocol front (kerf worker --gateway)' },
  link: { file: './link.js', summary: 'a TCP proxy emulating a network link' },
  up: { file: './up.js', summary: 'start gateway and workers for a plan on this machine' },
  repartition: { file: './repartition.js', summary: 'switch a running pipeline to new cuts or a plan' },
  place: { file: './place.js', summary: 'place a model across a cluster of edge nodes' },
  rollout: { file: './rollout.js', summary: 'roll a running pipeline onto a new model version (or --back) with no downtime' },
  bench: { file: './bench.js', summary: 'benchmarks: switch, adapt, adapt-offline, place, pipeline' },
  demo: { file: './demo.js', summary: 'the whole story on a bundled real model, one command' },
  k8s: { file: './k8s.js', summary: 'Kubernetes manifests: render, install, reconcile, fetch' },
  operator: { file: './operator.js', summary: 'the KerfPipeline operator (in-cluster or a kubeconfig)' },
};

function usage(): string {
  const lines = ['usage: kerf <command> [options]', '', 'commands:'];
  for (const [name, v] of Object.entries(VERBS)) lines.push(`  ${name.padEnd(12)} ${v.summary}`);
  lines.push('', 'Run `kerf <command> --help` for the options of one command.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const [verb, ...rest] = argv;
  if (!verb || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(usage() + '\n');
    process.exitCode = verb ? 0 : 1;
    return;
  }
  if (verb === '--version' || verb === '-v') {
    const { createRequire } = await import('node:module');
    const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };
    process.stdout.write(pkg.version + '\n');
    return;
  }
  const entry = VERBS[verb];
  if (!entry) {
    process.stderr.write(`kerf: unknown command '${verb}'\n\n${usage()}\n`);
    process.exitCode = 2;
    return;
  }
  try {
    const mod = (await import(entry.file)) as VerbModule;
    const code = await mod.run(rest);
    if (typeof code === 'number') process.exitCode = code;
  } catch (e) {
    process.exitCode = reportError(e);
  }
}

/** The one top-level catch: user mistakes print one line, bugs print the stack. */
export function reportError(e: unknown): number {
  if (isKerfError(e)) {
    process.stderr.write(`kerf: ${e.message}\n`);
    return e.code === 'KERF_ERR_USAGE' ? 2 : 1;
  }
  const err = e as { code?: string; message?: string; stack?: string };
  if (err && (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' ||
    err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL')) {
    process.stderr.write(`kerf: ${err.message}\n`);
    return 2;
  }
  process.stderr.write(`kerf: internal error: ${err?.stack ?? String(e)}\n`);
  return 70;
}

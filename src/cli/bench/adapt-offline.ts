import { parse } from '../args.js';
import { kerfError } from '../../errors.js';
import { evaluateOffline, formatOfflineReport, loadAdaptiveDnn } from '../../adapt/index.js';

const HELP = `usage: kerf bench adapt-offline [--data DIR] [--json] [options]

Replays the adaptation policies (bandwidth-only, load-aware, naive one-probe load-aware)
on AdaptiveDNN's measured cuts and reports per network the mean and worst regret against
the measured best cut of every operating condition.

  --data DIR          benchmarking_outputs with outputs_NET/ (default ../shared/adaptivednn/benchmarking_outputs)
  --json              print the report as JSON
  --details           with --json: one record per condition
  --min-gain X        hysteresis: minimum relative gain to switch (default 0.1)
  --probes K          probe cuts per tier besides the cut in use (default 3)
  --estimator NAME    load factor estimator: trimmed (default) or median
  --trim X            fraction trimmed at each end (default 0.1)
`;

function num(v: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!(Number.isFinite(x) && x >= min && x <= max)) throw kerfError('KERF_ERR_USAGE', `${flag} '${v}': expected a number in [${min}, ${max}]`);
  return x;
}

export async function run(argv: string[]): Promise<number | void> {
  const p = parse(argv, {
    data: { type: 'string' }, json: { type: 'boolean' }, details: { type: 'boolean' },
    'min-gain': { type: 'string' }, probes: { type: 'string' }, estimator: { type: 'string' }, trim: { type: 'string' },
  }, HELP, false);
  if (!p) return 0;
  const v = p.values;
  const est = v.estimator ?? 'trimmed';
  if (est !== 'trimmed' && est !== 'median') throw kerfError('KERF_ERR_USAGE', `--estimator '${est}': expected trimmed or median`);
  const probes = num(v.probes, '--probes', 0, 1000);
  if (probes !== undefined && !Number.isInteger(probes)) throw kerfError('KERF_ERR_USAGE', `--probes '${v.probes}': expected an integer`);
  const nets = loadAdaptiveDnn(v.data ?? '../shared/adaptivednn/benchmarking_outputs');
  const report = evaluateOffline(nets, {
    minGain: num(v['min-gain'], '--min-gain', 0, 10), probes, estimator: est, trim: num(v.trim, '--trim', 0, 0.49),
    details: v.details === true,
  });
  process.stdout.write((v.json ? JSON.stringify(report, null, 2) : formatOfflineReport(report)) + '\n');
  return 0;
}

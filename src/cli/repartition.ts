import { kerfError } from '../errors.js';
import { parse, parseIntList } from './args.js';
import { table } from './format.js';
import { CONTROL_HELP, CONTROL_OPTIONS, controlTarget } from './control.js';

const HELP = `usage: kerf repartition --to plan.json [--gateway URL] [--token T]
       kerf repartition --cuts C1,C2 [--gateway URL] [--token T]
       kerf repartition --status [--gateway URL]

Switch a running pipeline (kerf up, kerf worker --gateway) to a new split while it serves:
the gateway prepares the new split with its switch strategy (pause-resume, standby,
on-demand or hot-swap; see kerf up --switch), flips new requests to it, lets requests in
flight finish on the old one, and answers when the old one is released, with its timings.

options:
  --to FILE          a plan (kerf plan -o plan.json): its cuts are used
  --cuts C1,C2       new cut ids of the tier boundaries (as many as the pipeline has)
  --status           show the active split, the standby and the history of switches
  --strategy S       set the gateway's switch strategy first (pause-resume, standby, on-demand, hot-swap)
  --standby C1,C2    with --strategy standby: the split to keep loaded beside the active one
${CONTROL_HELP}
  --json             print the gateway's JSON answer
  -h, --help         this help

example:
  KERF_TOKEN=s3cret kerf up --model resnet18.onnx --cuts 17,33 --port 8000 --switch hot-swap &
  KERF_TOKEN=s3cret kerf repartition --cuts 10,40 --gateway http://127.0.0.1:8000`;

const OPTIONS = {
  to: { type: 'string' }, cuts: { type: 'string' }, status: { type: 'boolean' }, strategy: { type: 'string' },
  standby: { type: 'string' }, json: { type: 'boolean' }, ...CONTROL_OPTIONS,
} as const;

export async function run(argv: string[]): Promise<number | void> {
  const p = parse(argv, OPTIONS, HELP, false);
  if (!p) return 0;
  const v = p.values;
  const { repartition, partitionStatus, setSwitchStrategy, SWITCH_STRATEGIES } = await import('../serve/index.js');
  const { url, token } = controlTarget(v);
  const chosen = [v.to !== undefined, v.cuts !== undefined, v.status === true].filter(Boolean).length;
  if (chosen > 1) throw kerfError('KERF_ERR_USAGE', '--to, --cuts and --status exclude each other');
  if (chosen === 0 && v.strategy === undefined) throw kerfError('KERF_ERR_USAGE', `give --to plan.json, --cuts C1,C2, --status or --strategy\n${HELP}`);
  const out = (s: string): void => { process.stdout.write(s + '\n'); };
  if (v.standby !== undefined && v.strategy !== 'standby') throw kerfError('KERF_ERR_USAGE', '--standby goes with --strategy standby');
  if (v.strategy !== undefined) {
    const s = v.strategy as (typeof SWITCH_STRATEGIES)[number];
    if (!SWITCH_STRATEGIES.includes(s)) throw kerfError('KERF_ERR_USAGE', `--strategy '${v.strategy}': one of ${SWITCH_STRATEGIES.join(', ')}`);
    const st = await setSwitchStrategy(url, s, v.standby !== undefined ? { standby: parseIntList(v.standby, '--standby') } : {}, token);
    if (chosen === 0) {
      if (v.json) out(JSON.stringify(st));
      else out(`kerf repartition: strategy ${st.strategy}${st.standby ? `, standby cuts ${st.standby.cuts.join(',')}` : ''}; active cuts ${st.cuts.join(',')} (${st.version})`);
      return 0;
    }
  }
  if (v.status) {
    const st = await partitionStatus(url);
    if (v.json) { out(JSON.stringify(st)); return 0; }
    out(`${st.model}: cuts ${st.cuts.join(',')} (${st.version}), strategy ${st.strategy}${st.standby ? `, standby cuts ${st.standby.cuts.join(',')} (${st.standby.version})` : ''}${st.switching ? ', switching now' : ''}`);
    out(`tiers: ${st.tiers.map((t) => `${t.name} part ${t.part}`).join(', ') || '(not yet discovered)'}`);
    if (st.history.length) {
      out(table(['version', 'strategy', 'from', 'to', 'prepared', 'downtime ms', 'duration ms', 'at'],
        st.history.map((h) => [h.version, h.strategy, h.from.join(','), h.to.join(','), h.prepared, h.downtimeMs.toFixed(3), h.durationMs.toFixed(1), h.at])));
    }
    return 0;
  }
  let body: { cuts: number[] } | { plan: never };
  if (v.to !== undefined) {
    // The gateway checks it again (same validator) and against its model's sha256.
    const { readJsonFile } = await import('./plan-file.js');
    const { validatePlan } = await import('../plan/validate.js');
    const plan = validatePlan(readJsonFile(v.to), v.to);
    body = { plan: plan as never };
  } else body = { cuts: parseIntList(v.cuts!, '--cuts') };
  const r = await repartition(url, body, token);
  if (v.json) { out(JSON.stringify(r)); return 0; }
  out(`kerf repartition: cuts ${r.from.join(',')} → ${r.to.join(',')} (${r.version}, ${r.strategy}, ${r.prepared}): downtime ${r.downtimeMs.toFixed(3)} ms, ` +
    `prepare ${r.prepareMs.toFixed(1)} ms, drain ${r.drainMs.toFixed(1)} ms, release ${r.releaseMs.toFixed(1)} ms, total ${r.durationMs.toFixed(1)} ms`);
  for (const t of r.tiers) {
    out(`  ${t.tier}: ${t.loadMs.toFixed(1)} ms${t.chunksLoaded !== undefined ? `, chunks loaded ${t.chunksLoaded} (${(t.loadedBytes! / 1e6).toFixed(1)} MB), reused ${t.chunksReused}` : ''}`);
  }
  return 0;
}

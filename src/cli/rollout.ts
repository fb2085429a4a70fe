import { resolve } from 'node:path';
import { kerfError } from '../errors.js';
import { parse, parseIntList } from './args.js';
import { CONTROL_HELP, CONTROL_OPTIONS, controlTarget } from './control.js';

const HELP = `usage: kerf rollout --to new.onnx [--gateway URL] [--token T] [--cuts C1,C2] [--stage-by-stage | --beside]
       kerf rollout --back [--gateway URL] [--token T]
       kerf rollout --status [--gateway URL]

Roll a running pipeline onto another version of its model (same inputs and outputs; any
weights or architecture) while it serves: every tier loads the new version beside the old one,
the gateway flips new requests to it in one step (requests admitted before finish entirely on
the old version, none admitted after is answered by it), then the old version is unloaded.
--back returns to the version served before, the same way. GET /v1/partition shows the
active version (name and sha256).

options:
  --to FILE          the new model file (the same path on every host that runs a part)
  --back             return to the previous version
  --status           show the version served and the previous one
  --cuts C1,C2       the new version's cuts (default: the current ones when the new model has
                     them, else the same share of its blocks)
  --stage-by-stage   stop admitting, unload the old version, load the new one, resume (costs
                     downtime). Default: chosen from the hosts' memory — beside the old version
                     where every host has room for its new part (the memory its agent declares,
                     --memory-mb, and what its machine has available), else stage by stage
  --beside           load beside the old version even where memory says it does not fit
  --upload           send the file to the gateway's machine first (default: when --gateway is
                     not on this machine's loopback); across hosts each worker's host then gets
                     only its part, by content hash, through its agent's part cache
${CONTROL_HELP}
  --json             print the gateway's JSON answer
  -h, --help         this help

example:
  KERF_TOKEN=s3cret kerf up --model v1.onnx --cuts 17,33 --port 8000 &
  KERF_TOKEN=s3cret kerf rollout --to v2.onnx --gateway http://127.0.0.1:8000`;

const OPTIONS = {
  to: { type: 'string' }, back: { type: 'boolean' }, status: { type: 'boolean' }, cuts: { type: 'string' }, 'stage-by-stage': { type: 'boolean' }, beside: { type: 'boolean' }, upload: { type: 'boolean' },
  json: { type: 'boolean' }, ...CONTROL_OPTIONS,
} as const;

export async function run(argv: string[]): Promise<number | void> {
  const p = parse(argv, OPTIONS, HELP, false);
  if (!p) return 0;
  const v = p.values;
  const chosen = [v.to !== undefined, v.back === true, v.status === true].filter(Boolean).length;
  if (chosen !== 1) throw kerfError('KERF_ERR_USAGE', `give one of --to new.onnx, --back or --status\n${HELP}`);
  if (v.cuts !== undefined && v.to === undefined) throw kerfError('KERF_ERR_USAGE', '--cuts goes with --to');
  const { url, token } = controlTarget(v);
  const { rollout, partitionStatus } = await import('../serve/switch-client.js');
  const out = (s: string): void => { process.stdout.write(s + '\n'); };
  if (v.status) {
    const st = await partitionStatus(url);
    if (v.json) { out(JSON.stringify({ modelVersion: st.modelVersion, previousModel: st.previousModel })); return 0; }
    const fmt = (m: { name: string; sha256: string; file: string | null }): string => `${m.name} (sha256 ${m.sha256.slice(0, 16)}…${m.file ? `, ${m.file}` : ''})`;
    out(`serving ${fmt(st.modelVersion)}${st.previousModel ? `; --back returns to ${fmt(st.previousModel)}` : ''}`);
    return 0;
  }
  const { uploadModel } = await import('../serve/switch-client.js');
  let model = v.to !== undefined ? resolve(v.to) : undefined;
  const remote = !/^(127\.|localhost$|\[::1\]$|::1$)/.test(new URL(url).hostname);
  if (model !== undefined && (v.upload ?? remote)) model = (await uploadModel(url, model, token)).file;
  const target = v.back ? { back: true as const } : { model: model!, ...(v.cuts !== undefined ? { cuts: parseIntList(v.cuts, '--cuts') } : {}) };
  if (v.beside && v['stage-by-stage']) throw kerfError('KERF_ERR_USAGE', 'give --beside or --stage-by-stage, not both');
  const r = await rollout(url, { ...target, ...(v['stage-by-stage'] ? { stageByStage: true } : {}), ...(v.beside ? { beside: true } : {}) }, token);
  if (v.json) { out(JSON.stringify(r)); return 0; }
  const ro = r.rollout!;
  out(`kerf rollout: ${ro.from.name} (${ro.from.sha256.slice(0, 12)}…) → ${ro.to.name} (${ro.to.sha256.slice(0, 12)}…), cuts ${r.to.join(',') || 'none'} (${r.version}), ${r.strategy === 'pause-resume' ? 'stage by stage' : 'beside the old version'}`);
  if (ro.way) out(`  ${ro.way.reason}`);
  out(`  prepare ${r.prepareMs.toFixed(0)} ms, downtime ${r.downtimeMs.toFixed(3)} ms, drain ${r.drainMs.toFixed(0)} ms, unload ${r.releaseMs.toFixed(0)} ms, total ${r.durationMs.toFixed(0)} ms`);
  return 0;
}

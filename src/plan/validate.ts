/**
 * The one check of a plan document (`kerf.plan/v1`) before anything serves or splits from it:
 * `kerf up plan.json`, `kerf split --plan`, `kerf repartition --to` (and the gateway's
 * `POST /v1/partition {"plan": …}`) all call `validatePlan`, and `checkPlanModel` when they know
 * the model's bytes. Pure: no I/O, so the CLI and the gateway refuse the same plans with the
 * same words. Errors are KERF_ERR_PLAN and name the file and the field (`tiers[1].blocks`).
 */
import { kerfError } from '../errors.js';
import type { PlanDocument } from './types.js';
import { PLAN_SCHEMA } from './types.js';

const TIERS = ['device', 'edge', 'cloud'] as const;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : JSON.stringify(v) ?? String(v));

/**
 * Check `doc` as a plan and return it typed. What serving and splitting read is checked in
 * full: the schema version, the three tiers (device, edge, cloud in order) with contiguous
 * block ranges from block 0, one cut per boundary between used tiers, strictly increasing,
 * `boundaries` agreeing with the tiers, and a link with a positive rate and a non-negative
 * RTT for every forward transfer. The ranked list is informational and not re-checked.
 */
export function validatePlan(doc: unknown, source = 'plan'): PlanDocument {
  const bad = (field: string, msg: string): never => { throw kerfError('KERF_ERR_PLAN', `${source}: field '${field}' ${msg}`, { field }); };
  if (!isObj(doc)) throw kerfError('KERF_ERR_PLAN', `${source}: not a kerf plan (expected a JSON object with "schema": "${PLAN_SCHEMA}")`);
  if (doc.schema !== PLAN_SCHEMA) {
    if (doc.schema === 'kerf.placement/v1') bad('schema', `is 'kerf.placement/v1': that is a placement (kerf place), not a plan (kerf plan)`);
    bad('schema', `is ${show(doc.schema)}; this kerf reads "${PLAN_SCHEMA}" (write it with kerf plan)`);
  }
  if (typeof doc.model !== 'string' || doc.model === '') bad('model', `must be the model's name, got ${show(doc.model)}`);
  if (doc.modelPath !== undefined && (typeof doc.modelPath !== 'string' || doc.modelPath === '')) bad('modelPath', `must be a path relative to the plan file, got ${show(doc.modelPath)}`);
  if (doc.modelSha256 !== undefined && (typeof doc.modelSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(doc.modelSha256))) {
    bad('modelSha256', `must be 64 lowercase hex digits, got ${show(doc.modelSha256)}`);
  }
  if (!Array.isArray(doc.tiers)) bad('tiers', `must be a list of the 3 tiers (device, edge, cloud), got ${show(doc.tiers)}`);
  const tiers = doc.tiers as unknown[];
  if (tiers.length !== 3) bad('tiers', `must list 3 tiers (device, edge, cloud), got ${tiers.length}`);
  const used: { i: number; first: number; last: number }[] = [];
  tiers.forEach((t, i) => {
    const f = `tiers[${i}]`;
    if (!isObj(t)) bad(f, `must be an object, got ${show(t)}`);
    const tt = t as Record<string, unknown>;
    if (tt.tier !== TIERS[i]) bad(`${f}.tier`, `must be '${TIERS[i]}' (tiers go device, edge, cloud), got ${show(tt.tier)}`);
    if (tt.system !== null && typeof tt.system !== 'string') bad(`${f}.system`, `must be a system name or null, got ${show(tt.system)}`);
    if (tt.computeS !== undefined && !(typeof tt.computeS === 'number' && Number.isFinite(tt.computeS) && tt.computeS >= 0)) {
      bad(`${f}.computeS`, `must be seconds ≥ 0, got ${show(tt.computeS)}`);
    }
    if (tt.blocks === null) return;
    const b = tt.blocks;
    if (!Array.isArray(b) || b.length !== 2 || !b.every((x) => Number.isInteger(x) && x >= 0) || b[0] > b[1]) {
      bad(`${f}.blocks`, `must be [first, last] block indices (first ≤ last) or null for an unused tier, got ${show(b)}`);
    }
    if (tt.system === null) bad(`${f}.system`, `is null but the tier runs blocks ${show(b)}`);
    const [first, last] = b as [number, number];
    const prev = used[used.length - 1];
    const want = prev ? prev.last + 1 : 0;
    if (first !== want) bad(`${f}.blocks`, `starts at block ${first}, expected ${want} (${prev ? `tiers[${prev.i}] ends at block ${prev.last}` : 'the first used tier starts at block 0'})`);
    used.push({ i, first, last });
  });
  if (used.length === 0) bad('tiers', 'leave every tier unused (no tier runs a block)');
  if (!Array.isArray(doc.cuts)) bad('cuts', `must be a list of cut ids, got ${show(doc.cuts)}`);
  const cuts = doc.cuts as unknown[];
  if (cuts.length !== used.length - 1) {
    bad('cuts', `has ${cuts.length} cut id${cuts.length === 1 ? '' : 's'} (${cuts.map(show).join(',')}) but the tiers use ${used.length} tier${used.length === 1 ? '' : 's'} ` +
      `(${used.map((u) => TIERS[u.i]).join(', ')}): one cut between each two used tiers, so ${used.length - 1}`);
  }
  let prevCut = -1;
  cuts.forEach((c, k) => {
    if (c === null) return;
    if (!Number.isInteger(c) || (c as number) < 0) bad(`cuts[${k}]`, `must be a cut id (an integer ≥ 0, see kerf inspect) or null, got ${show(c)}`);
    if ((c as number) <= prevCut) bad(`cuts[${k}]`, `is ${c}, not after the previous cut ${prevCut} (cuts go in pipeline order)`);
    prevCut = c as number;
  });
  if (doc.boundaries !== undefined) {
    const want = used.slice(0, -1).map((u) => u.last);
    const b = doc.boundaries;
    if (!Array.isArray(b) || b.length !== want.length || b.some((x, k) => x !== want[k])) {
      bad('boundaries', `is ${show(b)} but the tiers' blocks end at ${show(want)}`);
    }
  }
  const net = doc.network;
  if (!isObj(net) || !Array.isArray(net.links)) bad('network.links', `must be a list of links {from, to, rttMs, bandwidthMbps}, got ${show(isObj(net) ? net.links : net)}`);
  const links = (net as { links: unknown[] }).links;
  links.forEach((l, k) => {
    const f = `network.links[${k}]`;
    if (!isObj(l)) bad(f, `must be an object, got ${show(l)}`);
    const ll = l as Record<string, unknown>;
    if (typeof ll.from !== 'string' || typeof ll.to !== 'string') bad(`${f}.from`, `and 'to' must be system names, got ${show(ll.from)} → ${show(ll.to)}`);
    if (!(typeof ll.rttMs === 'number' && Number.isFinite(ll.rttMs) && ll.rttMs >= 0)) bad(`${f}.rttMs`, `must be milliseconds ≥ 0, got ${show(ll.rttMs)}`);
    if (!(typeof ll.bandwidthMbps === 'number' && Number.isFinite(ll.bandwidthMbps) && ll.bandwidthMbps > 0)) bad(`${f}.bandwidthMbps`, `must be megabits per second > 0, got ${show(ll.bandwidthMbps)}`);
  });
  if (!Array.isArray(doc.transfers)) bad('transfers', `must be a list, got ${show(doc.transfers)}`);
  (doc.transfers as unknown[]).forEach((t, k) => {
    const f = `transfers[${k}]`;
    if (!isObj(t) || typeof t.from !== 'string' || typeof t.to !== 'string' || (t.kind !== 'forward' && t.kind !== 'return')) {
      bad(f, `must be {from, to, bytes, seconds, kind: forward|return}, got ${show(t)}`);
    }
    const tt = t as { from: string; to: string; kind: string };
    if (tt.kind === 'forward' && !links.some((l) => {
      const ll = l as { from: string; to: string };
      return (ll.from === tt.from && ll.to === tt.to) || (ll.from === tt.to && ll.to === tt.from);
    })) bad(f, `goes ${tt.from} → ${tt.to} but 'network.links' has no link between them`);
  });
  const forward = (doc.transfers as { kind: string }[]).filter((t) => t.kind === 'forward').length;
  // The device always sends: when it runs no block, the input goes to the first used tier.
  const hops = used.length - 1 + (used[0]!.i > 0 ? 1 : 0);
  if (forward > hops) bad('transfers', `has ${forward} forward hops, but the tiers make ${hops} (${used.length} used tier${used.length === 1 ? '' : 's'}${used[0]!.i > 0 ? ', the device sending its input' : ''})`);
  return doc as unknown as PlanDocument;
}

/** What is known of the model a plan is checked against. */
export interface ModelIdentity {
  /** the file's sha256 (hex), when its bytes were read */
  sha256?: string | undefined;
  /** names the model goes by (file name without .onnx, graph name, serving name) */
  names?: readonly (string | undefined)[];
  /** how to call it in a message (its path) */
  label: string;
}

/**
 * Refuse a plan made for another model: by sha256 when the plan records one (`kerf plan` does
 * when given the .onnx file), else by name. Throws KERF_ERR_PLAN naming both files.
 */
export function checkPlanModel(plan: PlanDocument, model: ModelIdentity, source = 'plan'): void {
  if (plan.modelSha256 !== undefined && model.sha256 !== undefined) {
    if (plan.modelSha256 !== model.sha256) {
      throw kerfError('KERF_ERR_PLAN', `${source}: made for another file than ${model.label}: the plan's 'modelSha256' is ${plan.modelSha256.slice(0, 12)}…, ` +
        `${model.label} has sha256 ${model.sha256.slice(0, 12)}…${plan.modelPath ? ` (the plan was made from ${plan.modelPath})` : ''}; ` +
        'pass the model it was planned for (--model), or plan again for this one', { field: 'modelSha256' });
    }
    return;
  }
  const names = (model.names ?? []).filter((n): n is string => typeof n === 'string' && n !== '');
  if (names.length && !names.includes(plan.model)) {
    throw kerfError('KERF_ERR_PLAN', `${source}: the plan's 'model' is '${plan.model}', but ${model.label} is '${names[0]}'; pass the model it was planned for, or plan again for this one`, { field: 'model' });
  }
}

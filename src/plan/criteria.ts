import { kerfError } from '../errors.js';
import type { PlanCriteria, PlanTier, TierCriteria } from './types.js';

export function emptyTierCriteria(): TierCriteria {
  return { includeSystems: [], excludeSystems: [], includeLayers: [], excludeLayers: [] };
}

export function emptyCriteria(): PlanCriteria {
  return { device: emptyTierCriteria(), edge: emptyTierCriteria(), cloud: emptyTierCriteria() };
}

const isDigits = (s: string): boolean => /^[0-9]+$/.test(s);

/**
 * Parse Scission's per-tier criteria (`-d/-e/-c`): a comma list of `N` (layer N runs on this
 * tier), `!N` (it does not), `NAME` (only that system), `!NAME` (not that system), `-1` (tier
 * unused), `!-1` (tier used). Classification follows scission_predict.py, including that any
 * item whose tail after the first character is `-1` counts as `!-1`.
 */
export function parseTierCriteria(spec: string, flag: string, into: TierCriteria = emptyTierCriteria()): TierCriteria {
  for (const raw of spec.split(',')) {
    const c = raw.trim();
    if (c === '') throw kerfError('KERF_ERR_CRITERIA', `${flag} '${spec}': empty item (expected N, !N, NAME, !NAME, -1 or !-1)`);
    if (isDigits(c) || c === '-1') into.includeLayers.push(Number(c));
    else if ((c[0] === '!' && isDigits(c.slice(1))) || c.slice(1) === '-1') into.excludeLayers.push(Number(c.slice(1)));
    else if (c[0] === '!') {
      const name = c.slice(1).trim();
      if (name === '' || name.startsWith('!')) throw kerfError('KERF_ERR_CRITERIA', `${flag} '${spec}': '${c}' names no system`);
      into.excludeSystems.push(name);
    } else {
      if (/^-\d/.test(c)) throw kerfError('KERF_ERR_CRITERIA', `${flag} '${spec}': '${c}' is not a layer (layers are >= 0; -1 means unused)`);
      into.includeSystems.push(c);
    }
  }
  return into;
}

/** `--device-time` etc.: seconds (`0.5`) or a percentage of the total compute (`50%`). */
export function parseTimeLimit(spec: string, flag: string, into: TierCriteria): TierCriteria {
  const s = spec.trim();
  const pct = s.endsWith('%');
  const body = (pct ? s.slice(0, -1) : s).trim();
  const v = body === '' ? NaN : Number(body);
  if (Number.isNaN(v) || !/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$|^[+-]?inf(inity)?$/i.test(body)) {
    throw kerfError('KERF_ERR_CRITERIA', `${flag} '${spec}': expected seconds (e.g. 0.5) or a percentage (e.g. 50%)`);
  }
  const val = /inf/i.test(body) ? (body.startsWith('-') ? -Infinity : Infinity) : v;
  if (pct) into.maxTimePct = val; else into.maxTimeS = val;
  return into;
}

/** Megabytes as Scission counts them (x × 1000 × 1000) from a flag value. */
export function parseMegabytes(spec: string, flag: string): number {
  const v = Number(spec.trim());
  if (spec.trim() === '' || !Number.isFinite(v)) throw kerfError('KERF_ERR_CRITERIA', `${flag} '${spec}': expected megabytes, e.g. 0.5`);
  return v * 1000 * 1000;
}

/** The criteria flags kerf plan and kerf scission share, as strings from the command line. */
export interface CriteriaFlags {
  device?: string | undefined;
  edge?: string | undefined;
  cloud?: string | undefined;
  deviceUpload?: string | undefined;
  edgeUpload?: string | undefined;
  deviceTime?: string | undefined;
  edgeTime?: string | undefined;
  cloudTime?: string | undefined;
  /** kerf: at least N blocks on the device */
  privacy?: string | undefined;
  /** kerf: `tier=MB`, repeatable */
  maxMemory?: string[] | undefined;
}

/** Build {@link PlanCriteria} from command-line strings; every malformed value names its flag. */
export function criteriaFromFlags(f: CriteriaFlags): PlanCriteria {
  const c = emptyCriteria();
  if (f.device !== undefined) parseTierCriteria(f.device, '-d/--device', c.device);
  if (f.edge !== undefined) parseTierCriteria(f.edge, '-e/--edge', c.edge);
  if (f.cloud !== undefined) parseTierCriteria(f.cloud, '-c/--cloud', c.cloud);
  if (f.deviceUpload !== undefined) c.device.maxUploadBytes = parseMegabytes(f.deviceUpload, '--device-upload');
  if (f.edgeUpload !== undefined) c.edge.maxUploadBytes = parseMegabytes(f.edgeUpload, '--edge-upload');
  if (f.deviceTime !== undefined) parseTimeLimit(f.deviceTime, '--device-time', c.device);
  if (f.edgeTime !== undefined) parseTimeLimit(f.edgeTime, '--edge-time', c.edge);
  if (f.cloudTime !== undefined) parseTimeLimit(f.cloudTime, '--cloud-time', c.cloud);
  if (f.privacy !== undefined) {
    if (!/^\d+$/.test(f.privacy.trim())) throw kerfError('KERF_ERR_CRITERIA', `--privacy '${f.privacy}': expected a number of blocks`);
    c.minDeviceBlocks = Number(f.privacy.trim());
  }
  for (const m of f.maxMemory ?? []) {
    const r = /^(device|edge|cloud)=(.+)$/.exec(m.trim());
    if (!r) throw kerfError('KERF_ERR_CRITERIA', `--max-memory '${m}': expected TIER=MB with TIER device, edge or cloud`);
    c[r[1] as PlanTier].maxMemoryBytes = parseMegabytes(r[2]!, '--max-memory');
  }
  return c;
}

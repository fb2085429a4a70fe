/**
 * Reader for AdaptiveDNN's measured partitions (../shared/adaptivednn/benchmarking_outputs):
 * `outputs_NET/weights_ABCDE.txt`, one line per cut `total_s edge_s cloud_s cut_index`.
 * The only file in src/adapt that touches the file system.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { kerfError } from '../errors.js';

/** One measured cut in one operating condition (seconds). */
export interface MeasuredCut {
  cut: number;
  totalS: number;
  edgeS: number;
  cloudS: number;
}

/** All conditions of one network; keys are the five condition digits, e.g. '01002'. */
export interface MeasuredNetwork {
  name: string;
  conditions: Map<string, MeasuredCut[]>;
}

/** Parse one weights file's text; `file` names it in errors. Rows come back sorted by cut. */
export function parseWeightsFile(text: string, file: string): MeasuredCut[] {
  const rows: MeasuredCut[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const f = line.split(/\s+/).map(Number);
    if (f.length !== 4 || f.some((x) => !Number.isFinite(x)) || !Number.isInteger(f[3])) {
      throw kerfError('KERF_ERR_IMPORT', `${file}:${i + 1}: expected 'total_s edge_s cloud_s cut_index', got '${line}'`);
    }
    rows.push({ totalS: f[0]!, edgeS: f[1]!, cloudS: f[2]!, cut: f[3]! });
  }
  if (rows.length === 0) throw kerfError('KERF_ERR_IMPORT', `${file}: no cuts`);
  return rows.sort((a, b) => a.cut - b.cut);
}

/** Load every `outputs_NET/` directory under dir. */
export function loadAdaptiveDnn(dir: string): MeasuredNetwork[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    throw kerfError('KERF_ERR_FILE', `${dir}: cannot read the directory (expected AdaptiveDNN's benchmarking_outputs with outputs_NET/ folders)`);
  }
  const nets: MeasuredNetwork[] = [];
  for (const e of entries.sort()) {
    const m = /^outputs_(.+)$/.exec(e);
    const p = join(dir, e);
    if (!m || !statSync(p).isDirectory()) continue;
    const conditions = new Map<string, MeasuredCut[]>();
    for (const f of readdirSync(p).sort()) {
      const w = /^weights_([012]{5})\.txt$/.exec(f);
      if (!w) continue;
      conditions.set(w[1]!, parseWeightsFile(readFileSync(join(p, f), 'utf8'), join(p, f)));
    }
    if (conditions.size > 0) nets.push({ name: m[1]!, conditions });
  }
  if (nets.length === 0) throw kerfError('KERF_ERR_FILE', `${dir}: no outputs_NET/weights_ABCDE.txt files found`);
  return nets;
}

/**
 * `kerf view`: self-contained HTML reports of kerf's files — profiles, plans, placements and
 * benchmark JSON outputs (switch, adapt, failover and others). One file, every script and style
 * inline, a content policy that forbids any fetch.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { kerfError } from '../errors.js';
import { checkProfile } from '../profile/schema.js';
import { reportPage, type ReportItem } from './page.js';

export type ReportKind = 'profile' | 'plan' | 'placement' | 'bench';

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** What a parsed document is, or an error naming the file and what was expected. */
export function classify(doc: unknown, file: string): ReportKind {
  const schema = isObj(doc) ? doc.schema : undefined;
  if (schema === 'kerf.profile/v1') {
    if (!Array.isArray((doc as { blocks?: unknown }).blocks)) throw kerfError('KERF_ERR_PROFILE', `${file}: profile has no 'blocks' list`);
    return 'profile';
  }
  if (schema === 'kerf.plan/v1') {
    if (!Array.isArray((doc as { ranked?: unknown }).ranked)) throw kerfError('KERF_ERR_PLAN', `${file}: plan has no 'ranked' list`);
    return 'plan';
  }
  if (schema === 'kerf.placement/v1') {
    if (!Array.isArray((doc as { stages?: unknown }).stages)) throw kerfError('KERF_ERR_PLACE', `${file}: placement has no 'stages' list`);
    return 'placement';
  }
  if (typeof schema === 'string') throw kerfError('KERF_ERR_USAGE', `${file}: schema '${schema}' is not one kerf view shows (kerf.profile/v1, kerf.plan/v1, kerf.placement/v1, or a benchmark's JSON)`);
  // Benchmarks: a list of rows (JSON Lines) or a document holding lists of records.
  const rows = Array.isArray(doc) ? doc : isObj(doc) ? Object.values(doc).find((v) => Array.isArray(v) && v.some(isObj)) : undefined;
  if (Array.isArray(rows) && rows.some(isObj)) return 'bench';
  throw kerfError('KERF_ERR_USAGE', `${file}: neither a kerf profile, plan or placement (no "schema") nor a benchmark's JSON output (no list of records)`);
}

/** JSON, or JSON Lines (what `kerf bench … --json` prints, one row a line) as a list. */
export function parseJsonOrLines(text: string, file: string): unknown {
  try { return JSON.parse(text); } catch (first) {
    const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
    if (lines.length > 1) {
      return lines.map((l, i) => {
        try { return JSON.parse(l) as unknown; } catch (e) { throw kerfError('KERF_ERR_USAGE', `${file}: line ${i + 1} is not JSON (${(e as Error).message})`); }
      });
    }
    throw kerfError('KERF_ERR_USAGE', `${file}: not JSON (${(first as Error).message})`);
  }
}

/** Read, check and classify every file; fails on the first bad one before writing anything. */
export async function loadReportItems(files: readonly string[]): Promise<ReportItem[]> {
  if (files.length === 0) throw kerfError('KERF_ERR_USAGE', 'kerf view: give at least one file (profile, plan, placement or benchmark JSON)');
  const items: ReportItem[] = [];
  for (const f of files) {
    let text: string;
    try { text = await readFile(f, 'utf8'); } catch (e) { throw kerfError('KERF_ERR_FILE', `${f}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
    const doc = parseJsonOrLines(text, f);
    const kind = classify(doc, f);
    if (kind === 'profile') checkProfile(doc, f);
    items.push({ file: basename(f), kind, doc });
  }
  return items;
}

/** The report of `files` as one HTML document. */
export async function renderReport(files: readonly string[], title?: string): Promise<string> {
  const items = await loadReportItems(files);
  return reportPage(title ?? `kerf report: ${items.map((i) => i.file).join(', ')}`, items);
}

/** Link traces: a timed list of rate/delay settings, parsed from text with no I/O. */
import { kerfError } from '../errors.js';
import { parseDuration, parseRate } from './units.js';

/** One step of a trace: from `atMs` after the start, the link has these settings. */
export interface TraceStep {
  atMs: number;
  rateBps: number;
  delayMs: number;
  /** absent: keep the current jitter */
  jitterMs?: number;
}

/** A time column: bare numbers are seconds (unlike delays, which are milliseconds). */
function parseTime(tok: string, where: string): number {
  return /^[\d.]+$/.test(tok) ? Number(tok) * 1000 : parseDuration(tok, `${where}: time`, 'KERF_ERR_CONFIG');
}

/**
 * Parse a trace: one step per line, `time rate delay [jitter]`, separated by spaces, tabs or
 * commas; `#` starts a comment; a first line of column names is skipped. Time is seconds
 * from the start (or `1500ms`), rate as for --rate (`10mbit`, bare = bits/s), delay and jitter
 * as for --delay (`20ms`, bare = ms). Times must not decrease.
 */
export function parseTrace(text: string, file = 'trace'): TraceStep[] {
  const steps: TraceStep[] = [];
  const lines = text.split(/\r?\n/);
  let seenData = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/#.*/, '').trim();
    if (!line) continue;
    const toks = line.split(/[\s,;]+/).filter(Boolean);
    const where = `${file}:${i + 1}`;
    if (!seenData && !/^[\d.]/.test(toks[0]!)) { seenData = true; continue; } // header
    seenData = true;
    if (toks.length < 3 || toks.length > 4) {
      throw kerfError('KERF_ERR_CONFIG', `${where}: expected 'time rate delay [jitter]', got '${line}'`);
    }
    const step: TraceStep = {
      atMs: parseTime(toks[0]!, where),
      rateBps: parseRate(toks[1]!, `${where}: rate`, 'KERF_ERR_CONFIG'),
      delayMs: parseDuration(toks[2]!, `${where}: delay`, 'KERF_ERR_CONFIG'),
    };
    if (toks[3] !== undefined) step.jitterMs = parseDuration(toks[3], `${where}: jitter`, 'KERF_ERR_CONFIG');
    const prev = steps[steps.length - 1];
    if (prev && step.atMs < prev.atMs) throw kerfError('KERF_ERR_CONFIG', `${where}: time ${toks[0]} is before the previous step`);
    steps.push(step);
  }
  if (steps.length === 0) throw kerfError('KERF_ERR_CONFIG', `${file}: no steps (expected lines 'time rate delay [jitter]')`);
  return steps;
}

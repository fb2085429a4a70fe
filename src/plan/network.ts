import { kerfError } from '../errors.js';
import type { NetworkLink, Network } from './types.js';

/** Python's round() to an integer: halves go to the even neighbour. */
export function pyRoundInt(v: number): number {
  const f = Math.floor(v);
  const diff = v - f;
  if (diff < 0.5) return f;
  if (diff > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

function link(from: string, to: string, rttMs: number, mbps: number, bytesPerS: number): NetworkLink {
  return { from, to, rttMs, bandwidthMbps: mbps, rttS: rttMs / 1000, bytesPerS };
}

/** Split one CSV line (commas, optional double quotes, "" escapes). */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') { cur += '"'; i++; } else if (ch === '"') quoted = false; else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') { out.push(cur); cur = ''; } else cur += ch;
  }
  out.push(cur);
  return out;
}

function finite(s: string, what: string): number {
  const t = s.trim();
  const v = t === '' ? NaN : Number(t);
  if (!Number.isFinite(v)) throw kerfError('KERF_ERR_NETWORK_FILE', `${what}: '${s}' is not a number`);
  return v;
}

/**
 * Scission's network_stats.csv: a header, then `source,destination,ping(ms),bandwidth(mbps)`.
 * Bandwidth becomes bytes/s as Scission computes it, round(Mbps × 125000).
 */
export function parseNetworkCsv(text: string, source = 'network.csv'): Network {
  const lines = text.split(/\r?\n/);
  const links: NetworkLink[] = [];
  // like Scission, the first line is a header and is skipped unread
  for (let i = 1; i < lines.length; i++) {
    const raw = lines[i]!;
    if (raw.trim() === '') continue;
    const f = csvFields(raw);
    const where = `${source} line ${i + 1}`;
    if (f.length < 4) throw kerfError('KERF_ERR_NETWORK_FILE', `${where}: expected source,destination,ping(ms),bandwidth(mbps), got '${raw}'`);
    const from = f[0]!.trim();
    const to = f[1]!.trim();
    if (!from || !to) throw kerfError('KERF_ERR_NETWORK_FILE', `${where}: empty system name`);
    const ms = finite(f[2]!, `${where} ping(ms)`);
    const mbps = finite(f[3]!, `${where} bandwidth(mbps)`);
    if (ms < 0) throw kerfError('KERF_ERR_NETWORK_FILE', `${where}: ping(ms) ${ms} is negative`);
    const bps = pyRoundInt(mbps * 125000);
    if (!(bps > 0)) throw kerfError('KERF_ERR_NETWORK_FILE', `${where}: bandwidth(mbps) ${mbps} must be positive`);
    links.push(link(from, to, ms, mbps, bps));
  }
  return Object.freeze({ schema: 'kerf.network/v1', format: 'scission-csv', links });
}

/**
 * kerf's network file, parsed from YAML or JSON:
 * `links: [{from: pi4, to: edge1, rttMs: 20, bandwidthMbps: 50}, …]` (a bare list also works).
 * A link serves both directions unless the reverse is listed too.
 */
export function networkFromObject(doc: unknown, source = 'network'): Network {
  const fail = (msg: string): never => { throw kerfError('KERF_ERR_NETWORK_FILE', `${source}: ${msg}`); };
  if (typeof doc === 'object' && doc !== null && !Array.isArray(doc)) {
    for (const k of Object.keys(doc)) if (k !== 'links') fail(`unknown field '${k}' (a network file has only 'links': a list of {from, to, rttMs, bandwidthMbps})`);
  }
  const list = Array.isArray(doc) ? doc : (doc as { links?: unknown } | null)?.links;
  if (!Array.isArray(list)) fail(`expected 'links:' with a list of {from, to, rttMs, bandwidthMbps}`);
  const seen = new Map<string, { i: number; rttMs: number; bandwidthMbps: number }>();
  const links: NetworkLink[] = (list as unknown[]).map((l: unknown, i: number) => {
    const where = `links[${i}]`;
    if (typeof l !== 'object' || l === null || Array.isArray(l)) fail(`${where} is not a mapping {from, to, rttMs, bandwidthMbps}`);
    const o = l as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!LINK_FIELDS.includes(k)) fail(`${where}: unknown field '${k}' (known: ${LINK_FIELDS.join(', ')})`);
    for (const k of ['from', 'to']) {
      if ((typeof o[k] !== 'string' || o[k] === '') && typeof o[k] !== 'number') fail(`${where}.${k} is missing (a system name)`);
    }
    const num = (k: string, unit: string, positive: boolean): number => {
      const v = o[k];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (positive && v === 0)) {
        fail(`${where}.${k} must be ${unit} ${positive ? '> 0' : '≥ 0'}, got ${v === undefined ? 'nothing' : JSON.stringify(v)}`);
      }
      return v as number;
    };
    const ms = num('rttMs', 'a round-trip time in milliseconds', false);
    const mbps = num('bandwidthMbps', 'a bandwidth in megabits per second', true);
    const from = String(o.from);
    const to = String(o.to);
    if (from === to) fail(`${where} goes from '${from}' to itself`);
    const key = JSON.stringify([from, to]);
    const prev = seen.get(key);
    if (prev && (prev.rttMs !== ms || prev.bandwidthMbps !== mbps)) {
      fail(`${where} (${from} → ${to}: ${ms} ms, ${mbps} Mbit/s) conflicts with links[${prev.i}] (${prev.rttMs} ms, ${prev.bandwidthMbps} Mbit/s): one link per direction`);
    }
    if (!prev) seen.set(key, { i, rttMs: ms, bandwidthMbps: mbps });
    return link(from, to, ms, mbps, mbps * 125000);
  });
  return Object.freeze({ schema: 'kerf.network/v1', format: 'yaml', links });
}

const LINK_FIELDS = ['from', 'to', 'rttMs', 'bandwidthMbps'];

/** The link from a to b, else b to a, else undefined. */
export function findNetworkLink(net: Network, a: string, b: string): NetworkLink | undefined {
  let rev: NetworkLink | undefined;
  for (const l of net.links) {
    if (l.from === a && l.to === b) return l;
    if (!rev && l.from === b && l.to === a) rev = l;
  }
  return rev;
}

/** Names of every system the network mentions. */
export function networkSystems(net: Network): Set<string> {
  const s = new Set<string>();
  for (const l of net.links) { s.add(l.from); s.add(l.to); }
  return s;
}

/**
 * Codec names: parsing, canonical spelling and the sets `--codecs` accepts. A codec is up to
 * three stages applied in order: a lossy stage (fp16, int8 per tensor, int8 per channel), a
 * byte shuffle, and a lossless stage (lz4, zstd at a level). `none` is no stage at all.
 */
import { kerfError } from '../errors.js';

export type LossyStage = 'none' | 'fp16' | 'int8' | 'int8-ch';
export type LosslessStage = 'none' | 'lz4' | 'zstd';

/** A parsed codec. `name` is its canonical spelling, e.g. `int8-ch+shuffle+zstd-3`. */
export interface Codec {
  readonly name: string;
  readonly lossy: LossyStage;
  readonly shuffle: boolean;
  readonly lossless: LosslessStage;
  /** zstd level (1..19); 0 for other stages */
  readonly level: number;
}

/** zstd level used when `zstd` is named without one. */
export const DEFAULT_ZSTD_LEVEL = 1;
export const MAX_ZSTD_LEVEL = 19;

const LOSSY: readonly LossyStage[] = ['fp16', 'int8', 'int8-ch'];

function canonical(c: Omit<Codec, 'name'>): string {
  const parts: string[] = [];
  if (c.lossy !== 'none') parts.push(c.lossy);
  if (c.shuffle) parts.push('shuffle');
  if (c.lossless === 'lz4') parts.push('lz4');
  if (c.lossless === 'zstd') parts.push(`zstd-${c.level}`);
  return parts.length ? parts.join('+') : 'none';
}

const cache = new Map<string, Codec>();

/**
 * Parse a codec name (`none`, `lz4`, `zstd`, `zstd-3`, `shuffle+zstd`, `fp16+lz4`, `int8+zstd`,
 * `int8-ch`, …). Stages must come in order lossy, shuffle, lossless; shuffle needs a lossless
 * stage after it. Throws KERF_ERR_USAGE naming `what` on anything else.
 */
export function parseCodec(text: string, what = 'codec'): Codec {
  const hit = cache.get(text);
  if (hit) return hit;
  const bad = (why: string): never => {
    throw kerfError('KERF_ERR_USAGE', `${what} '${text}': ${why} (e.g. none, lz4, zstd-3, shuffle+zstd, fp16+zstd, int8+lz4, int8-ch+zstd)`);
  };
  const s = String(text).trim().toLowerCase();
  if (s === '') bad('empty codec name');
  let lossy: LossyStage = 'none';
  let shuffle = false;
  let lossless: LosslessStage = 'none';
  let level = 0;
  let stage = 0; // 0 lossy allowed, 1 shuffle allowed, 2 lossless allowed, 3 done
  if (s !== 'none') {
    for (const p of s.split('+')) {
      if ((LOSSY as readonly string[]).includes(p)) {
        if (stage > 0) bad(`'${p}' must come first`);
        lossy = p as LossyStage; stage = 1;
      } else if (p === 'shuffle') {
        if (stage > 1) bad(`'shuffle' must come before the lossless stage, once`);
        shuffle = true; stage = 2;
      } else if (p === 'lz4') {
        if (stage > 2) bad('only one lossless stage');
        lossless = 'lz4'; stage = 3;
      } else if (/^zstd(-\d+)?$/.test(p)) {
        if (stage > 2) bad('only one lossless stage');
        level = p === 'zstd' ? DEFAULT_ZSTD_LEVEL : Number(p.slice(5));
        if (!(level >= 1 && level <= MAX_ZSTD_LEVEL)) bad(`zstd level ${level} is outside 1..${MAX_ZSTD_LEVEL}`);
        lossless = 'zstd'; stage = 3;
      } else if (p === 'none') {
        bad(`'none' cannot be combined with other stages`);
      } else {
        bad(`unknown stage '${p}'`);
      }
    }
    if (shuffle && lossless === 'none') bad(`'shuffle' needs a lossless stage after it (lz4 or zstd)`);
  }
  const base = { lossy, shuffle, lossless, level };
  const c: Codec = Object.freeze({ name: canonical(base), ...base });
  cache.set(text, c);
  return c;
}

/** True when the codec may change values (a lossy stage). */
export const isLossy = (c: Codec): boolean => c.lossy !== 'none';

/** The codec without its lossy stage (what replies and non-float tensors use). */
export function losslessPart(c: Codec): Codec {
  return c.lossy === 'none' ? c : parseCodec(canonical({ ...c, lossy: 'none' }));
}

/** A hop's codecs: what requests travel with, and what replies come back with. */
export interface HopCodec { request: Codec; reply: Codec; /** canonical `REQ` or `REQ/REPLY` */ name: string }

/**
 * Parse a hop's codec: `C` (requests with C, replies with C's lossless part, so a lossy codec
 * never touches the answer unless asked) or `C/R` (replies with R).
 */
export function parseHopCodec(text: string, what = 'codec'): HopCodec {
  const [a, b, more] = String(text).split('/');
  if (more !== undefined) throw kerfError('KERF_ERR_USAGE', `${what} '${text}': expected CODEC or CODEC/REPLY_CODEC`);
  const request = parseCodec(a ?? '', what);
  const reply = b === undefined ? losslessPart(request) : parseCodec(b, `${what} (reply)`);
  const name = reply.name === losslessPart(request).name ? request.name : `${request.name}/${reply.name}`;
  return { request, reply, name };
}

/** Lossless codecs a planner tries for `--codecs lossless`. */
export const LOSSLESS_CODECS: readonly string[] = Object.freeze(['lz4', 'zstd-1', 'zstd-3', 'shuffle+zstd-1']);
/** Lossy codecs a planner tries for `--codecs lossy` (each with and without a lossless stage). */
export const LOSSY_CODECS: readonly string[] = Object.freeze(['fp16', 'fp16+zstd-1', 'int8', 'int8+zstd-1', 'int8-ch+zstd-1']);

/**
 * The codec set of a `--codecs` value: `none`, `lossless` (none + lossless codecs), `lossy`
 * (none + lossless + lossy), or a comma-separated list of codec names (`none` is always added:
 * raw is always a candidate). Duplicates removed, canonical names.
 */
export function codecSet(text: string, what = '--codecs'): Codec[] {
  const s = String(text).trim().toLowerCase();
  let names: string[];
  if (s === 'none') names = ['none'];
  else if (s === 'lossless') names = ['none', ...LOSSLESS_CODECS];
  else if (s === 'lossy') names = ['none', ...LOSSLESS_CODECS, ...LOSSY_CODECS];
  else names = ['none', ...s.split(',').map((x) => x.trim()).filter((x) => x !== '')];
  if (s === '') throw kerfError('KERF_ERR_USAGE', `${what}: empty (none, lossless, lossy or a list such as zstd-1,int8+zstd)`);
  const out = new Map<string, Codec>();
  for (const n of names) { const c = parseCodec(n, `${what} entry`); out.set(c.name, c); }
  return [...out.values()];
}

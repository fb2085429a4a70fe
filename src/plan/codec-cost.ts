/**
 * A hop's price with a codec: encode on the sender + coded bytes ÷ bandwidth + decode on the
 * receiver (+ the hop's round trip), and the choice of the cheapest codec per hop. The planner's
 * search and description, the adapt controller and the placer price hops with these functions.
 *
 * A codec is a candidate on a hop only when the sender's profile measured its encode and the
 * receiver's its decode on that block's output (`kerf profile --codecs`), and when it is in the
 * set asked for (`--codecs`; lossy codecs only when named or with `lossy`). Raw (`none`) is
 * always a candidate, so with no codec data every figure is the plain `bytes ÷ bandwidth`.
 */

import { hopBusyS, hopS } from './cost.js';

/** Codec measurements of one system, per codec and block (what `kerf profile --codecs` wrote). */
export interface SystemCodecs {
  names: string[];
  lossy: boolean[];
  /** [codec][block]: raw ÷ coded bytes of the block's output; NaN where not measured */
  ratio: Float64Array[];
  /** [codec][block]: seconds to encode / decode the block's output on this system */
  encodeS: Float64Array[];
  decodeS: Float64Array[];
}

/** The codec a hop uses and what it costs. */
export interface HopChoice {
  codec: string;
  lossy: boolean;
  ratio: number;
  /** bytes on the wire (raw bytes ÷ ratio) */
  wireBytes: number;
  encodeS: number;
  decodeS: number;
  /** encode + wire bytes ÷ bandwidth + decode (the round trip excluded) */
  seconds: number;
}

/** What a plan's transfer and a placement's link record of a coded hop (absent when raw). */
export interface CodedHop {
  /** the codec the hop uses when not raw, what it does and costs (its `seconds` include them) */
  codec?: string;
  lossy?: boolean;
  ratio?: number;
  wireBytes?: number;
  encodeS?: number;
  decodeS?: number;
}

/** The CodedHop fields of a choice: none for raw. */
export function codedHopFields(ch: HopChoice): CodedHop {
  if (ch.codec === 'none') return {};
  return { codec: ch.codec, ...(ch.lossy ? { lossy: true } : {}), ratio: ch.ratio, wireBytes: ch.wireBytes, encodeS: ch.encodeS, decodeS: ch.decodeS };
}

/** Seconds a hop costs with one codec: round trip, encode, coded bytes at the bandwidth, decode
 * (src/plan/cost.ts `hopS`, the one hop price). */
export function codecHopS(bytes: number, rttS: number, bytesPerS: number, ratio = 1, encodeS = 0, decodeS = 0): number {
  return hopS(bytes, rttS, bytesPerS, { ratio, encodeS, decodeS });
}

/**
 * Index pairs (sender codec k, receiver codec j) for the codecs both systems measured and that
 * are allowed, computed once per system pair.
 */
export function codecPairs(sender: SystemCodecs | undefined, receiver: SystemCodecs | undefined, allowed: ReadonlySet<string>): Int32Array {
  if (!sender || !receiver || allowed.size === 0) return new Int32Array(0);
  const out: number[] = [];
  sender.names.forEach((n, k) => {
    if (!allowed.has(n)) return;
    const j = receiver.names.indexOf(n);
    if (j >= 0) out.push(k, j);
  });
  return Int32Array.from(out);
}

/**
 * Transfer seconds of `bytes` (the output of `block`, -1 for the model input) over a hop of
 * `bytesPerS` with a fixed `overheadS` per message, with the cheapest allowed codec: `hopBusyS`
 * of src/plan/cost.ts; the round trip is not included. Raw wins ties.
 */
export function transferS(bytes: number, bytesPerS: number, block: number, sender: SystemCodecs | undefined, receiver: SystemCodecs | undefined, pairs: Int32Array, overheadS = 0): number {
  let best = hopBusyS(bytes, bytesPerS);
  if (block >= 0 && pairs.length > 0 && bytes !== 0) {
    for (let i = 0; i < pairs.length; i += 2) {
      const k = pairs[i]!, j = pairs[i + 1]!;
      const r = sender!.ratio[k]![block]!;
      if (!(r > 0)) continue;
      const s = hopBusyS(bytes, bytesPerS, { ratio: r, encodeS: sender!.encodeS[k]![block]!, decodeS: receiver!.decodeS[j]![block]! });
      if (s < best) best = s;
    }
  }
  return overheadS === 0 ? best : best + overheadS;
}

/** The same choice as `transferS`, described (`seconds` includes `overheadS`). */
export function chooseCodec(bytes: number, bytesPerS: number, block: number, sender: SystemCodecs | undefined, receiver: SystemCodecs | undefined, pairs: Int32Array, overheadS = 0): HopChoice {
  let best: HopChoice = { codec: 'none', lossy: false, ratio: 1, wireBytes: bytes, encodeS: 0, decodeS: 0, seconds: hopBusyS(bytes, bytesPerS) };
  if (block >= 0 && pairs.length > 0 && bytes !== 0) {
    for (let i = 0; i < pairs.length; i += 2) {
      const k = pairs[i]!, j = pairs[i + 1]!;
      const r = sender!.ratio[k]![block]!;
      if (!(r > 0)) continue;
      const enc = sender!.encodeS[k]![block]!, dec = receiver!.decodeS[j]![block]!;
      const s = hopBusyS(bytes, bytesPerS, { ratio: r, encodeS: enc, decodeS: dec });
      if (s < best.seconds) best = { codec: sender!.names[k]!, lossy: sender!.lossy[k]!, ratio: r, wireBytes: bytes / r, encodeS: enc, decodeS: dec, seconds: s };
    }
  }
  if (overheadS !== 0) best.seconds += overheadS;
  return best;
}

/**
 * A hop with one given codec (`none`: raw), described; null when the sender or the receiver did
 * not measure it on this block's output. Pareto fronts price every codec of the device's hop
 * with it, not only the cheapest.
 */
export function codecChoice(bytes: number, bytesPerS: number, block: number, sender: SystemCodecs | undefined, receiver: SystemCodecs | undefined, name: string, overheadS = 0): HopChoice | null {
  if (name === 'none') return chooseCodec(bytes, bytesPerS, -1, sender, receiver, new Int32Array(0), overheadS);
  if (block < 0 || bytes === 0) return null;
  const k = sender?.names.indexOf(name) ?? -1, j = receiver?.names.indexOf(name) ?? -1;
  if (k < 0 || j < 0) return null;
  const r = sender!.ratio[k]![block]!, enc = sender!.encodeS[k]![block]!, dec = receiver!.decodeS[j]![block]!;
  if (!(r > 0) || !(enc >= 0) || !(dec >= 0)) return null;
  const s = hopBusyS(bytes, bytesPerS, { ratio: r, encodeS: enc, decodeS: dec }, overheadS);
  return { codec: name, lossy: sender!.lossy[k]!, ratio: r, wireBytes: bytes / r, encodeS: enc, decodeS: dec, seconds: s };
}

/**
 * The bandwidth (bytes/s) below which a codec of `ratio` with `encodeS` + `decodeS` beats raw
 * for `bytes`: bytes·(1 − 1/ratio) ÷ (encode + decode). Infinity for a free codec that shrinks;
 * 0 for one that does not shrink.
 */
export function breakEvenBytesPerS(bytes: number, ratio: number, encodeS: number, decodeS: number): number {
  const saved = bytes * (1 - 1 / ratio);
  if (!(saved > 0)) return 0;
  const cost = encodeS + decodeS;
  return cost > 0 ? saved / cost : Infinity;
}

/** Codecs some system of the problem measured, with whether each is lossy, in first-seen order. */
export function measuredCodecs(systems: readonly { codecs?: SystemCodecs }[]): { name: string; lossy: boolean }[] {
  const out = new Map<string, boolean>();
  for (const s of systems) s.codecs?.names.forEach((n, k) => { if (!out.has(n)) out.set(n, s.codecs!.lossy[k]!); });
  return [...out].map(([name, lossy]) => ({ name, lossy }));
}

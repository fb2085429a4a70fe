/**
 * The one per-tier cost of kerf: what a tier (a device gateway, an edge or cloud worker, a
 * cluster node) spends on one request, and what a hop between two tiers costs. The planner
 * (`kerf plan`), the adapt controller, the placer (`kerf place`) and `kerf demo` all price a
 * split with these two functions, so the same split gets the same figure everywhere.
 *
 * A tier in the request's path pays, in seconds:
 *   factor × (its blocks' profiled times + callOverheadS)   — the segment, run once
 *   + wireSPerByte × the bytes it receives and sends between tiers   — framing, copies
 *   + fixedS                                                  — its own per-request work
 * `callOverheadS` is what one run of a segment costs beyond its blocks' kernels (onnxruntime's
 * fixed cost per run, the hand-over to the compute thread and back): once per segment, however
 * many blocks it holds; profiles measure it (`callOverheadS`) and their block times exclude it.
 * `fixedS` is the tier's own handling of a request that no split changes (the gateway's HTTP
 * parsing, copying the input, encoding the answer), in wall seconds as measured, so the load
 * factor does not scale it. A tier out of the path (an unused tier the request skips) costs 0;
 * a tier in the path that runs no segment (a gateway forwarding the input, a worker passing
 * through) pays its fixed time and wire CPU but no call overhead. The adapt controller's search
 * charges the call overhead to pass-through tiers too (`runs` true), which keeps its dynamic
 * programme exact at the price of over-counting one call (~0.2 ms on a core) for such a tier.
 */

/** The per-request terms of one tier beyond its blocks; all default to 0. */
export interface TierTerms {
  /** seconds per segment run beyond its blocks (profile's `callOverheadS`), profile scale */
  callOverheadS?: number;
  /** wall seconds of the tier's own work per request that no split changes (not load-scaled) */
  fixedS?: number;
  /** CPU seconds per byte the tier receives from or sends to another tier (wall, not load-scaled) */
  wireSPerByte?: number;
}

/**
 * Seconds a tier spends serving one request: `blocksS` is the sum of its blocks' profiled times
 * (0 when it runs none), `factor` the load factor (observed ÷ profiled, 1 as profiled), `bytes`
 * what it receives and sends over its hops for this request, `runs` whether it runs a segment
 * (and so pays the call overhead).
 */
export function tierServiceS(blocksS: number, terms: TierTerms | undefined, factor = 1, bytes = 0, runs = true): number {
  const t = terms ?? {};
  return factor * (blocksS + (runs ? t.callOverheadS ?? 0 : 0)) + (t.fixedS ?? 0) + (t.wireSPerByte ?? 0) * bytes;
}

/** What a codec does to one hop's message: raw ÷ coded bytes, and the sender's encode and the
 * receiver's decode seconds (src/plan/codec-cost.ts chooses it). */
export interface HopCoding {
  ratio: number;
  encodeS: number;
  decodeS: number;
}

/**
 * Seconds one message keeps a hop busy: encode + coded bytes ÷ bandwidth + decode + the link's
 * fixed cost per message (framing, syscalls; 0 unless the cluster or network file gives one).
 * This is the hop's stage time in a pipeline (its share of the throughput bottleneck); the
 * round trip is latency, not occupancy, and is added by `hopS` only.
 */
export function hopBusyS(bytes: number, bytesPerS: number, coding?: HopCoding, overheadS = 0): number {
  const t = coding ? coding.encodeS + bytes / coding.ratio / bytesPerS + coding.decodeS : bytes / bytesPerS;
  return overheadS === 0 ? t : t + overheadS;
}

/**
 * Seconds one hop adds to a request's latency: `latencyS` (its share of the round trip, see
 * `hopLatencyS`) plus `hopBusyS`. The planner, the adapt controller, the placer and the demo
 * price every hop with this function.
 */
export function hopS(bytes: number, latencyS: number, bytesPerS: number, coding?: HopCoding, overheadS = 0): number {
  return latencyS + hopBusyS(bytes, bytesPerS, coding, overheadS);
}

/**
 * The share of a hop's round trip charged to one crossing. A request crosses every hop of the
 * pipeline once and its answer crosses back (kerf's workers reply to their caller, and the link
 * emulator delays rtt/2 each way), so a hop's rtt is paid once per request: all of it on the
 * way out when the answer's return is not priced (Scission's model, `returned` false), half
 * out and half back when it is (`--return-result`, the placer with an entry node).
 */
export function hopLatencyS(rttS: number, returned: boolean): number {
  return returned ? rttS / 2 : rttS;
}

/** Check a TierTerms value, naming `where` in the error text returned (null when fine). */
export function tierTermsProblem(t: TierTerms, where: string): string | null {
  for (const k of ['callOverheadS', 'fixedS', 'wireSPerByte'] as const) {
    const v = t[k];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) return `${where}: ${k} ${v} is not a non-negative number`;
  }
  return null;
}

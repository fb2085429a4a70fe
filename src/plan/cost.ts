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

/** Seconds one hop costs: its round-trip time, once, plus the bytes at its bandwidth. */
export function hopS(bytes: number, rttS: number, bytesPerS: number): number {
  return rttS + bytes / bytesPerS;
}

/** Check a TierTerms value, naming `where` in the error text returned (null when fine). */
export function tierTermsProblem(t: TierTerms, where: string): string | null {
  for (const k of ['callOverheadS', 'fixedS', 'wireSPerByte'] as const) {
    const v = t[k];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) return `${where}: ${k} ${v} is not a non-negative number`;
  }
  return null;
}

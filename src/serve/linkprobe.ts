/**
 * Light link probes: keep every hop's bandwidth and RTT estimate fresh while serving, on the
 * pipeline's own connections (the same path, TLS and authentication as the tensors).
 *
 * A probe of hop j (tier j → tier j+1) is two empty PINGs (the RTT: the smaller) and one CONTROL
 * `sink` frame of N bytes that tier j+1 answers with a few bytes (the seconds: RTT + N ÷ rate).
 * The gateway probes its own hop; a later hop is probed by the worker before it (`link` control
 * operation, passed along the chain), so no hop's time includes another's. N is about 0.1 s of
 * the link at its current estimate (64 KB to 8 MB; 128 KB first), and a hop is probed only when
 * no transfer that could tell its rate — a probe or a real request's — arrived for `periodS`:
 * under traffic with informative tensors the probes stay off; idle, they cost ~0.1 s of the
 * link every period.
 *
 * The samples go into LinkEstimators: the adaptation's own (`--adapt`, so decisions see them and
 * GET /v1/conditions shows them) or, without it, the prober's, which it serves at
 * GET /v1/conditions. /metrics: kerf_link_estimate_bytes_per_second, kerf_link_estimate_rtt_seconds,
 * kerf_link_probes_total, kerf_link_probe_bytes_total, all per {from, to}.
 */
import type * as http from 'node:http';
import { randomBytes } from 'node:crypto';
import { LinkEstimator, type LinkEstimate } from '../adapt/estimators.js';
import { kerfError } from '../errors.js';
import type { Gateway } from './gateway.js';
import type { NextHop } from './nexthop.js';

/** What a probe of one hop found. */
export interface LinkProbeResult {
  /** the tiers at either end (the sender's and the receiver's names) */
  from: string;
  to: string;
  bytes: number;
  /** seconds from sending the probe frame to its answer */
  seconds: number;
  /** the smaller of two empty PING round trips */
  rttS: number;
  /** whether the receiving tier has a next tier (so hop j+1 exists) */
  more: boolean;
}

/** `sink`'s answer: how many bytes arrived, the receiver's name, whether it has a next tier. */
export interface SinkReply { bytes: number; name: string; next: boolean }

/** Body of the `link` control operation: probe the hop `hop` tiers further down with `bytes`. */
export interface LinkProbeRequest { hop: number; bytes: number }

export const PROBE_MIN_BYTES = 64 * 1024;
export const PROBE_MAX_BYTES = 8 * 1024 * 1024;
export const PROBE_FIRST_BYTES = 128 * 1024;
/** a probe lasts about this long at the link's estimated rate */
export const PROBE_TARGET_S = 0.1;

let payload: Buffer | null = null;
function bytesOf(n: number): Uint8Array {
  if (!payload || payload.length < n) payload = randomBytes(Math.max(n, PROBE_FIRST_BYTES));
  return payload.subarray(0, n);
}

/** The size of the next probe of a link estimated at `bytesPerS` (null: never measured). */
export function probeBytes(bytesPerS: number | null): number {
  if (bytesPerS === null || !(bytesPerS > 0)) return PROBE_FIRST_BYTES;
  return Math.round(Math.min(PROBE_MAX_BYTES, Math.max(PROBE_MIN_BYTES, bytesPerS * PROBE_TARGET_S)));
}

/** Whether hop j is due a probe at `nowS`: nothing that told its rate arrived for `periodS`, and no probe of it for as long. */
export function probeDue(lastInformativeS: number, lastProbeS: number, nowS: number, periodS: number): boolean {
  return nowS - Math.max(lastInformativeS, lastProbeS) >= periodS;
}

/** Probe the hop to `next` from this tier (`from`): RTT by PING, rate by a `sink` frame of `bytes`. */
export async function probeNextHop(next: NextHop, from: string, bytes: number, timeoutMs = 20_000): Promise<LinkProbeResult> {
  const c = next.connection;
  if (!c) throw kerfError('KERF_ERR_UPSTREAM', `link probe: next tier ${next.where} is not connected`);
  const n = Math.round(bytes);
  if (!(n >= 1 && n <= PROBE_MAX_BYTES)) throw kerfError('KERF_ERR_USAGE', `link probe: bytes ${bytes}: expected 1..${PROBE_MAX_BYTES}`);
  const rttS = Math.min(await c.ping({ timeoutMs }), await c.ping({ timeoutMs }));
  const t0 = performance.now();
  const reply = await c.control('sink', bytesOf(n), { timeoutMs });
  const seconds = (performance.now() - t0) / 1000;
  const r = JSON.parse(new TextDecoder().decode(reply)) as SinkReply;
  if (r.bytes !== n) throw kerfError('KERF_ERR_PROTOCOL', `link probe: ${next.where} received ${r.bytes} of ${n} bytes`);
  return { from, to: r.name, bytes: n, seconds, rttS, more: r.next };
}

/** Parse and check a `link` control body. */
export function parseLinkProbe(body: Uint8Array): LinkProbeRequest {
  let r: unknown;
  try { r = JSON.parse(new TextDecoder().decode(body)); } catch { throw kerfError('KERF_ERR_USAGE', 'link: body must be JSON {hop, bytes}'); }
  const { hop, bytes } = (r ?? {}) as Partial<LinkProbeRequest>;
  if (!Number.isInteger(hop) || hop! < 0 || hop! > 64) throw kerfError('KERF_ERR_USAGE', `link: hop ${JSON.stringify(hop)}: expected 0..64`);
  if (!Number.isInteger(bytes) || bytes! < 1 || bytes! > PROBE_MAX_BYTES) throw kerfError('KERF_ERR_USAGE', `link: bytes ${JSON.stringify(bytes)}: expected 1..${PROBE_MAX_BYTES}`);
  return { hop: hop!, bytes: bytes! };
}

export interface LinkProberOptions {
  /** seconds without an informative transfer before a hop is probed (default 5) */
  periodS?: number;
  /** the gateway's tier name (default 'device') */
  name?: string;
  /** the adaptation's estimators per hop, when it runs (the probes feed them) */
  estimators?: () => readonly LinkEstimator[];
  log?: (line: string) => void;
}

interface HopState {
  from: string;
  to: string;
  own: LinkEstimator;
  lastProbeS: number;
  probes: number;
  bytes: number;
  last: (LinkProbeResult & { atS: number }) | null;
  error: string | null;
}

const nowS = (): number => performance.now() / 1000;

/** Probes every hop of a gateway's pipeline when due; serves GET /v1/conditions when no adaptation does. */
export class LinkProber {
  readonly periodS: number;
  private readonly hops: HopState[] = [];
  private readonly timer: NodeJS.Timeout;
  private busy = false;
  private closed = false;

  private constructor(private readonly gateway: Gateway, private readonly o: LinkProberOptions) {
    this.periodS = o.periodS ?? 5;
    if (!(this.periodS > 0)) throw kerfError('KERF_ERR_USAGE', `link probes: period ${this.periodS}: expected seconds > 0`);
    this.timer = setInterval(() => void this.tick(), Math.max(100, Math.min(1000, this.periodS * 250)));
    this.timer.unref();
    const r = gateway.registry;
    const rate = r.gauge('kerf_link_estimate_bytes_per_second', 'Live estimate of each hop\'s throughput (link probes and real transfers), bytes/s.');
    const rtt = r.gauge('kerf_link_estimate_rtt_seconds', 'Live estimate of each hop\'s round-trip time, seconds.');
    const probes = r.gauge('kerf_link_probes_total', 'Link probes sent over each hop.');
    const bytes = r.gauge('kerf_link_probe_bytes_total', 'Bytes link probes sent over each hop.');
    this.registerHop = (j) => {
      const labels = { from: this.hops[j]!.from, to: this.hops[j]!.to };
      rate.set(() => this.estimate(j).bytesPerS, labels);
      rtt.set(() => this.estimate(j).rttS, labels);
      probes.set(() => this.hops[j]?.probes ?? 0, labels);
      bytes.set(() => this.hops[j]?.bytes ?? 0, labels);
    };
    gateway.onClose(async () => this.close());
  }

  private readonly registerHop: (j: number) => void;

  /** Start probing `gateway`'s hops; without `estimators`, also serve GET /v1/conditions. */
  static attach(gateway: Gateway, o: LinkProberOptions = {}): LinkProber {
    const p = new LinkProber(gateway, o);
    if (!o.estimators) gateway.mount('/v1/conditions', (req, res) => p.route(req, res));
    return p;
  }

  private estimator(j: number): LinkEstimator {
    return this.o.estimators?.()[j] ?? this.hops[j]!.own;
  }

  private estimate(j: number): LinkEstimate {
    return this.estimator(j).estimate(nowS());
  }

  /** One pass: probe the hops that are due, in chain order (a probe tells whether the next hop exists). */
  async tick(): Promise<void> {
    if (this.busy || this.closed) return;
    this.busy = true;
    try {
      const next = this.gateway.pipeline.next;
      if (!next || !next.connected) return;
      let more = true;
      for (let j = 0; more && j <= 64 && !this.closed; j++) {
        const h = this.hops[j];
        const est = h ? this.estimator(j) : null;
        const at = nowS();
        if (h && est && !probeDue(est.lastInformativeS, h.lastProbeS, at, this.periodS)) { more = h.last?.more ?? j + 1 < this.hops.length; continue; }
        const bytes = probeBytes(h?.last ? est!.estimate(at).bytesPerS : null);
        let r: LinkProbeResult;
        try {
          r = j === 0 ? await probeNextHop(next, this.o.name ?? 'device', bytes)
            : JSON.parse(new TextDecoder().decode(await next.connection!.control('link', JSON.stringify({ hop: j - 1, bytes } satisfies LinkProbeRequest), { timeoutMs: 30_000 }))) as LinkProbeResult;
        } catch (e) {
          if (h) { h.error = (e as Error).message; h.lastProbeS = nowS(); }
          return;
        }
        const done = nowS();
        this.observe(j, r, done);
        more = r.more;
      }
    } finally {
      this.busy = false;
    }
  }

  private observe(j: number, r: LinkProbeResult, atS: number): void {
    let h = this.hops[j];
    if (!h || h.from !== r.from || h.to !== r.to) {
      h = { from: r.from, to: r.to, own: h?.own ?? new LinkEstimator({ windowS: 10, halfLifeS: 3 }), lastProbeS: -Infinity, probes: h?.probes ?? 0, bytes: h?.bytes ?? 0, last: null, error: null };
      this.hops[j] = h;
      this.registerHop(j);
    }
    h.lastProbeS = atS;
    h.probes++;
    h.bytes += r.bytes;
    h.last = { ...r, atS };
    h.error = null;
    const est = this.estimator(j);
    est.addRtt(r.rttS, atS);
    est.addTransfer(r.bytes, r.seconds, atS);
  }

  /** Every hop's estimate and its probes, as GET /v1/conditions answers without an adaptation. */
  snapshot(): { links: (LinkEstimate & { from: string; to: string; probes: number; probeBytes: number; lastProbe: (Omit<LinkProbeResult, 'more'> & { ageS: number }) | null; error?: string })[]; probePeriodS: number } {
    const at = nowS();
    return {
      probePeriodS: this.periodS,
      links: this.hops.map((h, j) => ({
        from: h.from, to: h.to, ...this.estimate(j), probes: h.probes, probeBytes: h.bytes,
        lastProbe: h.last ? { from: h.last.from, to: h.last.to, bytes: h.last.bytes, seconds: h.last.seconds, rttS: h.last.rttS, ageS: at - h.last.atS } : null,
        ...(h.error ? { error: h.error } : {}),
      })),
    };
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const ok = req.method === 'GET' || req.method === 'HEAD';
    const text = JSON.stringify(ok ? this.snapshot() : { error: `${req.method} not allowed on /v1/conditions (GET)`, code: 'KERF_ERR_USAGE' });
    res.writeHead(ok ? 200 : 405, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(req.method === 'HEAD' ? undefined : text);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }
}

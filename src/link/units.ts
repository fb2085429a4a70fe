/** Parsing and printing of rates, durations and addresses (tc-style units), with no I/O. */
import { kerfError, type ErrorCode } from '../errors.js';

const RATE_UNITS: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 };
const TIME_UNITS: Record<string, number> = { us: 1e-3, ms: 1, s: 1000 };

/**
 * `10mbit` → 10_000_000 bits/s (tc units: bit, kbit, mbit, gbit; powers of ten). A bare number
 * is bits/s. `unlimited` or `inf` mean no rate limit (Infinity). Zero (`0`, `0mbit`) is refused:
 * it would carry nothing, and reading it as "unlimited" hid typos. Byte-based units such as
 * `mbps` are refused because tc and people disagree about what they mean.
 */
export function parseRate(text: string, what = 'rate', code: ErrorCode = 'KERF_ERR_USAGE'): number {
  const s = String(text).trim().toLowerCase();
  if (s === 'unlimited' || s === 'inf' || s === 'infinity') return Infinity;
  const m = /^(\d+(?:\.\d+)?|\.\d+)(?:e([+-]?\d+))?\s*([a-z]*)$/.exec(s);
  const unit = m?.[3] || 'bit';
  const mult = RATE_UNITS[unit];
  if (!m || mult === undefined) {
    throw kerfError(code, `${what} '${text}': expected a rate like 10mbit, 500kbit or 1gbit (units bit, kbit, mbit, gbit), or 'unlimited'`);
  }
  const v = Number(m[1]) * 10 ** Number(m[2] ?? 0) * mult;
  if (!(v > 0) || !Number.isFinite(v)) throw kerfError(code, `${what} '${text}' must be a positive rate (a link of rate 0 carries nothing; for no limit say 'unlimited')`);
  return v;
}

/** `20ms` → 20, `0.5s` → 500, `250us` → 0.25 (milliseconds). A bare number is milliseconds. */
export function parseDuration(text: string, what = 'duration', code: ErrorCode = 'KERF_ERR_USAGE'): number {
  const s = String(text).trim().toLowerCase();
  const m = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)$/.exec(s);
  const mult = TIME_UNITS[m?.[2] || 'ms'];
  if (!m || mult === undefined) throw kerfError(code, `${what} '${text}': expected a duration like 20ms, 0.5s or 250us`);
  return Number(m[1]) * mult;
}

/** 10_000_000 → "10 Mbit/s"; Infinity → "unlimited". */
export function formatRate(bps: number): string {
  if (!Number.isFinite(bps)) return 'unlimited';
  for (const [u, f] of [['Gbit/s', 1e9], ['Mbit/s', 1e6], ['kbit/s', 1e3]] as const) {
    if (bps >= f) return `${+(bps / f).toPrecision(4)} ${u}`;
  }
  return `${+bps.toPrecision(4)} bit/s`;
}

/** 10_000_000 → "10mbit" (round-trips through parseRate). */
export function rateToText(bps: number): string {
  if (!Number.isFinite(bps)) return 'unlimited';
  for (const [u, f] of [['gbit', 1e9], ['mbit', 1e6], ['kbit', 1e3]] as const) {
    if (bps >= f && Number.isInteger(bps / f * 1e6)) return `${+(bps / f).toFixed(6)}${u}`;
  }
  return `${bps}bit`;
}

/** Address of an endpoint. */
export interface HostPort { host: string; port: number }

/** `host:port`, `:port`, `port` or `[::1]:port` → { host, port }; host defaults to 127.0.0.1. */
export function parseHostPort(text: string | number | HostPort, what = 'address', code: ErrorCode = 'KERF_ERR_USAGE'): HostPort {
  if (typeof text === 'object' && text !== null) return parseHostPort(`${text.host}:${text.port}`, what, code);
  const s = String(text).trim();
  const m = /^(\d+)$/.exec(s) ?? /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]*):(\d+)$/.exec(s);
  const port = m ? Number(m[m.length - 1]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw kerfError(code, `${what} '${s}': expected HOST:PORT, e.g. 127.0.0.1:9000`);
  }
  return { host: (m.length === 3 && m[1]) || '127.0.0.1', port };
}

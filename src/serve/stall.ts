/**
 * How long this process's event loop (its main thread) has waited for a CPU: Linux's per-thread
 * scheduler statistics (`/proc/thread-self/schedstat`, second field: nanoseconds spent runnable
 * on a run queue but not running). The difference over a request's round trip is the time the
 * gateway wanted to run and could not — on a busy host that time reads as a slower link unless
 * the link estimator is told (see `LinkEstimator.addTransfer`'s `stalledS`).
 *
 * Off until `enableStallClock()` (the adapt controller turns it on): one read is a pread of a
 * kept-open file, tens of microseconds, and only a controller uses it. Elsewhere than Linux, or
 * without scheduler statistics, `stallSeconds()` returns NaN.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

let fd: number | null = null;
let state: 'off' | 'on' | 'unavailable' = 'off';
const buf = Buffer.alloc(128);

/** Start reading the main thread's run-queue wait (idempotent). Returns whether it can be read. */
export function enableStallClock(): boolean {
  if (state === 'on') return true;
  if (state === 'unavailable' || process.platform !== 'linux' || !isMainThread) { state = 'unavailable'; return false; }
  try {
    fd = openSync('/proc/thread-self/schedstat', 'r');
    state = 'on';
    if (!Number.isFinite(stallSeconds())) { closeSync(fd); fd = null; state = 'unavailable'; }
  } catch {
    fd = null;
    state = 'unavailable';
  }
  return state === 'on';
}

/** Seconds the main thread has spent waiting for a CPU since it started (NaN when not enabled or unreadable). */
export function stallSeconds(): number {
  if (state !== 'on' || fd === null) return NaN;
  try {
    const n = readSync(fd, buf, 0, buf.length, 0);
    const f = buf.toString('latin1', 0, n).split(' ');
    const ns = Number(f[1]);
    return f.length >= 3 && Number.isFinite(ns) ? ns / 1e9 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * Link measurements at a raised scheduling priority. A bandwidth probe measures how fast this
 * process can push bytes through the link; on a host whose cores are busy with other work, a
 * sender or receiver that waits for the CPU reads as a slow link (a 100 Mbit/s tbf link read
 * 78 Mbit/s on a 2-core machine with both cores kept busy). While any measurement runs, the
 * agent's main thread (where libuv does the network I/O) runs at nice −10 where it may (root or
 * CAP_SYS_NICE), and goes back to its own priority when the last one ends. Where it may not,
 * nothing changes (the measurement is what it was, and `boostUnavailable` says why).
 */
import { getPriority, setPriority } from 'node:os';

const BOOST = -10;
let depth = 0, saved: number | null = null;
let refused: string | null = null;

function enter(): void {
  if (depth++ > 0) return;
  try {
    const now = getPriority(0);
    if (now <= BOOST) return;
    setPriority(0, BOOST);
    saved = now;
  } catch (e) { refused = (e as Error).message; }
}

function leave(): void {
  if (--depth > 0) return;
  if (saved !== null) { try { setPriority(0, saved); } catch { /* a raised priority can always be lowered */ } saved = null; }
}

/** Run `fn` with this process's main thread at nice −10 where allowed; nested calls share one raise. */
export async function boosted<T>(fn: () => Promise<T>): Promise<T> {
  enter();
  try { return await fn(); } finally { leave(); }
}

/** Why the last raise was refused (null: it was allowed, or never tried). */
export function boostUnavailable(): string | null { return refused; }

/** Thread ids of this process (Linux), empty elsewhere: diff two calls to find a thread just started. */
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';

export function threadIds(): Set<number> {
  try { return new Set(readdirSync('/proc/self/task').map(Number)); } catch { return new Set(); }
}

/**
 * Lower to nice 19 every thread of this process not in `before` (a worker_thread just
 * started): Node builds a whole JavaScript environment on a new thread (tens of ms of CPU)
 * before any of its code can lower itself. Best effort.
 */
export function lowerNewThreads(before: ReadonlySet<number>): void {
  for (const tid of threadIds()) if (!before.has(tid)) { try { setPriority(tid, 19); } catch { /* it lowers itself shortly */ } }
}

/**
 * The serving stack's diagnostics channels (node:diagnostics_channel), names in one place.
 * Libraries publish; the CLI (or any embedder) subscribes and decides what to print.
 */
import { channel } from 'node:diagnostics_channel';

/** A connection between tiers refused for a wrong pipeline token, on either side. */
export interface AuthRefusal {
  /** 'server': this process refused a client; 'client': a server refused this process */
  side: 'server' | 'client';
  /** the peer's address */
  peer: string;
  /** one line that says who refused whom and why */
  message: string;
}

export const AUTH_REFUSED = channel('kerf:serve:auth-refused');

export function publishAuthRefusal(r: AuthRefusal): void {
  if (AUTH_REFUSED.hasSubscribers) AUTH_REFUSED.publish(r);
}

/**
 * Print each refusal once per `everyMs` (a client retries about once a second; the line would
 * repeat forever): the message with the peer's ephemeral port left out decides sameness.
 */
export function logAuthRefusals(write: (line: string) => void, everyMs = 30_000): () => void {
  const last = new Map<string, number>();
  const onMessage = (m: unknown): void => {
    const r = m as AuthRefusal;
    const key = `${r.side} ${r.message.replace(/:\d+\b/g, ':*')}`;
    const now = performance.now();
    if ((last.get(key) ?? -Infinity) + everyMs > now) return;
    last.set(key, now);
    write(r.message);
  };
  AUTH_REFUSED.subscribe(onMessage);
  return () => AUTH_REFUSED.unsubscribe(onMessage);
}

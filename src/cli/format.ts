/** Small terminal formatting helpers shared by the verbs. */

export function fmtBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)} MB`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

export function fmtCount(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

export function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return String(s);
  if (s >= 1) return `${s.toFixed(3)} s`;
  if (s >= 1e-3) return `${(s * 1e3).toFixed(2)} ms`;
  return `${(s * 1e6).toFixed(1)} µs`;
}

/** Left-aligned text columns, right-aligned numeric ones (cells starting with a digit or '-digit'). */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const numeric = header.map((_, c) => rows.length > 0 && rows.every((r) => /^-?[\d.]/.test(String(r[c] ?? ''))));
  return cells.map((r, i) => {
    const line = r.map((v, c) => (numeric[c] && i > 0 ? v.padStart(widths[c]!) : v.padEnd(widths[c]!))).join('  ').trimEnd();
    return i === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
  }).join('\n');
}

/** A progress line on a terminal; silent when stderr is not a TTY or when quiet. */
export class Progress {
  private readonly on: boolean;
  private last = '';
  constructor(quiet = false) { this.on = !quiet && Boolean(process.stderr.isTTY); }
  update(done: number, total: number, label = ''): void {
    if (!this.on) return;
    const w = 28;
    const f = total > 0 ? Math.min(1, done / total) : 0;
    const bar = '█'.repeat(Math.round(f * w)).padEnd(w, '░');
    const line = `\r${bar} ${done}/${total} ${label}`.slice(0, (process.stderr.columns ?? 100) - 1);
    if (line !== this.last) { process.stderr.write(line.padEnd(this.last.length)); this.last = line; }
  }
  done(): void { if (this.on && this.last) { process.stderr.write('\r' + ' '.repeat(this.last.length) + '\r'); this.last = ''; } }
}

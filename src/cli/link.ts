import { readFile } from 'node:fs/promises';
import { kerfError } from '../errors.js';
import { parse } from './args.js';
import { Link, formatRate, parseDuration, parseHostPort, parseRate, parseTrace, type LinkConfig, type TraceStep } from '../link/index.js';

const HELP = `usage: kerf link --listen HOST:PORT --to HOST:PORT [options]

A TCP proxy emulating a network link in both directions: token-bucket rate, one-way delay,
jitter that never reorders a connection's bytes. Runs until Ctrl-C or SIGTERM.

options:
  --listen HOST:PORT   accept connections here (port 0: any free port, printed)
  --to HOST:PORT       forward every connection here
  --rate RATE          per direction: 10mbit, 500kbit, 1gbit, or unlimited (default)
  --delay TIME         one-way delay: 20ms, 0.1s (default 0)
  --jitter TIME        ± uniform delay variation (default 0)
  --burst BYTES        token bucket size in bytes (default: about 1 ms of rate)
  --control HOST:PORT  HTTP control API: GET/PUT /config (JSON), GET /stats
  --trace FILE         replay 'time rate delay [jitter]' lines (time in s from start)
  --loop               replay the trace forever
  --json               print one JSON line when ready (for parent processes), and each change
  -h, --help           this help

example:
  kerf link --listen 127.0.0.1:9100 --to 127.0.0.1:9001 --rate 10mbit --delay 20ms --control 127.0.0.1:9190
  curl -X PUT -d '{"rate":"2mbit","delay":"50ms"}' http://127.0.0.1:9190/config`;

const OPTIONS = {
  listen: { type: 'string' }, to: { type: 'string' }, rate: { type: 'string' }, delay: { type: 'string' },
  jitter: { type: 'string' }, burst: { type: 'string' }, control: { type: 'string' }, trace: { type: 'string' },
  loop: { type: 'boolean' }, json: { type: 'boolean' },
} as const;

function describe(c: LinkConfig): string {
  return `${formatRate(c.rateBps)}, delay ${c.delayMs} ms${c.jitterMs ? ` ± ${c.jitterMs} ms` : ''}`;
}

export async function run(argv: string[]): Promise<number | void> {
  const p = parse(argv, OPTIONS, HELP, false);
  if (!p) return 0;
  const v = p.values;
  if (!v.listen || !v.to) throw kerfError('KERF_ERR_USAGE', `--listen and --to are required\n${HELP}`);
  const listen = parseHostPort(v.listen, '--listen');
  const to = parseHostPort(v.to, '--to');
  const control = v.control !== undefined ? parseHostPort(v.control, '--control') : undefined;
  let burst: number | undefined;
  if (v.burst !== undefined) {
    burst = Number(v.burst);
    if (!Number.isInteger(burst) || burst < 1) throw kerfError('KERF_ERR_USAGE', `--burst '${v.burst}': expected a number of bytes ≥ 1`);
  }
  let trace: TraceStep[] | undefined;
  if (v.trace !== undefined) {
    let text: string;
    try { text = await readFile(v.trace, 'utf8'); } catch (e) {
      throw kerfError('KERF_ERR_FILE', `${v.trace}: cannot read the trace (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    trace = parseTrace(text, v.trace);
  } else if (v.loop) {
    throw kerfError('KERF_ERR_USAGE', '--loop needs --trace FILE');
  }
  const link = await Link.create({
    listen, to,
    rateBps: v.rate !== undefined ? parseRate(v.rate, '--rate') : Infinity,
    delayMs: v.delay !== undefined ? parseDuration(v.delay, '--delay') : 0,
    jitterMs: v.jitter !== undefined ? parseDuration(v.jitter, '--jitter') : 0,
    ...(burst !== undefined ? { burstBytes: burst } : {}),
    ...(control ? { control } : {}),
    ...(trace ? { trace, traceLoop: v.loop ?? false } : {}),
  });
  const at = `${link.address.host}:${link.address.port}`;
  const ctl = link.controlAddress ? `http://${link.controlAddress.host}:${link.controlAddress.port}` : null;
  const out = (line: string): void => { process.stdout.write(line + '\n'); };
  if (v.json) {
    out(JSON.stringify({ event: 'ready', listen: at, to: `${to.host}:${to.port}`, control: ctl, config: link.config }));
    link.on('config', (c: LinkConfig) => out(JSON.stringify({ event: 'config', config: { ...c, rateBps: Number.isFinite(c.rateBps) ? c.rateBps : null } })));
  } else {
    out(`kerf link: ${at} → ${to.host}:${to.port} at ${describe(link.config)}${ctl ? `; control ${ctl}/config` : ''}`);
    link.on('config', (c: LinkConfig) => out(`kerf link: now ${describe(c)}`));
  }
  await new Promise<void>((resolve) => {
    const stop = (): void => { process.off('SIGINT', stop); process.off('SIGTERM', stop); resolve(); };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await link.close();
  return 0;
}

/** The HTTP control API of a link: GET/PUT /config (JSON) and GET /stats. */
import * as http from 'node:http';
import { isKerfError, kerfError, type KerfError } from '../errors.js';
import { errorStatus, readBody, sendJson } from '../util/http.js';
import type { Link, LinkConfig } from './link.js';
import { parseDuration, parseRate, rateToText, type HostPort } from './units.js';

/** A config as JSON: `rateBps` null when unlimited, plus a `rate` text for people. */
export function configToJson(c: LinkConfig): Record<string, unknown> {
  return {
    rateBps: Number.isFinite(c.rateBps) ? c.rateBps : null,
    rate: rateToText(c.rateBps),
    delayMs: c.delayMs,
    jitterMs: c.jitterMs,
    burstBytes: c.burstBytes ?? null,
  };
}

/**
 * A partial config from JSON. Numbers: `rateBps` (null = unlimited), `delayMs`, `jitterMs`,
 * `burstBytes`; or texts with units: `rate` ("10mbit"), `delay` ("20ms"), `jitter`.
 */
export function configFromJson(body: unknown): Partial<LinkConfig> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw kerfError('KERF_ERR_CONFIG', 'link config: expected a JSON object like {"rate":"10mbit","delayMs":20}');
  }
  const out: Partial<LinkConfig> = {};
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    const num = (): number => {
      if (typeof v !== 'number') throw kerfError('KERF_ERR_CONFIG', `link config: ${k} must be a number, got ${JSON.stringify(v)}`);
      return v;
    };
    const text = (): string => {
      if (typeof v !== 'string') throw kerfError('KERF_ERR_CONFIG', `link config: ${k} must be a string with units, got ${JSON.stringify(v)}`);
      return v;
    };
    switch (k) {
      case 'rateBps': out.rateBps = v === null ? Infinity : num(); break;
      case 'rate': out.rateBps = parseRate(text(), 'link config: rate', 'KERF_ERR_CONFIG'); break;
      case 'delayMs': out.delayMs = num(); break;
      case 'delay': out.delayMs = parseDuration(text(), 'link config: delay', 'KERF_ERR_CONFIG'); break;
      case 'jitterMs': out.jitterMs = num(); break;
      case 'jitter': out.jitterMs = parseDuration(text(), 'link config: jitter', 'KERF_ERR_CONFIG'); break;
      case 'burstBytes': out.burstBytes = v === null ? (null as unknown as undefined) : num(); break;
      default: throw kerfError('KERF_ERR_CONFIG', `link config: unknown field '${k}' (known: rate, rateBps, delay, delayMs, jitter, jitterMs, burstBytes)`);
    }
  }
  return out;
}


/** Serve the control API of `link` on `at`; resolves once listening. */
export async function startControl(link: Link, at: HostPort): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown): void => sendJson(req, res, status, body, { newline: true });
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/config' && req.method === 'GET') return send(200, configToJson(link.config));
    if (path === '/stats' && req.method === 'GET') return send(200, link.stats());
    if (path === '/config' && (req.method === 'PUT' || req.method === 'POST')) {
      readBody(req, { maxBytes: 64 * 1024, what: 'link config', tooLargeCode: 'KERF_ERR_CONFIG', tooLarge: () => 'link config: body over 64 KiB' }).then((raw) => {
        try {
          let body: unknown;
          try { body = JSON.parse(raw.toString('utf8')); } catch (e) {
            throw kerfError('KERF_ERR_CONFIG', `link config: body is not JSON (${(e as Error).message})`);
          }
          send(200, configToJson(link.update(configFromJson(body))));
        } catch (e) {
          if (!isKerfError(e)) { send(500, { error: { code: 'KERF_ERR_CONFIG', message: `link config: internal error: ${(e as Error)?.message ?? String(e)}` } }); return; }
          send(e.code === 'KERF_ERR_CLOSED' ? 503 : 400, { error: { code: e.code, message: e.message } });
        }
      }, (e: KerfError) => send(errorStatus(e) ?? 400, { error: { code: e.code, message: e.message } }));
      return;
    }
    const known = path === '/config' || path === '/stats';
    send(known ? 405 : 404, { error: { code: 'KERF_ERR_USAGE', message: known ? `${req.method} not allowed on ${path}` : `no such path ${path} (GET/PUT /config, GET /stats)` } });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(kerfError('KERF_ERR_USAGE', `link: cannot listen for control on ${at.host}:${at.port}: ${e.code ?? e.message}`)));
    server.listen(at.port, at.host, () => resolve());
  });
  return server;
}

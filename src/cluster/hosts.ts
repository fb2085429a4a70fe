/**
 * The hosts file (`kerf.hosts/v1`, YAML or JSON): the cluster's token (inline or in a file),
 * the entry host (where the gateway runs) and each host's agent. Validated once, with a
 * one-line error naming the field; unknown fields are refused; the result is frozen.
 *
 *   schema: kerf.hosts/v1
 *   tokenFile: /etc/kerf/token        # or token: "…"
 *   entry: pi
 *   hosts:
 *     - { name: pi, agent: "192.168.1.20:7700", memoryMB: 1800, cpus: 4 }
 *     - { name: edge, agent: "192.168.1.30:7700" }
 *   tls: { ca: ca.pem }                # optional: HTTPS to the agents and TLS between the tiers
 *
 * With `tls` (or `kerf up --hosts … --tls-ca F`), the controller talks HTTPS to every agent and
 * verifies it with `ca` (default: the system's CAs), presenting `cert`/`key` to agents that ask
 * for a client certificate (`kerf agent --tls-ca`); every stage serves its tier frames over TLS
 * with its agent's own certificate, and every hop verifies the next with the same CA (mutual
 * TLS where the agents require client certificates). `tls: true` is TLS with the system's CAs.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { kerfError } from '../errors.js';

export const HOSTS_SCHEMA = 'kerf.hosts/v1';

export interface HostEntry {
  name: string;
  /** the agent's "host:port" */
  agent: string;
  /** memory and cores to plan with (default: what the agent reports) */
  memoryMB?: number;
  cpus?: number;
}

/** TLS across the hosts: file names (absolute once loaded by loadHosts) */
export interface HostsTls {
  /** CA that agents' and stages' certificates are verified with (default: the system's) */
  ca?: string;
  /** the controller's client certificate and key, for agents that require one */
  cert?: string;
  key?: string;
}

export interface HostsFile {
  schema: typeof HOSTS_SCHEMA;
  /** the token itself (read from tokenFile when that was given) */
  token: string;
  tokenFile?: string;
  entry: string;
  hosts: HostEntry[];
  tls?: HostsTls;
}

const TOP = ['schema', 'token', 'tokenFile', 'entry', 'hosts', 'tls'];
const TLS = ['ca', 'cert', 'key'];
const HOST = ['name', 'agent', 'memoryMB', 'cpus'];
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Validate a parsed hosts document; `tokenText`: the contents of its tokenFile, when it has one. */
export function validateHosts(doc: unknown, source = 'hosts file', tokenText?: string): HostsFile {
  const bad = (field: string, msg: string): never => { throw kerfError('KERF_ERR_CONFIG', `${source}: ${field}: ${msg}`); };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) bad('(top)', `expected a mapping with schema: ${HOSTS_SCHEMA}`);
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!TOP.includes(k)) bad(k, `unknown field (known: ${TOP.join(', ')})`);
  if (d.schema !== HOSTS_SCHEMA) bad('schema', `'${String(d.schema)}' is not ${HOSTS_SCHEMA}`);
  if (d.token !== undefined && d.tokenFile !== undefined) bad('token', 'give token or tokenFile, not both');
  let token: string;
  if (d.tokenFile !== undefined) {
    if (typeof d.tokenFile !== 'string' || !d.tokenFile) bad('tokenFile', 'expected a file name');
    token = (tokenText ?? '').trim();
    if (!token) bad('tokenFile', `${String(d.tokenFile)} is empty`);
  } else {
    if (typeof d.token !== 'string' || !d.token.trim()) bad('token', 'expected the cluster token (a non-empty string), or tokenFile');
    token = (d.token as string).trim();
  }
  if (token!.length < 12) bad(d.tokenFile !== undefined ? 'tokenFile' : 'token', `a token of ${token!.length} characters is too easy to guess (use at least 12; kerf agent prints a random one)`);
  if (!Array.isArray(d.hosts) || d.hosts.length === 0) bad('hosts', 'expected a non-empty list of {name, agent}');
  const names = new Set<string>();
  const hosts = (d.hosts as unknown[]).map((h, i): HostEntry => {
    const f = `hosts[${i}]`;
    if (typeof h !== 'object' || h === null || Array.isArray(h)) bad(f, 'expected a mapping {name, agent, memoryMB?, cpus?}');
    const e = h as Record<string, unknown>;
    for (const k of Object.keys(e)) if (!HOST.includes(k)) bad(`${f}.${k}`, `unknown field (known: ${HOST.join(', ')})`);
    if (typeof e.name !== 'string' || !NAME.test(e.name)) bad(`${f}.name`, `${JSON.stringify(e.name)} is not a host name ([A-Za-z0-9_.-], up to 63)`);
    if (names.has(e.name as string)) bad(`${f}.name`, `'${String(e.name)}' is listed twice`);
    names.add(e.name as string);
    if (typeof e.agent !== 'string' || !/^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):(\d{1,5})$/.test(e.agent) || Number(e.agent.split(':').pop()) > 65535 || Number(e.agent.split(':').pop()) === 0) {
      bad(`${f}.agent`, `${JSON.stringify(e.agent)}: expected "host:port" of the host's kerf agent, e.g. "192.168.1.20:7700"`);
    }
    for (const k of ['memoryMB', 'cpus'] as const) {
      if (e[k] !== undefined && !(typeof e[k] === 'number' && Number.isFinite(e[k]) && (e[k] as number) > 0)) bad(`${f}.${k}`, `${JSON.stringify(e[k])}: expected a positive number`);
    }
    return Object.freeze({ name: e.name as string, agent: e.agent as string, ...(e.memoryMB !== undefined ? { memoryMB: e.memoryMB as number } : {}), ...(e.cpus !== undefined ? { cpus: e.cpus as number } : {}) });
  });
  if (typeof d.entry !== 'string' || !names.has(d.entry)) bad('entry', `${JSON.stringify(d.entry)} is not one of the hosts (${[...names].join(', ')}); the entry runs the gateway`);
  let tls: HostsTls | undefined;
  if (d.tls !== undefined && d.tls !== false) {
    if (d.tls === true) tls = {};
    else {
      if (typeof d.tls !== 'object' || d.tls === null || Array.isArray(d.tls)) bad('tls', 'expected true or a mapping {ca?, cert?, key?} of PEM file names');
      const t = d.tls as Record<string, unknown>;
      for (const k of Object.keys(t)) if (!TLS.includes(k)) bad(`tls.${k}`, `unknown field (known: ${TLS.join(', ')})`);
      for (const k of TLS) if (t[k] !== undefined && (typeof t[k] !== 'string' || !t[k])) bad(`tls.${k}`, `${JSON.stringify(t[k])}: expected a PEM file name`);
      if ((t.cert === undefined) !== (t.key === undefined)) bad(t.cert === undefined ? 'tls.cert' : 'tls.key', 'tls.cert and tls.key go together (the controller\'s client certificate)');
      tls = Object.freeze({ ...(t.ca ? { ca: t.ca as string } : {}), ...(t.cert ? { cert: t.cert as string, key: t.key as string } : {}) });
    }
  }
  return Object.freeze({
    schema: HOSTS_SCHEMA, token: token!, ...(d.tokenFile !== undefined ? { tokenFile: d.tokenFile as string } : {}), entry: d.entry as string,
    hosts: Object.freeze(hosts) as HostEntry[], ...(tls ? { tls } : {}),
  });
}

/** Read and validate a hosts file (YAML or JSON); tokenFile is relative to it. */
export async function loadHosts(file: string): Promise<HostsFile> {
  let text: string;
  try { text = await readFile(file, 'utf8'); } catch (e) {
    throw kerfError('KERF_ERR_FILE', `${file}: cannot read the hosts file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const { parse } = await import('yaml');
  let doc: unknown;
  try { doc = parse(text); } catch (e) {
    throw kerfError('KERF_ERR_CONFIG', `${file}: not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  const tf = (doc as { tokenFile?: unknown })?.tokenFile;
  let tokenText: string | undefined;
  if (typeof tf === 'string' && tf) {
    const p = isAbsolute(tf) ? tf : resolve(dirname(file), tf);
    try { tokenText = await readFile(p, 'utf8'); } catch (e) {
      throw kerfError('KERF_ERR_CONFIG', `${file}: tokenFile: cannot read ${p} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  const v = validateHosts(doc, file, tokenText);
  if (!v.tls) return v;
  // TLS files are relative to the hosts file, and read now: a missing one is named before anything starts
  const tls: HostsTls = {};
  for (const k of ['ca', 'cert', 'key'] as const) {
    const f = v.tls[k];
    if (f === undefined) continue;
    const abs = isAbsolute(f) ? f : resolve(dirname(file), f);
    try { await readFile(abs); } catch (e) {
      throw kerfError('KERF_ERR_CONFIG', `${file}: tls.${k}: cannot read ${abs} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    tls[k] = abs;
  }
  return Object.freeze({ ...v, tls: Object.freeze(tls) });
}

/** TLS material of a hosts file's `tls` (files read), or null when it has none. */
export interface ClusterTls { ca?: Buffer; cert?: Buffer; key?: Buffer }
export async function readHostsTls(tls: HostsTls | undefined): Promise<ClusterTls | null> {
  if (!tls) return null;
  const out: ClusterTls = {};
  for (const k of ['ca', 'cert', 'key'] as const) {
    const f = tls[k];
    if (f === undefined) continue;
    try { out[k] = await readFile(f); } catch (e) {
      throw kerfError('KERF_ERR_FILE', `tls.${k} ${f}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  return out;
}

/** A hosts file with TLS from `--tls-ca/--tls-cert/--tls-key` (which replace the file's `tls`); unchanged without flags. */
export function withTlsFlags(h: HostsFile, v: { 'tls-cert'?: string | undefined; 'tls-key'?: string | undefined; 'tls-ca'?: string | undefined }): HostsFile {
  const cert = v['tls-cert'], key = v['tls-key'], ca = v['tls-ca'];
  if (cert === undefined && key === undefined && ca === undefined) return h;
  if ((cert === undefined) !== (key === undefined)) throw kerfError('KERF_ERR_USAGE', `--tls-cert and --tls-key go together (got only ${cert !== undefined ? '--tls-cert' : '--tls-key'})`);
  const tls: HostsTls = { ...(ca !== undefined ? { ca: resolve(ca) } : {}), ...(cert !== undefined ? { cert: resolve(cert), key: resolve(key!) } : {}) };
  return Object.freeze({ ...h, tls: Object.freeze(tls) });
}

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

export interface HostsFile {
  schema: typeof HOSTS_SCHEMA;
  /** the token itself (read from tokenFile when that was given) */
  token: string;
  tokenFile?: string;
  entry: string;
  hosts: HostEntry[];
}

const TOP = ['schema', 'token', 'tokenFile', 'entry', 'hosts'];
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
  return Object.freeze({
    schema: HOSTS_SCHEMA, token: token!, ...(d.tokenFile !== undefined ? { tokenFile: d.tokenFile as string } : {}), entry: d.entry as string,
    hosts: Object.freeze(hosts) as HostEntry[],
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
  return validateHosts(doc, file, tokenText);
}

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFileSync } from 'node:fs';
import { kerfError } from '../errors.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs with kerf's conventions: `--help` prints the verb's help and exits 0. */
type OptionValue<C> = C extends { type: 'boolean' }
  ? (C extends { multiple: true } ? boolean[] : boolean)
  : (C extends { multiple: true } ? string[] : string);
export type Values<O extends Options> = { [K in keyof O]?: OptionValue<O[K]> };
export interface Parsed<O extends Options> { values: Values<O>; positionals: string[] }

export function parse<O extends Options>(argv: string[], options: O, help: string, allowPositionals = true): Parsed<O> | null {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help.trimEnd() + '\n');
    return null;
  }
  try {
    const r = parseArgs({ args: argv, options, allowPositionals, strict: true });
    return { values: r.values as Values<O>, positionals: r.positionals };
  } catch (e) {
    throw kerfError('KERF_ERR_USAGE', usageMessage(e as Error & { code?: string }, options, help));
  }
}

/** kerf's words for parseArgs' errors: the option named, the closest known one, where help is. */
function usageMessage(e: Error & { code?: string }, options: Options, help: string): string {
  const verb = /^usage: (kerf \S+)/.exec(help)?.[1] ?? 'kerf';
  const see = `(${verb} --help lists the options)`;
  const flag = (n: string): string => (n.length === 1 ? `-${n}` : `--${n}`);
  const opt = /'(-{1,2}[^' ]+)/.exec(e.message)?.[1];
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && opt) {
    const name = opt.replace(/^-+/, '').split('=')[0]!;
    const near = Object.keys(options).map((k) => [k, editDistance(k, name)] as const).filter(([, d]) => d <= 2).sort((a, b) => a[1] - b[1])[0]?.[0];
    return `unknown option ${opt.split('=')[0]}${near ? ` (did you mean ${flag(near)}?)` : ''} ${see}`;
  }
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && opt) {
    const name = opt.replace(/^-+/, '');
    const o = options[name] ?? Object.values(options).find((x) => x.short === name);
    return o?.type === 'boolean' ? `option ${opt} takes no value ${see}` : `option ${opt} needs a value ${see}`;
  }
  if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const arg = /argument '([^']*)'/.exec(e.message)?.[1];
    return `unexpected argument${arg !== undefined ? ` '${arg}'` : ''}: ${verb} takes no positional arguments ${see}`;
  }
  return `${e.message} ${see}`;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = t;
    }
  }
  return d[b.length]!;
}

/** `--input-shape name=1x3x224x224` (repeatable) → { name: [1,3,224,224] } */
export function parseInputShapes(values: string[] | undefined): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const v of values ?? []) {
    const m = /^([^=]+)=(\d+(?:x\d+)*)$/.exec(v);
    if (!m) throw kerfError('KERF_ERR_USAGE', `--input-shape '${v}': expected NAME=DxDxD, e.g. input=1x3x224x224`);
    out[m[1]!] = m[2]!.split('x').map(Number);
  }
  return out;
}

/**
 * `3,5,9` → [3, 5, 9]. An empty item (`3,,5`, a trailing comma) or an empty list is refused:
 * `--cuts ''` must not silently mean "no cut". With `allowEmpty`, `none` says "no cut" (`[]`).
 */
export function parseIntList(v: string, flag: string, opts: { allowEmpty?: boolean } = {}): number[] {
  const t = v.trim();
  if (t === 'none' && opts.allowEmpty) return [];
  if (t === '' || t === 'none') {
    throw kerfError('KERF_ERR_USAGE', `${flag} '${v}': expected comma-separated integers, e.g. ${flag} 3,17${opts.allowEmpty ? ` (or ${flag} none for no cut)` : ''}`);
  }
  return t.split(',').map((raw, i) => {
    const s = raw.trim();
    if (s === '') throw kerfError('KERF_ERR_USAGE', `${flag} '${v}': item ${i + 1} is empty (expected comma-separated integers, e.g. 3,17)`);
    if (!/^-?\d+$/.test(s)) throw kerfError('KERF_ERR_USAGE', `${flag} '${v}': '${s}' is not an integer`);
    return Number(s);
  });
}

export function requireOne(positionals: string[], what: string, help: string): string {
  if (positionals.length !== 1) throw kerfError('KERF_ERR_USAGE', `expected one ${what}\n${help.trimEnd()}`);
  return positionals[0]!;
}

/** `--tls-cert --tls-key --tls-ca` (worker, gateway, up, agent). */
export const TLS_OPTIONS = { 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, 'tls-ca': { type: 'string' } } as const;

/**
 * TLS from the flags: `server` (cert + key; with a CA, clients must present a certificate it
 * signed: mTLS) and `client` (verify the next tier with the CA, else the system's; present cert
 * + key when given). Undefined when no flag is given. Files are read now: a missing one is a
 * KERF_ERR_FILE naming the flag.
 */
export function tlsFromFlags(v: { 'tls-cert'?: string | undefined; 'tls-key'?: string | undefined; 'tls-ca'?: string | undefined }):
  { server?: { cert: Buffer; key: Buffer; ca?: Buffer; requestCert?: boolean; rejectUnauthorized?: boolean }; client: true | { ca?: Buffer; cert?: Buffer; key?: Buffer } } | undefined {
  const certFile = v['tls-cert'], keyFile = v['tls-key'], caFile = v['tls-ca'];
  if (certFile === undefined && keyFile === undefined && caFile === undefined) return undefined;
  if ((certFile === undefined) !== (keyFile === undefined)) throw kerfError('KERF_ERR_USAGE', `--tls-cert and --tls-key go together (got only ${certFile !== undefined ? '--tls-cert' : '--tls-key'})`);
  const read = (f: string, flag: string): Buffer => {
    try { return readFileSync(f); } catch (e) { throw kerfError('KERF_ERR_FILE', `${flag} ${f}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
  };
  const cert = certFile !== undefined ? read(certFile, '--tls-cert') : undefined;
  const key = keyFile !== undefined ? read(keyFile, '--tls-key') : undefined;
  const ca = caFile !== undefined ? read(caFile, '--tls-ca') : undefined;
  return {
    ...(cert && key ? { server: { cert, key, ...(ca ? { ca, requestCert: true, rejectUnauthorized: true } : {}) } } : {}),
    client: ca || cert ? { ...(ca ? { ca } : {}), ...(cert && key ? { cert, key } : {}) } : true,
  };
}

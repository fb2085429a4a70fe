import { parseArgs, type ParseArgsConfig } from 'node:util';
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
    throw kerfError('KERF_ERR_USAGE', `${(e as Error).message}\n${help.trimEnd()}`);
  }
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

export function parseIntList(v: string, flag: string): number[] {
  const parts = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const out = parts.map((s) => {
    if (!/^-?\d+$/.test(s)) throw kerfError('KERF_ERR_USAGE', `${flag} '${v}': '${s}' is not an integer`);
    return Number(s);
  });
  return out;
}

export function requireOne(positionals: string[], what: string, help: string): string {
  if (positionals.length !== 1) throw kerfError('KERF_ERR_USAGE', `expected one ${what}\n${help.trimEnd()}`);
  return positionals[0]!;
}

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kerfError } from '../errors.js';
import { parse } from './args.js';
import { loadScissionFolder } from './scission.js';

const HELP = `usage: kerf import scission <benchmark_data_dir> -o <dir>

Read Scission's TYPE-NAME.dat benchmark files (no Python needed) and write one kerf profile
per system and model, <model>.<system>.profile.json. Blocks keep Scission's Keras layer
indices; the tier comes from TYPE.

  -o, --out DIR    where to write the profiles (created if absent; default .)
  --json           print the list of written files as JSON
`;

const OPTIONS = { out: { type: 'string', short: 'o' }, json: { type: 'boolean' } } as const;

export async function run(argv: string[]): Promise<number | void> {
  const parsed = parse(argv, OPTIONS, HELP);
  if (!parsed) return 0;
  const [kind, dir, ...extra] = parsed.positionals;
  if (kind !== 'scission') throw kerfError('KERF_ERR_USAGE', `unknown import format '${kind ?? ''}' (supported: scission)\n${HELP.trimEnd()}`);
  if (!dir || extra.length) throw kerfError('KERF_ERR_USAGE', `expected one <benchmark_data_dir>\n${HELP.trimEnd()}`);
  const out = parsed.values.out ?? '.';
  const systems = loadScissionFolder(dir);
  if (systems.length === 0) throw kerfError('KERF_ERR_IMPORT', `${dir}: no TYPE-NAME.dat Scission benchmark files`);
  mkdirSync(out, { recursive: true });
  const written: string[] = [];
  for (const s of systems) {
    for (const [model, p] of s.profiles) {
      const file = join(out, `${model}.${s.name}.profile.json`);
      try {
        writeFileSync(file, JSON.stringify(p, null, 2) + '\n');
      } catch (e) {
        throw kerfError('KERF_ERR_FILE', `${file}: ${(e as Error).message}`);
      }
      written.push(file);
    }
  }
  if (parsed.values.json) process.stdout.write(JSON.stringify({ files: written }, null, 2) + '\n');
  else {
    const models = new Set(systems.flatMap((s) => [...s.profiles.keys()]));
    process.stdout.write(`imported ${systems.length} systems × ${models.size} models → ${written.length} profiles in ${out}\n`);
  }
}

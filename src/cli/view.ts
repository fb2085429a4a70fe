import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { kerfError } from '../errors.js';
import { parse } from './args.js';

const HELP = `usage: kerf view FILE… [-o report.html] [--title TEXT]

One self-contained HTML report of kerf's files, to open in any browser (no network needed):
  profiles (kerf profile)      per-block latency per system, output size per cut, the cost of cutting
  plans (kerf plan -o)         the ranked table, the split drawn on the model, the Pareto front
  placements (kerf place -o)   stages on nodes, stage and link times, the bottleneck
  benchmark JSON (--json)      kerf bench switch / adapt / failover / … rows as tables and bars
  -o, --out FILE   the report (default report.html)
  --title TEXT     its title (default: the files shown)`;

const OPTIONS = { out: { type: 'string', short: 'o' }, title: { type: 'string' } } as const;

export async function run(argv: string[]): Promise<number> {
  const a = parse(argv, OPTIONS, HELP);
  if (!a) return 0;
  if (a.positionals.length === 0) throw kerfError('KERF_ERR_USAGE', `give at least one file\n${HELP}`);
  const out = a.values.out ?? 'report.html';
  const { renderReport } = await import('../ui/report.js');
  const html = await renderReport(a.positionals, a.values.title);
  try {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out + '.tmp', html);
    renameSync(out + '.tmp', out);
  } catch (e) {
    throw kerfError('KERF_ERR_FILE', `${out}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  process.stdout.write(`wrote ${out} (${a.positionals.length} file${a.positionals.length === 1 ? '' : 's'}, ${(Buffer.byteLength(html) / 1024).toFixed(0)} KB, self-contained)\n`);
  return 0;
}

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, extname } from 'node:path';
import { kerfError } from '../errors.js';
import { parse } from './args.js';

const HELP = `usage: kerf plot <profile.json …> -o chart.svg|chart.png [--title TEXT]

Chart one model's profiles (one per system): per-block latency of each system on a log scale,
the whole model as a dashed line, and below it the bytes that cross the cut after each block.
  -o, --out FILE   .svg, or .png (rendered with @resvg/resvg-js)
  --title TEXT     chart title (default: the model and what is shown)
  --scale X        PNG pixel scale (default 1.5)`;

const OPTIONS = { out: { type: 'string', short: 'o' }, title: { type: 'string' }, scale: { type: 'string' } } as const;

export async function run(argv: string[]): Promise<number> {
  const a = parse(argv, OPTIONS, HELP);
  if (!a) return 0;
  if (a.positionals.length === 0) throw kerfError('KERF_ERR_USAGE', `give at least one profile.json\n${HELP}`);
  const out = a.values.out;
  if (!out) throw kerfError('KERF_ERR_USAGE', `-o chart.svg or -o chart.png is required\n${HELP}`);
  const ext = extname(out).toLowerCase();
  if (ext !== '.svg' && ext !== '.png') throw kerfError('KERF_ERR_USAGE', `-o '${out}': the chart is written as .svg or .png`);
  const scale = Number(a.values.scale ?? '1.5');
  if (!(scale > 0 && scale <= 8)) throw kerfError('KERF_ERR_USAGE', `--scale '${a.values.scale}': expected a number in (0, 8]`);
  const { readProfile } = await import('../profile/schema.js');
  const { plotProfiles, svgToPng } = await import('../profile/plot.js');
  const profiles = a.positionals.map((f) => readProfile(f));
  const svg = plotProfiles(profiles, a.values.title ? { title: a.values.title } : {});
  const data = ext === '.png' ? await svgToPng(svg, scale) : svg;
  try {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out + '.tmp', data);
    renameSync(out + '.tmp', out);
  } catch (e) {
    throw kerfError('KERF_ERR_FILE', `${out}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  process.stdout.write(`wrote ${out} (${profiles.length} profile${profiles.length === 1 ? '' : 's'} of ${profiles[0]!.model.name})\n`);
  return 0;
}

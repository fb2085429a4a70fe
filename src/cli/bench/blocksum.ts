/**
 * `kerf bench blocksum`: do a profile's blocks add up to the whole model? For every model in
 * ../shared/models (or --models DIR) and the zoo (--zoo LIST, default all), and each method,
 * profile at single granularity and print block-sum/whole (the default method must stay within
 * 10%, issue 14). A profile refused for not adding up (KERF_ERR_PROFILE) is printed as refused.
 * Run: flock /tmp/kerf-heavy.lock npx kerf bench blocksum [--methods trace,sessions] [--repeats 5] [--zoo resnet18,…|none]
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from '../args.js';
import { table } from '../format.js';

const HELP = `usage: kerf bench blocksum [--models DIR] [--zoo LIST|none] [--methods trace,sessions] [--repeats N] [--json]

Profiles every model (single granularity) with each method and prints block-sum/whole and
(blocks + one run's overhead)/whole; kerf profile refuses a profile more than 10% off.`;

export async function run(argv: string[]): Promise<number> {
  const a = parse(argv, {
    models: { type: 'string' }, zoo: { type: 'string' }, methods: { type: 'string', default: 'trace,sessions' },
    repeats: { type: 'string', default: '5' }, json: { type: 'boolean', default: false },
  }, HELP);
  if (!a) return 0;
  const here = dirname(fileURLToPath(import.meta.url));
  const dir = a.values.models ? resolve(a.values.models) : resolve(here, '..', '..', '..', '..', '..', 'shared', 'models') /* dist/src/cli/bench → ../shared beside the clone */;
  const { profileModel } = await import('../../profile/profile.js');
  const { zooNames, zooModel } = await import('../../zoo/index.js');
  const { parseModel } = await import('../../graph/model.js');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort().map((f) => ({ name: f.replace(/\.onnx$/, ''), src: join(dir, f) as string | Uint8Array })) : [];
  if (!files.length) process.stderr.write(`# SKIP: no models in ${dir}\n`);
  const zoo = a.values.zoo === 'none' ? [] : a.values.zoo ? a.values.zoo.split(',') : zooNames();
  const models = [...files, ...zoo.map((z) => ({ name: `zoo:${z}`, src: zooModel(z) as string | Uint8Array }))];
  const methods = a.values.methods!.split(',') as ('trace' | 'sessions')[];
  const rows: { model: string; method: string; blocks: number; wholeMs: number; ratio: number | null; error?: string }[] = [];
  for (const m of models) {
    for (const method of methods) {
      try {
        const src = typeof m.src === 'string' ? m.src : parseModel(m.src, { name: m.name, source: m.name });
        const p = await profileModel(src, { system: 'bench', repeats: Number(a.values.repeats), warmup: 1, method, name: m.name.replace(/^zoo:/, '') });
        rows.push({ model: m.name, method, blocks: p.blocks.length, wholeMs: p.whole!.latency.median * 1e3, ratio: p.blockSumOverWhole! });
      } catch (e) {
        rows.push({ model: m.name, method, blocks: 0, wholeMs: NaN, ratio: null, error: (e as Error).message });
      }
      const r = rows.at(-1)!;
      if (!a.values.json) process.stderr.write(`# ${r.model} ${r.method}: ${r.ratio === null ? `refused: ${r.error}` : `block-sum/whole ${r.ratio.toFixed(3)}`}\n`);
    }
  }
  if (a.values.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
  else process.stdout.write(table(['model', 'method', 'blocks', 'whole ms', 'block-sum/whole'],
    rows.map((r) => [r.model, r.method, r.blocks, r.wholeMs.toFixed(1), r.ratio === null ? 'refused' : r.ratio.toFixed(3)])) + '\n');
  const bad = rows.filter((r) => r.method === 'trace' && (r.ratio === null || Math.abs(r.ratio - 1) > 0.1));
  return bad.length ? 1 : 0;
}

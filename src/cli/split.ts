import { readFileSync } from 'node:fs';
import { parse, parseInputShapes, parseIntList, requireOne } from './args.js';
import { fmtBytes } from './format.js';
import { kerfError } from '../errors.js';

const HELP = `usage: kerf split <model.onnx> --cuts ID[,ID…] -o DIR [--verify] [--input FILE] [--input-shape NAME=DxD…] [--order …] [--json]

Writes DIR/part-0.onnx … part-N.onnx and DIR/manifest.json. Each part is a standalone ONNX model
reading tensors by their original names, so parts chain by name. Cut ids are those \`kerf inspect\` lists.
  --cuts          cut ids, strictly increasing (or a plan.json from \`kerf plan\` via --plan)
  --plan FILE     take the cuts from a kerf plan.json (checked as kerf up checks it: schema, tiers,
                  cuts; a plan recording modelSha256 must be of this model file)
  -o, --out       output directory (written all or nothing)
  --verify        run whole vs chained parts on a seeded random input (or --input) and print the
                  largest absolute difference; with --optimization disabled (default) they are bitwise equal
  --optimization  graph optimisation for --verify: disabled (default), basic, extended, all
  --input FILE    input for --verify: a .npy file, or JSON {"name": {"shape": [...], "data": [...]}}
  --seed N        seed of the random input (default 0)`;

export async function run(argv: string[]): Promise<number> {
  const a = parse(argv, {
    cuts: { type: 'string' },
    plan: { type: 'string' },
    out: { type: 'string', short: 'o' },
    verify: { type: 'boolean', default: false },
    optimization: { type: 'string', default: 'disabled' },
    input: { type: 'string' },
    seed: { type: 'string', default: '0' },
    'input-shape': { type: 'string', multiple: true },
    order: { type: 'string', default: 'auto' },
    json: { type: 'boolean', default: false },
  }, HELP);
  if (!a) return 0;
  const file = requireOne(a.positionals, 'model file', HELP);
  const outDir = a.values.out;
  if (!outDir) throw kerfError('KERF_ERR_USAGE', `missing -o DIR\n${HELP}`);
  let cuts: number[];
  if (a.values.plan !== undefined) {
    if (a.values.cuts !== undefined) throw kerfError('KERF_ERR_USAGE', `--cuts conflicts with --plan ${a.values.plan} (it gives the cuts)`);
    const { readJsonFile, checkPlanModelFile } = await import('./plan-file.js');
    const { validatePlan } = await import('../plan/validate.js');
    const plan = validatePlan(readJsonFile(a.values.plan), a.values.plan);
    checkPlanModelFile(plan, file, a.values.plan);
    if (plan.cuts.some((c) => c === null)) throw kerfError('KERF_ERR_PLAN', `${a.values.plan}: field 'cuts' has no cut ids (a plan from imported Scission profiles); plan from kerf profiles to split`);
    cuts = plan.cuts as number[];
  } else if (a.values.cuts !== undefined) {
    cuts = parseIntList(a.values.cuts, '--cuts', { allowEmpty: true });
  } else throw kerfError('KERF_ERR_USAGE', `missing --cuts (or --plan)\n${HELP}`);
  const optimization = a.values.optimization as 'disabled';
  if (!['disabled', 'basic', 'extended', 'all'].includes(optimization)) throw kerfError('KERF_ERR_USAGE', `--optimization '${optimization}': expected disabled, basic, extended or all`);
  const seed = Number(a.values.seed);
  if (!Number.isInteger(seed)) throw kerfError('KERF_ERR_USAGE', `--seed '${a.values.seed}' is not an integer`);

  const { prepareModel } = await import('../engine/prepare.js');
  const { splitModel } = await import('../graph/slice.js');
  const { makeManifest } = await import('../graph/manifest.js');
  const { writeSplit } = await import('../graph/save.js');
  const prep = await prepareModel(file, { inputShapes: parseInputShapes(a.values['input-shape']), order: a.values.order as 'auto' });
  const split = splitModel(prep.model, prep.analysis, cuts);
  const manifest = makeManifest(prep.model, prep.analysis, split, prep.inputShapes);
  let verify: Awaited<ReturnType<typeof import('../engine/verify.js').verifySplit>> | undefined;
  if (a.values.verify) {
    const { verifySplit } = await import('../engine/verify.js');
    let feeds;
    if (a.values.input) {
      const { parseInputFile } = await import('../engine/npy.js');
      let buf: Uint8Array;
      try { buf = readFileSync(a.values.input); } catch (e) {
        throw kerfError('KERF_ERR_FILE', `${a.values.input}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      feeds = parseInputFile(buf, a.values.input, prep.model.inputs.map((v) => ({ name: v.name, dtype: v.type!.dtype })));
    }
    verify = await verifySplit(prep, cuts, { seed, optimization, ...(feeds ? { feeds } : {}) });
  }
  const files = writeSplit(outDir, split, manifest);
  if (a.values.json) {
    process.stdout.write(JSON.stringify({ files, manifest, ...(verify ? { verify } : {}) }, null, 2) + '\n');
  } else {
    for (const [i, p] of manifest.parts.entries()) {
      const ins = p.inputs.reduce((s, t) => s + t.bytes, 0);
      process.stdout.write(`${outDir.replace(/\/$/, '')}/${p.file}: ${p.nodes} nodes, in ${p.inputs.length} tensor(s) ${fmtBytes(ins)}, out ${p.outputs.length + p.carry.length} tensor(s)${i === manifest.parts.length - 1 ? ' (model outputs)' : ''}\n`);
    }
    process.stdout.write(`${outDir.replace(/\/$/, '')}/manifest.json\n`);
    if (verify) {
      process.stdout.write(`verify (${verify.optimization}): max abs diff ${verify.maxAbsDiff}, ${verify.bitwiseEqual ? 'bitwise equal' : 'NOT bitwise equal'} to the whole model\n`);
    }
  }
  if (verify && optimization === 'disabled' && !verify.bitwiseEqual) {
    throw kerfError('KERF_ERR_VERIFY', `${file}: chained parts differ from the whole model (max abs diff ${verify.maxAbsDiff})`);
  }
  return 0;
}

import { parse, parseInputShapes, requireOne } from './args.js';
import { fmtBytes, fmtCount, table } from './format.js';
import type { Granularity } from '../graph/cuts.js';
import { tensorBytes } from '../graph/dtypes.js';
import { kerfError } from '../errors.js';

const HELP = `usage: kerf inspect <model.onnx> [--input-shape NAME=DxD…] [--granularity single|all] [--order auto|file|depth|greedy] [--json]

Inputs and outputs, ops by type, parameters, FLOPs, and every cut with the tensors and bytes
that cross it. Cut ids refer to kerf's topological order and are what \`kerf split --cuts\` takes.
  --input-shape      concrete shape of a dynamic input (repeatable)
  --granularity      cuts listed in the table: single-tensor cuts (default) or all
  --order            topological order the cuts refer to (default auto: fewest crossing bytes)
  --json             print the same as JSON (top-level \`cuts\` array: id, tensors, bytes, …)`;

export async function run(argv: string[]): Promise<number> {
  const a = parse(argv, {
    'input-shape': { type: 'string', multiple: true },
    granularity: { type: 'string', default: 'single' },
    order: { type: 'string', default: 'auto' },
    json: { type: 'boolean', default: false },
  }, HELP);
  if (!a) return 0;
  const file = requireOne(a.positionals, 'model file', HELP);
  const granularity = a.values.granularity as Granularity;
  if (granularity !== 'single' && granularity !== 'all') throw kerfError('KERF_ERR_USAGE', `--granularity '${granularity}': expected single or all`);
  const order = a.values.order as 'auto';
  if (!['auto', 'file', 'depth', 'greedy'].includes(order)) throw kerfError('KERF_ERR_USAGE', `--order '${order}': expected auto, file, depth or greedy`);
  const { prepareModel } = await import('../engine/prepare.js');
  const { blockCuts, blocksOf } = await import('../graph/cuts.js');
  const prep = await prepareModel(file, { inputShapes: parseInputShapes(a.values['input-shape']), order });
  const { model, analysis } = prep;
  const ops: Record<string, number> = {};
  for (const n of model.nodes) ops[n.opType] = (ops[n.opType] ?? 0) + 1;
  const io = (names: { name: string }[]) => names.map((v) => {
    const i = analysis.tensors.get(v.name);
    return { name: v.name, dtype: i?.dtype ?? null, shape: i?.dims ?? null, bytes: i ? tensorBytes(i.dtype, i.dims) : null };
  });
  const chosen = blockCuts(analysis, granularity);
  const blocks = blocksOf(model, analysis, chosen.map((c) => c.id));
  const data = {
    model: { name: model.name, file, sha256: (model as { sha256?: string }).sha256 },
    opsets: Object.fromEntries(model.opsets),
    inputShapes: prep.inputShapes,
    inputs: io(model.inputs),
    outputs: io(model.outputs),
    ops,
    nodes: model.nodes.length,
    constantNodes: model.nodes.filter((n) => n.constant).length,
    params: analysis.totals.params,
    paramBytes: analysis.totals.paramBytes,
    flops: analysis.totals.flops,
    order: analysis.orderStrategy,
    granularity,
    cuts: analysis.cuts.map((c) => ({ ...c })),
    blocks: blocks.map(({ nodes, ...b }) => ({ ...b, nodeCount: nodes.length })),
  };
  if (a.values.json) {
    process.stdout.write(JSON.stringify(data, null, 2) + '\n');
    return 0;
  }
  const out: string[] = [];
  out.push(`${model.name}  (${file})`);
  out.push(`  opsets: ${[...model.opsets].map(([d, v]) => `${d || 'ai.onnx'} ${v}`).join(', ')}`);
  for (const v of data.inputs) out.push(`  input   ${v.name}  ${v.dtype} [${v.shape?.join('×')}]  ${fmtBytes(v.bytes ?? 0)}`);
  for (const v of data.outputs) out.push(`  output  ${v.name}  ${v.dtype} [${v.shape?.join('×')}]  ${fmtBytes(v.bytes ?? 0)}`);
  out.push(`  nodes: ${data.nodes} (${data.constantNodes} constant, recomputed where needed)   params: ${fmtCount(data.params)} (${fmtBytes(data.paramBytes)})   FLOPs: ${fmtCount(data.flops)}`);
  out.push(`  ops: ${Object.entries(ops).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  out.push('');
  const single = analysis.cuts.filter((c) => c.single).length;
  out.push(`${analysis.cuts.length} cuts (${single} single-tensor) in ${analysis.orderStrategy} order; showing ${granularity === 'all' ? 'all' : 'single-tensor'} cuts:`);
  out.push(table(['cut', 'after node', 'tensors', 'bytes', 'params before', 'FLOPs before', 'FLOPs after'],
    chosen.map((c) => [c.id, c.after, c.tensors.length === 1 ? c.tensors[0]! : `${c.tensors.length}: ${c.tensors.slice(0, 3).join(', ')}${c.tensors.length > 3 ? ', …' : ''}`,
      fmtBytes(c.bytes), fmtCount(c.paramsBefore), fmtCount(c.flopsBefore), fmtCount(c.flopsAfter)])));
  if (granularity === 'single' && single < analysis.cuts.length) out.push(`(${analysis.cuts.length - single} multi-tensor cuts not shown: --granularity all)`);
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

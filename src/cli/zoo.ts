import { writeFile } from 'node:fs/promises';
import { parse } from './args.js';
import { fmtBytes, fmtCount, table } from './format.js';
import { kerfError } from '../errors.js';

const HELP = `usage: kerf zoo list [--json]
       kerf zoo export NAME -o FILE.onnx [--batch N|NAME] [--seed S] [--batchnorm node|folded] [--opset 11..21]
                                         [--external-data FILE.bin]

Standard architectures (torchvision's layer structure) with seeded random weights, for
what-if planning without a model file. Input \`input\` float32 [batch,3,224,224], output \`logits\`
[batch,1000]. \`kerf profile zoo:NAME\` and \`kerf inspect\` take the exported file.
  list               name, trainable parameters, multiply-accumulates per image, nodes
  export NAME        write the model (names: kerf zoo list; aliases like resnet-50, mobilenetv2, inception)
  -o, --output       model file to write
  --batch            batch size (default 1) or a dimension name such as N for a dynamic batch
  --seed             seed of the random weights (default 0; same seed, same bytes)
  --batchnorm        BatchNormalization nodes (default) or folded into Conv biases as torch.onnx.export leaves them
  --opset            default-domain opset (default 13)
  --external-data    also write the weights to this file beside the model (ONNX external data)
  --json             list as JSON`;

function int(v: string | undefined, flag: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^-?\d+$/.test(v)) throw kerfError('KERF_ERR_USAGE', `${flag} '${v}': expected an integer`);
  return Number(v);
}

export async function run(argv: string[]): Promise<number> {
  const a = parse(argv, {
    output: { type: 'string', short: 'o' },
    batch: { type: 'string' },
    seed: { type: 'string' },
    batchnorm: { type: 'string' },
    opset: { type: 'string' },
    'external-data': { type: 'string' },
    json: { type: 'boolean', default: false },
  }, HELP);
  if (!a) return 0;
  const [sub, ...rest] = a.positionals;
  const zoo = await import('../zoo/index.js');
  const batchNorm = a.values.batchnorm;
  if (batchNorm !== undefined && batchNorm !== 'node' && batchNorm !== 'folded') {
    throw kerfError('KERF_ERR_USAGE', `--batchnorm '${batchNorm}': expected node or folded`);
  }
  const b = a.values.batch;
  const opts = {
    batch: b === undefined ? 1 : /^\d+$/.test(b) ? Number(b) : b,
    seed: int(a.values.seed, '--seed', 0),
    opset: int(a.values.opset, '--opset', 13),
    batchNorm: (batchNorm ?? 'node') as 'node' | 'folded',
  };

  if (sub === 'list') {
    if (rest.length > 0) throw kerfError('KERF_ERR_USAGE', `zoo list takes no names\n${HELP}`);
    const list = zoo.zooList(opts);
    if (a.values.json) {
      process.stdout.write(JSON.stringify({ models: list }, null, 2) + '\n');
      return 0;
    }
    process.stdout.write(table(['name', 'params', 'MACs', 'nodes', 'weights', 'description'], list.map((z) => [
      z.name, fmtCount(z.params), fmtCount(z.macs), z.nodes, fmtBytes((z.params + z.buffers) * 4), z.description,
    ])) + '\n');
    return 0;
  }
  if (sub === 'export') {
    if (rest.length !== 1) throw kerfError('KERF_ERR_USAGE', `zoo export takes one model name\n${HELP}`);
    const out = a.values.output;
    if (!out) throw kerfError('KERF_ERR_USAGE', `zoo export needs -o FILE.onnx\n${HELP}`);
    const name = zoo.resolveZooName(rest[0]!);
    const builder = zoo.zooBuilder(name, opts);
    const ext = a.values['external-data'];
    let written: number;
    if (ext) {
      const { basename, dirname, join, resolve } = await import('node:path');
      const loc = basename(ext);
      if (ext !== loc && resolve(dirname(ext)) !== resolve(dirname(out))) {
        throw kerfError('KERF_ERR_USAGE', `--external-data '${ext}': must sit in the model's directory (ONNX resolves it beside the model)`);
      }
      const { model, data } = builder.toBytesWithExternalData(loc);
      await writeOut(join(dirname(out), loc), data);
      await writeOut(out, model);
      written = model.length + data.length;
    } else {
      const bytes = builder.toBytes();
      await writeOut(out, bytes);
      written = bytes.length;
    }
    const info = zoo.zooInfo(name, opts);
    if (a.values.json) process.stdout.write(JSON.stringify({ file: out, bytes: written, ...info }, null, 2) + '\n');
    else process.stdout.write(`${out}: ${name}, ${fmtCount(info.params)} params, ${fmtCount(info.macs)} MACs, ${info.nodes} nodes, ${fmtBytes(written)}\n`);
    return 0;
  }
  throw kerfError('KERF_ERR_USAGE', sub === undefined ? HELP : `unknown zoo command '${sub}' (list or export)\n${HELP}`);
}

async function writeOut(file: string, bytes: Uint8Array): Promise<void> {
  try {
    await writeFile(file, bytes);
  } catch (e) {
    throw kerfError('KERF_ERR_FILE', `${file}: cannot write (${(e as Error).message})`);
  }
}

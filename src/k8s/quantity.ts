/** Kubernetes resource quantities ("3977Mi", "4Gi", "3500m", "1e3"): parse and print in canonical form. */
import { kerfError } from '../errors.js';

const SUFFIX: Record<string, number> = {
  '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** The value of a quantity (bytes for memory, cores for CPU); throws KERF_ERR_KUBERNETES naming `where`. */
export function parseQuantity(q: unknown, where: string): number {
  const s = typeof q === 'number' ? String(q) : q;
  const m = typeof s === 'string' ? /^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$/.exec(s.trim()) : null;
  if (!m) throw kerfError('KERF_ERR_KUBERNETES', `${where}: '${String(q)}' is not a Kubernetes quantity`);
  return Number(m[1]) * SUFFIX[m[2] ?? '']!;
}

/** CPU millicores in the form the API server prints back ("1", "1500m"). */
export function formatCpu(milli: number): string {
  return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`;
}

/** MiB in the form the API server prints back ("512Mi", "2Gi"). */
export function formatMiB(mib: number): string {
  return mib % 1024 === 0 ? `${mib / 1024}Gi` : `${mib}Mi`;
}

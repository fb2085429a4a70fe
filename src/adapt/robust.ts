/** Small robust statistics used by the monitors. Pure: no clock, no I/O. */

/** Median of a list (NaN when empty). Does not modify its input. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  const h = s.length >> 1;
  return s.length % 2 === 1 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/** Mean after dropping the `trim` fraction (0 ≤ trim < 0.5) at each end; the median when
 * trimming would leave nothing. */
export function trimmedMean(values: readonly number[], trim: number): number {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  const k = Math.floor(s.length * trim);
  if (s.length - 2 * k <= 0) return median(values);
  let sum = 0;
  for (let i = k; i < s.length - k; i++) sum += s[i]!;
  return sum / (s.length - 2 * k);
}

/** Weighted median: the smallest value whose cumulative weight reaches half the total. */
export function weightedMedian(values: readonly number[], weights: readonly number[]): number {
  const n = values.length;
  if (n === 0) return NaN;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a]! - values[b]!);
  let total = 0;
  for (let i = 0; i < n; i++) total += Math.max(0, weights[i]!);
  if (!(total > 0)) return median(values);
  let acc = 0;
  for (const i of idx) {
    acc += Math.max(0, weights[i]!);
    if (acc >= total / 2) return values[i]!;
  }
  return values[idx[n - 1]!]!;
}

/** Median absolute deviation scaled to a normal σ (1.4826 × MAD). */
export function madSigma(values: readonly number[], center = median(values)): number {
  return 1.4826 * median(values.map((v) => Math.abs(v - center)));
}

/**
 * Squared coefficient of variation (variance ÷ mean²) after dropping the `trim` fraction at
 * each end; null with fewer than `min` values or a mean of 0. Trimming keeps one wild sample
 * from posing as variability, while two modes of a bursty load (both well inside) stay.
 */
export function trimmedScv(values: readonly number[], trim = 0.1, min = 5): number | null {
  if (values.length < min) return null;
  const s = Float64Array.from(values).sort();
  const k = Math.floor(s.length * trim);
  const n = s.length - 2 * k;
  if (n < 2) return null;
  let sum = 0;
  for (let i = k; i < s.length - k; i++) sum += s[i]!;
  const mean = sum / n;
  if (!(mean > 0)) return null;
  let v = 0;
  for (let i = k; i < s.length - k; i++) v += (s[i]! - mean) ** 2;
  return v / (n - 1) / (mean * mean);
}

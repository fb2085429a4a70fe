import { mulberry32 } from '../../src/util/prng.js';
/** Seeded PRNG for the adapt tests (mulberry32) and a standard normal from it. */
export const rng: (seed: number) => () => number = mulberry32;

export function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

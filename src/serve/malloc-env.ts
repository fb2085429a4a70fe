/*
 * The environment of the tier processes kerf starts (kerf up, an agent's workers, the operator's
 * pods): a module of its own, so the operator's manifests use it without the serving stack.
 */

/**
 * glibc malloc setting every worker starts with, unless the environment sets it: two arenas, not
 * 8 per core, so the memory a switch or rollout frees (the old version's session, the whole model
 * once sliced) is reused instead of kept per thread. `kerf bench soak` (resnet18, 10 min, a live
 * repartition every 10 s; docs/switch.md): RSS growth 1.5 / −0.7 / −17 % per tier with it,
 * 11.6 / 23.1 / 14.1 % without. A low trim threshold as well (MALLOC_TRIM_THRESHOLD_=131072) gave
 * the smallest RSS but a larger relative sawtooth (1.2 / 16 / 21 %), so it is not a default.
 * Nor, for a worker, are the gateway's high thresholds (below): in the soak with them on every
 * tier a worker, which frees a version's weights at every switch, settled 15.6 % higher after
 * the warm-up (with 4 MiB / 64 MiB: 4.2 / 7.7 / 2.5 % per tier), where the gateway held (0.5 %).
 */
export const WORKER_MALLOC_ENV: Readonly<Record<string, string>> = Object.freeze({ MALLOC_ARENA_MAX: '2' });

/**
 * The gateway's: the workers', and buffers up to 32 MiB (glibc's own ceiling for its sliding
 * threshold) from the heap rather than fresh mappings, with up to 256 MiB freed at the heap's top
 * kept for reuse. A request's buffers (the body, the hand-off to the compute thread, the answer:
 * ~4 MB for a 1.2 MB input) live until V8 collects them, every ten or so requests; with glibc's
 * sliding thresholds that memory went back to the system at each collection and was faulted in
 * again page by page until the thresholds had slid up: over its first 30 requests a gateway
 * spent a median 12.5–15.2 ms of CPU on each, ~3–5 ms later; with these 3.5–5.0 ms from the first
 * collection on (`node scripts/gateway-cpu.mjs --malloc worker` against `--malloc gateway`, 60
 * requests; docs/profile.md). At 5 % of a core that is ~200 ms a request.
 */
export const GATEWAY_MALLOC_ENV: Readonly<Record<string, string>> = Object.freeze({
  ...WORKER_MALLOC_ENV, MALLOC_MMAP_THRESHOLD_: String(32 * 2 ** 20), MALLOC_TRIM_THRESHOLD_: String(256 * 2 ** 20),
});

/**
 * Node flags a gateway starts with (they cannot go in NODE_OPTIONS): an old generation of 64 MiB
 * before V8's heap counts as full. A gateway's JS heap is ~12 MB live, and from a heap that small
 * V8 began a full mark-compact every 4–5 requests (43 in 200 requests of the demo's OCR detector,
 * `node --trace-gc`), each 40–80 ms of CPU with its helper threads: at 5 % of a core a second or
 * more, on one request in four or five. With this flag: 0 in 200, after the 3 at start, and
 * 18 MB more resident (420 against 402 MB). Not for workers: with it on every tier, `kerf bench
 * soak` saw the workers settle 10.9 and 13.2 % higher after the warm-up (the gateway 0.5 %).
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = Object.freeze(['--initial-old-space-size=64']);

/** Entries as a container's `env`. */
export function envEntries(env: Readonly<Record<string, string>>): { name: string; value: string }[] {
  return Object.entries(env).map(([name, value]) => ({ name, value }));
}

/**
 * Evaluated before onnxruntime-node loads (src/engine/ort.ts imports it first): settings
 * onnxruntime reads from the environment once, when it initialises.
 *
 * Telemetry: onnxruntime 1.29 and later, on Linux and macOS too, start an uploader in every
 * process that creates a session. It resolves and contacts mobile.events.data.microsoft.com
 * (seen with strace in a kerf gateway: DNS lookups from new threads a few seconds after start,
 * one thread more than without it) and records model and session events. A kerf tier on an
 * edge device should not phone home, nor spend its CPU share on it, so kerf sets
 * `ORT_DISABLE_TELEMETRY=1`, onnxruntime's documented opt-out, unless the variable is set
 * already: `ORT_DISABLE_TELEMETRY=0` keeps onnxruntime's default. Every process kerf starts
 * inherits the setting, and worker threads share it.
 */
if (process.env.ORT_DISABLE_TELEMETRY === undefined) process.env.ORT_DISABLE_TELEMETRY = '1';

export {};

/** Wire codecs: pure functions on a tensor's bytes (lossless lz4/zstd with byte shuffle, lossy fp16/int8). */
export * from './spec.js';
export { encodeEnvelope, decodeEnvelope, envelopeStages, ENVELOPE_HEADER_BYTES, ENVELOPE_VERSION, type TensorInfo, type EnvelopeStages } from './envelope.js';
export { halfBits } from './lossy.js';
export { codecUnavailable } from './lossless.js';

export * from './dtypes.js';
export * from './model.js';
export * from './load.js';
export * from './cuts.js';
export * from './slice.js';
export * from './manifest.js';
export * from './save.js';
export { ModelBuilder, GraphBuilder, attr, Rng, mulberry32, seedFor, fanIn, tensorProto, valueInfoProto, attributeProto, encodeRaw, irVersionForOpset, type AttrValue, type ModelOptions, type NodeOptions, type TensorData, type ExternalDataOptions } from './builder.js';

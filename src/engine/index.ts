export * from './ort.js';
export * from './shapes.js';
export * from './prepare.js';
export * from './chain.js';
export * from './verify.js';
export * from './npy.js';

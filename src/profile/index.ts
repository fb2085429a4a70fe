export * from './types.js';
export * from './scission.js';

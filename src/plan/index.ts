export * from './place/index.js';
export * from './types.js';
export * from './network.js';
export * from './criteria.js';
export * from './problem.js';
export * from './search.js';
export * from './document.js';
export * from './scission.js';

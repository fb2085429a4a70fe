/** kerf's library API: every CLI verb is a thin wrapper over what is exported here. */
export * from './errors.js';
export * from './graph/index.js';
export * from './engine/index.js';
export * from './profile/index.js';
export * from './plan/index.js';
export * from './serve/index.js';
export * from './adapt/index.js';
export * from './link/index.js';
export * from './zoo/index.js';

export * from './types.js';
export * from './scission.js';
export * from './measure.js';
export * from './trace.js';
export * from './profile.js';
export * from './schema.js';
export * from './agent.js';
export * from './plot.js';

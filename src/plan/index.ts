export * from './place/index.js';

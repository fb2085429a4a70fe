/** serve room: wire protocol between tiers (workers and gateway build on it). */
export * from './protocol.js';

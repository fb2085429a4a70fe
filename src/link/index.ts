/** link room: a network link emulator (TCP proxy with rate, delay and jitter) and its traces. */
export { Link, validateConfig, type LinkConfig, type LinkOptions, type LinkStats, type DirectionStats } from './link.js';
export { parseTrace, type TraceStep } from './trace.js';
export { parseRate, parseDuration, parseHostPort, formatRate, rateToText, type HostPort } from './units.js';
export { TokenBucket, DelayLine, quantumBytes } from './shaper.js';
export { configToJson, configFromJson } from './control.js';

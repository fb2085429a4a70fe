/**
 * The one error catalogue. Every error kerf raises for a user mistake or an outside
 * failure carries a stable `code`; errors that cross a process or socket are matched on
 * `code`, never `instanceof`. docs/errors.md lists the same codes (a test keeps them in step).
 */
export const ErrorCodes = {
  KERF_ERR_USAGE: 'bad command-line usage',
  KERF_ERR_FILE: 'a file cannot be read or written',
  KERF_ERR_ONNX_PARSE: 'a file is not a valid ONNX model',
  KERF_ERR_GRAPH: 'the graph is malformed (missing producer, cycle, duplicate output)',
  KERF_ERR_SHAPE: 'a tensor shape is unknown or an input shape is wrong',
  KERF_ERR_CUT: 'an unknown or invalid cut was asked for',
  KERF_ERR_VERIFY: 'chained parts differ from the whole model',
  KERF_ERR_ENGINE: 'onnxruntime failed to load or run a model',
  KERF_ERR_PROFILE: 'a profile is malformed or does not match the model',
  KERF_ERR_IMPORT: 'a foreign benchmark file cannot be imported',
  KERF_ERR_NETWORK_FILE: 'a network description is malformed or lacks a system',
  KERF_ERR_CRITERIA: 'a planning criterion is malformed',
  KERF_ERR_PLAN: 'a plan is malformed or cannot be made',
  KERF_ERR_CONFIG: 'a configuration file is malformed',
  KERF_ERR_PROTOCOL: 'a peer sent bytes that break the wire protocol',
  KERF_ERR_AUTH: 'a peer presented a wrong token, or a request that changes a pipeline came without the gateway\'s token',
  KERF_ERR_CLOSED: 'the object was closed',
  KERF_ERR_TIMEOUT: 'an operation timed out',
  KERF_ERR_UPSTREAM: 'a downstream tier failed or is unreachable',
  KERF_ERR_OVERLOADED: 'a queue is full',
  KERF_ERR_PLACE: 'a cluster placement is infeasible or malformed',
  KERF_ERR_REMOTE: 'a remote agent refused or failed a job',
  KERF_ERR_KUBERNETES: 'a Kubernetes object is malformed or the API server refused a request',
  KERF_ERR_INTEGRITY: 'a fetched file does not have the expected sha256',
  KERF_ERR_MEMORY: 'a stage does not fit in the memory its host offers',
  KERF_ERR_CODEC: 'a peer does not decode the codec asked for, or this process cannot run it (its npm package failed to load: run npm ci)',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class KerfError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'KerfError';
    this.code = code;
    this.details = details;
  }
}

export function kerfError(code: ErrorCode, message: string, details?: Record<string, unknown>): KerfError {
  return new KerfError(code, message, details);
}

/** True for any error-like value with a kerf code (works across processes after JSON). */
export function isKerfError(e: unknown): e is { code: ErrorCode; message: string } {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' &&
    (e as { code: string }).code in ErrorCodes;
}

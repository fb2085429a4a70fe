/**
 * The JSON Schema of a profile (written out as docs/schema/profile.schema.json; a test keeps the
 * two equal) and a small validator for the subset of JSON Schema it uses, so profiles read from
 * files or a remote agent are checked once, with the first bad field named.
 */
import { readFileSync } from 'node:fs';
import { kerfError } from '../errors.js';
import type { Profile } from './types.js';

const num = { type: 'number' };
const nonneg = { type: 'number', minimum: 0 };
const count = { type: 'integer', minimum: 0 };

/** JSON Schema (draft 2020-12) of `kerf.profile/v1`. */
export const PROFILE_JSON_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://kerf.dev/schema/profile.schema.json',
  title: 'kerf profile (kerf.profile/v1)',
  description: 'What one system measured for each block of one model. Times in seconds, sizes in bytes.',
  type: 'object',
  required: ['schema', 'model', 'system', 'granularity', 'source', 'blocks'],
  properties: {
    schema: { const: 'kerf.profile/v1' },
    model: {
      type: 'object',
      required: ['name'],
      properties: {
        name: { type: 'string', minLength: 1 },
        file: { type: 'string' },
        sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        inputBytes: { ...nonneg, description: 'bytes of the model input(s), as a device that runs nothing sends them' },
        inputShapes: { type: 'object', additionalProperties: { type: 'array', items: count } },
      },
    },
    system: {
      type: 'object',
      required: ['name'],
      properties: {
        name: { type: 'string', minLength: 1 },
        tier: { enum: ['device', 'edge', 'cloud'] },
        cpu: { type: 'string' },
        cores: count,
        memoryBytes: nonneg,
        threads: count,
        hostname: { type: 'string' },
      },
    },
    granularity: { enum: ['single', 'all', 'imported'] },
    source: { enum: ['kerf', 'scission'] },
    blocks: { type: 'array', minItems: 1, items: { $ref: '#/$defs/block' } },
    whole: {
      type: 'object',
      required: ['latency'],
      properties: { latency: { $ref: '#/$defs/latency' }, cpuS: { ...nonneg, description: 'median CPU seconds (all threads of the process) of a whole-model run at full speed' }, memoryBytes: nonneg },
    },
    blockSumOverWhole: { ...nonneg, description: 'sum of block medians / whole-model median: the cost of cutting' },
    callOverheadS: { ...nonneg, description: "seconds a serving process spends per request and part beyond the blocks' own time (compute-thread hand-over, onnxruntime's fixed cost per run); the adapt cost model adds it to every tier" },
    settings: {
      type: 'object',
      required: ['repeats', 'warmup', 'threads', 'optimization'],
      properties: {
        repeats: count, warmup: count, threads: count, optimization: { type: 'string' },
        method: { enum: ['sessions', 'trace'] }, seed: { type: 'integer' }, runtime: { type: 'string' },
        cpuQuota: {
          type: 'object',
          description: 'kerf profile --cpus: the share of one core the timing was held to, the CFS period, the slowdown of the whole model under it that scaled every block, and the CPU seconds (median) a run of the whole model took under it',
          required: ['share', 'periodUs', 'slowdown'],
          properties: { share: nonneg, periodUs: count, slowdown: nonneg, cpuS: nonneg },
        },
      },
    },
    createdAt: { type: 'string' },
  },
  $defs: {
    latency: {
      type: 'object',
      description: 'seconds',
      required: ['median', 'p90', 'min', 'spread', 'runs'],
      properties: { median: nonneg, p90: nonneg, min: nonneg, spread: nonneg, runs: { type: 'integer', minimum: 1 } },
    },
    block: {
      type: 'object',
      required: ['index', 'firstLayer', 'lastLayer', 'latency', 'outputBytes', 'paramBytes'],
      properties: {
        index: count,
        firstLayer: { type: 'integer', description: "kerf: position in kerf's topological order; Scission: Keras layer index" },
        lastLayer: { type: 'integer' },
        cutId: { ...count, description: 'cut at the end of the block (kerf models; absent on the last block)' },
        outputTensors: { type: 'array', items: { type: 'string' } },
        latency: { $ref: '#/$defs/latency' },
        outputBytes: { ...nonneg, description: 'bytes the block hands to the next (crossing tensors of its end cut)' },
        paramBytes: nonneg,
        flops: nonneg,
        memoryBytes: nonneg,
        highSpread: { type: 'boolean' },
        codecs: {
          type: 'object',
          description: 'per codec (canonical name): its effect on the crossing tensors, as measured on this system',
          additionalProperties: {
            type: 'object', required: ['ratio', 'encodeS', 'decodeS'], additionalProperties: false,
            properties: { ratio: nonneg, encodeS: nonneg, decodeS: nonneg, lossy: { type: 'boolean' } },
          },
        },
        nodes: {
          type: 'array',
          items: { type: 'object', required: ['name', 'opType', 'seconds'], properties: { name: { type: 'string' }, opType: { type: 'string' }, seconds: num } },
        },
      },
    },
  },
} as const;

type Schema = { [k: string]: unknown };

/** Validate `value` against a JSON Schema (the subset kerf's schemas use); returns the first error, or null. */
export function validateJson(schema: Schema, value: unknown, root: Schema = schema, path = '$'): string | null {
  if (typeof schema.$ref === 'string') {
    const m = /^#\/\$defs\/(.+)$/.exec(schema.$ref);
    const target = m ? (root.$defs as Record<string, Schema> | undefined)?.[m[1]!] : undefined;
    if (!target) return `${path}: schema reference ${schema.$ref} is unknown`;
    return validateJson(target, value, root, path);
  }
  if ('const' in schema && value !== schema.const) return `${path}: expected ${JSON.stringify(schema.const)}`;
  if (Array.isArray(schema.enum) && !schema.enum.includes(value as never)) return `${path}: expected one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  if (schema.type !== undefined) {
    const types = (Array.isArray(schema.type) ? schema.type : [schema.type]) as string[];
    const is = (type: string) => type === 'object' ? typeof value === 'object' && value !== null && !Array.isArray(value)
      : type === 'array' ? Array.isArray(value)
      : type === 'integer' ? Number.isInteger(value)
      : type === 'number' ? typeof value === 'number' && Number.isFinite(value)
      : type === 'null' ? value === null
      : typeof value === type;
    const article = (type: string) => type === 'integer' || type === 'array' || type === 'object' ? `an ${type}` : type === 'null' ? 'null' : `a ${type}`;
    if (!types.some(is)) return `${path}: expected ${types.map(article).join(' or ')}`;
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) return `${path}: ${value} is below ${schema.minimum}`;
  }
  if (typeof value === 'string') {
    if (typeof schema.minLength === 'number' && value.length < schema.minLength) return `${path}: is empty`;
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern).test(value)) return `${path}: does not match ${schema.pattern}`;
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) return `${path}: needs at least ${schema.minItems} item(s)`;
    if (schema.items) {
      for (let i = 0; i < value.length; i++) {
        const e = validateJson(schema.items as Schema, value[i], root, `${path}[${i}]`);
        if (e) return e;
      }
    }
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    for (const r of (schema.required as string[] | undefined) ?? []) if (!(r in o)) return `${path}: field '${r}' is missing`;
    const props = (schema.properties as Record<string, Schema> | undefined) ?? {};
    for (const [k, v] of Object.entries(o)) {
      const sub = props[k] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties as Schema : undefined);
      if (schema.additionalProperties === false && !props[k]) return `${path}: unknown field '${k}'`;
      if (sub && v !== undefined) {
        const e = validateJson(sub, v, root, `${path}.${k}`);
        if (e) return e;
      }
    }
  }
  return null;
}

/** Check a parsed profile; throws KERF_ERR_PROFILE naming `source` and the first bad field. Returns it frozen. */
export function checkProfile(value: unknown, source = 'profile'): Readonly<Profile> {
  const e = validateJson(PROFILE_JSON_SCHEMA as unknown as Schema, value);
  if (e) throw kerfError('KERF_ERR_PROFILE', `${source}: not a kerf profile: ${e}`);
  return deepFreeze(value as Profile);
}

/** Read and check a profile file. */
export function readProfile(file: string): Readonly<Profile> {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) {
    throw kerfError('KERF_ERR_FILE', `${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let json: unknown;
  try { json = JSON.parse(text); } catch (e) {
    throw kerfError('KERF_ERR_PROFILE', `${file}: not JSON (${(e as Error).message})`);
  }
  return checkProfile(json, file);
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}

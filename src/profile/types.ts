/**
 * The Profile: what one system measured for each block of one model. Plain, versioned,
 * JSON-serialisable; documented by docs/schema/profile.schema.json.
 * Times are in seconds (as Scission's), sizes in bytes.
 */
export interface LatencyStats {
  /** median of the timed runs, seconds */
  median: number;
  /** 90th percentile, seconds */
  p90: number;
  /** fastest run, seconds */
  min: number;
  /** relative spread (p90 - min) / median; 0 when a single value was imported */
  spread: number;
  /** number of timed runs (1 for imported data) */
  runs: number;
}

export interface BlockProfile {
  /** position of the block, 0-based */
  index: number;
  /** first and last layer of the block: Scission's Keras layer indices for imported data,
   * positions in kerf's topological node order for ONNX models */
  firstLayer: number;
  lastLayer: number;
  /** id of the cut at the end of this block (kerf models); absent on the last block */
  cutId?: number;
  /** names of tensors leaving the block (kerf models) */
  outputTensors?: string[];
  latency: LatencyStats;
  /** bytes this block hands to the next (the crossing tensors of its end cut; for the last
   * block, the model outputs); Scission data: size of the block output saved as .npy */
  outputBytes: number;
  /** bytes of weights the block holds */
  paramBytes: number;
  /** approximate FLOPs (2 x multiply-accumulates of Conv, Gemm, MatMul) */
  flops?: number;
  /** resident memory of the block's session, bytes, when measured: the process's RSS growth while the
   * session was created and first run, and at least its weights plus its input and output tensors */
  memoryBytes?: number;
  /** set when the spread of this block's timings is high: treat its figure with care */
  highSpread?: boolean;
  /** per codec (canonical name), what it does to this block's crossing tensors on this system
   * (kerf profile --codecs): raw ÷ coded bytes, and seconds to encode and to decode them once */
  codecs?: Record<string, BlockCodec>;
  /** optional per-node breakdown (kerf profile --nodes) */
  nodes?: { name: string; opType: string; seconds: number }[];
}

/** One codec on one block's output, as measured on the profiled system. */
export interface BlockCodec {
  ratio: number;
  encodeS: number;
  decodeS: number;
  /** set for codecs that change values (fp16, int8) */
  lossy?: boolean;
}
export interface SystemInfo {
  name: string;
  tier?: 'device' | 'edge' | 'cloud';
  cpu?: string;
  cores?: number;
  memoryBytes?: number;
  threads?: number;
  hostname?: string;
}

export interface Profile {
  schema: 'kerf.profile/v1';
  model: {
    name: string;
    file?: string;
    sha256?: string;
    /** bytes of the model's input(s) as sent by a device that runs nothing */
    inputBytes?: number;
    inputShapes?: Record<string, number[]>;
  };
  system: SystemInfo;
  /** how blocks were formed: kerf cut granularity, or imported */
  granularity: 'single' | 'all' | 'imported';
  source: 'kerf' | 'scission';
  blocks: BlockProfile[];
  /** the whole model run unsplit in one session */
  /** `cpuS`: median CPU seconds (the process's, all threads) of a whole-model run at full speed:
   * the machine's speed, which other processes competing for the cores do not change */
  whole?: { latency: LatencyStats; cpuS?: number; memoryBytes?: number };
  /** sum of block medians / whole-model median: the cost of cutting */
  blockSumOverWhole?: number;
  /** seconds a serving process on this system spends per request and part beyond the blocks'
   * own time: handing the tensors to its compute thread and back, onnxruntime's fixed cost per
   * run (median runs of a one-node model through the compute thread). The adapt controller's
   * cost model adds it to every tier (absent: 0). */
  callOverheadS?: number;
  settings?: {
    repeats: number; warmup: number; threads: number; optimization: string;
    /** how block times were taken: one session per block, or onnxruntime's per-node trace of whole-model runs */
    method?: 'sessions' | 'trace';
    /** seed of the random input */
    seed?: number;
    /** runtime and version that measured */
    runtime?: string;
    /** `kerf profile --cpus`: the share of one core the timing was held to (cgroup CFS quota),
     * its period, the slowdown of the whole model under it that scaled every block, and the CPU
     * seconds a run of the whole model took under it (median; work held to a few % of a core
     * costs more CPU when the host is busy, and this is how much it cost then) */
    cpuQuota?: { share: number; periodUs: number; slowdown: number; cpuS?: number };
  };
  createdAt?: string;
}

export const PROFILE_SCHEMA = 'kerf.profile/v1' as const;

/** adapt: pure estimators (bandwidth/RTT per link, load per tier), the split decision with
 * hysteresis, and the offline evaluation on AdaptiveDNN's measurements. */
export {
  LinkEstimator, LoadEstimator, ArrivalRate, loadFactor,
  type LinkEstimate, type LinkEstimatorOptions, type ShiftOptions, type LoadEstimate, type LoadEstimatorOptions,
  type ExecSample, type LoadFactorOptions,
} from './estimators.js';
export {
  splitCostModel, splitCostModelFromProfiles, splitCostModelFromPrefix, predictSplitLatency, sojourn, RHO_MAX, SATURATED_SLOPE, SplitSearch, Decider,
  withCodecs, linkTransfer, chooseLinkCodecs, type SplitCodecs,
  type SplitModel, type AdaptConditions, type AdaptMode, type DeciderOptions, type DecideOptions, type Decision,
} from './decide.js';
export { Calibration, type CalibrationOptions } from './calibrate.js';
export { loadAdaptiveDnn, parseWeightsFile, type MeasuredCut, type MeasuredNetwork } from './adaptivednn.js';
export {
  evaluateNetwork, evaluateOffline, formatOfflineReport, OFFLINE_POLICIES,
  type OfflinePolicy, type OfflineOptions, type OfflineReport, type NetworkReport, type PolicyStats, type ConditionRecord,
} from './offline.js';
export { LiveMonitor, LOAD_SHIFT, type RequestObservation, type LiveMonitorOptions, type MonitorSnapshot } from './monitor.js';
export {
  AdaptController, attachAdaptFromArgs, loadTierProfiles, liveCostModel, bestFeasible, warmCandidates, probeRanges, LOAD_PROBE_MAX_RANGES, ADAPT_SETTINGS, LIVE_MIN_GAIN,
  LOAD_PROBE_AFTER_S, LOAD_PROBE_EVERY_S,
  type AdaptSetting, type AdaptControllerOptions, type AdaptEvent, type AdaptArgs, type WarmStatus, type WarmGridOptions,
} from './live.js';

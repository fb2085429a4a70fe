/**
 * Reading a plan file for a verb that serves or splits from it (`kerf up`, `kerf split --plan`,
 * `kerf repartition --to`): parse, check with the one validator (src/plan/validate.ts), find the
 * model (--model, else the plan's modelPath relative to the plan file, else <model>.onnx beside
 * it) and refuse a model file whose sha256 is not the plan's.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { kerfError } from '../errors.js';
import { checkPlanModel, validatePlan } from '../plan/validate.js';
import type { PlanDocument } from '../plan/types.js';

/** Parse `file` as JSON (KERF_ERR_FILE when unreadable, KERF_ERR_PLAN when not JSON). */
export function readJsonFile(file: string, what = 'plan'): unknown {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) {
    throw kerfError('KERF_ERR_FILE', `${file}: cannot read the ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try { return JSON.parse(text); } catch (e) {
    throw kerfError('KERF_ERR_PLAN', `${file}: not valid JSON (${(e as Error).message})`);
  }
}

export function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** The model file a plan points at: `--model`, else modelPath beside the plan, else <model>.onnx there. */
export function planModelFile(plan: PlanDocument, file: string, model?: string): string {
  if (model !== undefined) return model;
  const path = plan.modelPath !== undefined ? resolve(dirname(file), plan.modelPath) : join(dirname(file), `${plan.model}.onnx`);
  if (!existsSync(path)) {
    throw kerfError('KERF_ERR_FILE', `${file}: model file ${path} not found (${plan.modelPath !== undefined ? `the plan's 'modelPath' ${plan.modelPath} is relative to the plan file` : `the plan names model '${plan.model}' and records no 'modelPath'`}); pass --model m.onnx`);
  }
  return path;
}

/** Check that `modelFile` is the model `plan` was made for (sha256, else name). */
export function checkPlanModelFile(plan: PlanDocument, modelFile: string, source: string): void {
  if (!existsSync(modelFile)) throw kerfError('KERF_ERR_FILE', `${modelFile}: no such model file`);
  checkPlanModel(plan, { sha256: sha256File(modelFile), names: [basename(modelFile).replace(/\.onnx$/i, '')], label: modelFile }, source);
}

/** A plan file checked, with its model found and checked. */
export function loadPlanFile(file: string, opts: { model?: string | undefined } = {}): { plan: PlanDocument; model: string } {
  const plan = validatePlan(readJsonFile(file), file);
  const model = planModelFile(plan, file, opts.model);
  checkPlanModelFile(plan, model, file);
  return { plan, model };
}

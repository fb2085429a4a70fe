/**
 * Kubernetes Events (events.k8s.io/v1) of what the operator does to a KerfPipeline — placing,
 * switching, failover, rollouts, parts — so `kubectl describe kerfpipeline` and `kubectl
 * events` show them beside the status. Pure: the Event object and the decision whether an
 * event repeats one already posted (then its `series` is updated instead of a new Event).
 */
import { createHash } from 'node:crypto';
import type { ReconcileResult } from './reconcile.js';
import type { K8sObject, KerfPipeline } from './types.js';

export const REPORTING_CONTROLLER = 'kerf.dev/operator';
/** An event equal to one posted less than this long ago counts as a repeat (ms) */
export const SERIES_WINDOW_MS = 30 * 60_000;

export type PipelineEvent = ReconcileResult['events'][number];

/** The action of an event's reason (what the operator did or saw). */
export function actionOf(reason: string): string {
  if (/^(NodeLost|AgentSilent)$/.test(reason)) return 'Failover';
  if (/^Rollout/.test(reason)) return 'Rollout';
  if (/^Parts/.test(reason)) return 'BuildParts';
  return ({ Placing: 'Place', Switched: 'Switch', PendingDropped: 'Drop', Deleting: 'Delete' } as Record<string, string>)[reason] ?? 'Reconcile';
}

/** MicroTime as the API server writes it (RFC 3339 with microseconds). */
export const microTime = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

/** The key of an event: one per pipeline, reason and note. */
export function eventKey(p: KerfPipeline, e: PipelineEvent): string {
  return createHash('sha256').update(`${p.metadata.uid ?? ''}\0${p.metadata.namespace}\0${p.metadata.name}\0${e.type}\0${e.reason}\0${e.message}`).digest('hex').slice(0, 16);
}

/** A new Event about `p`. */
export function eventObject(p: KerfPipeline, e: PipelineEvent, now: Date, instance: string): K8sObject {
  const ns = p.metadata.namespace ?? 'default';
  return {
    apiVersion: 'events.k8s.io/v1', kind: 'Event',
    metadata: { name: `${p.metadata.name}.${now.getTime().toString(16)}${eventKey(p, e).slice(0, 6)}`, namespace: ns, labels: { 'app.kubernetes.io/name': 'kerf', 'app.kubernetes.io/managed-by': 'kerf-operator' } },
    eventTime: microTime(now),
    reportingController: REPORTING_CONTROLLER,
    reportingInstance: instance.slice(0, 128),
    action: actionOf(e.reason),
    reason: e.reason.slice(0, 128),
    note: e.message.length > 1024 ? `${e.message.slice(0, 1021)}...` : e.message,
    type: e.type,
    regarding: { apiVersion: p.apiVersion, kind: p.kind, name: p.metadata.name, namespace: ns, ...(p.metadata.uid ? { uid: p.metadata.uid } : {}) },
  };
}

/** What was posted per event key: its name, how often it was seen, when first and last. */
export interface Posted { name: string; count: number; first: number; last: number }

/** Post a new Event, or count a repeat into the one posted (its series). */
export function eventStep(posted: Posted | undefined, now: number): 'create' | 'series' {
  return posted && now - posted.first < SERIES_WINDOW_MS ? 'series' : 'create';
}

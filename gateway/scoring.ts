// The scheduler's pure core: which nodes may serve a job (candidate filter), how good each one is
// (score), and in which order to try them (rank, with a deterministic tie-break). No I/O: the
// service joins chain facts and heartbeats into `NodeView`s and calls these.
import { createHash } from "node:crypto";

import type { Address } from "viem";

/** What a node declares about its machine in its heartbeat. */
export interface Hardware {
  cpus: number;
  memory_bytes: number;
  gpus: { name: string; memory_bytes: number }[];
}

/** Running statistics of one node, shared between gateway instances through Redis. */
export interface NodeStats {
  /** Exponentially weighted moving average of answered-call latency, ms; undefined before the first answer. */
  latencyEwmaMs: number | undefined;
  /** Decayed count of answered calls. */
  successes: number;
  /** Decayed count of failed or timed-out calls. */
  failures: number;
}

export const EMPTY_STATS: NodeStats = { latencyEwmaMs: undefined, successes: 0, failures: 0 };

/** One node as the scheduler sees it: chain facts joined with its latest heartbeat and stats. */
export interface NodeView {
  node: Address;
  endpoint: string;
  /** NodeStaking: registered, jailed, eligible, tier, active stake. */
  registered: boolean;
  jailed: boolean;
  eligible: boolean;
  tier: number;
  stake: bigint;
  /** Model ids the node's heartbeat says are loaded. */
  models: readonly bigint[];
  /** Fraction of capacity in use, 0..1, from the heartbeat. */
  load: number;
  hardware: Hardware;
  /** Unix ms of the heartbeat. */
  heartbeatAt: number;
  stats: NodeStats;
  /** Unix ms until which a gateway saw the node fail and keeps it last (0 when none). */
  downUntil: number;
}

/** What a job needs from the node serving it. */
export interface JobRequirement {
  modelId: bigint;
  /** Lowest stake tier allowed to serve the model. */
  minTier: number;
  /** Memory the model needs, bytes (0 when unknown). */
  memoryBytes: number;
  /** Whether the model wants a GPU. */
  gpu: boolean;
}

export type RejectReason = "unregistered" | "jailed" | "ineligible" | "tier_too_low" | "model_not_loaded" | "stale";

/**
 * Splits nodes into those that may serve `req` now and the rest, each with its reason. A node may
 * serve when it is registered, not jailed, eligible, at or above the model's tier, has the model
 * loaded, and its heartbeat is at most `maxHeartbeatAgeMs` old. Pure.
 */
export function filterCandidates(
  nodes: readonly NodeView[],
  req: JobRequirement,
  nowMs: number,
  maxHeartbeatAgeMs: number,
): { candidates: NodeView[]; rejected: { node: Address; reason: RejectReason }[] } {
  const candidates: NodeView[] = [];
  const rejected: { node: Address; reason: RejectReason }[] = [];
  for (const n of nodes) {
    const reason: RejectReason | undefined = !n.registered
      ? "unregistered"
      : n.jailed
        ? "jailed"
        : !n.eligible
          ? "ineligible"
          : n.tier < req.minTier
            ? "tier_too_low"
            : !n.models.includes(req.modelId)
              ? "model_not_loaded"
              : nowMs - n.heartbeatAt > maxHeartbeatAgeMs
                ? "stale"
                : undefined;
    if (reason === undefined) candidates.push(n);
    else rejected.push({ node: n.node, reason });
  }
  return { candidates, rejected };
}

/** How much each factor counts; the weights need not sum to one (scores are only compared). */
export interface ScoreWeights {
  latency: number;
  success: number;
  tier: number;
  load: number;
  hardware: number;
}

export const DEFAULT_WEIGHTS: ScoreWeights = { latency: 0.3, success: 0.3, tier: 0.15, load: 0.15, hardware: 0.1 };

/**
 * Scores are rounded to this band: nodes that differ by less (a millisecond of latency, a stray
 * failure) tie, and the tie-break spreads jobs across them instead of piling all on the fastest.
 */
export const SCORE_BAND = 0.02;
/** Latency at which the latency factor is one half; a node with no history is scored as this fast. */
export const LATENCY_SCALE_MS = 50;
/** The highest tier the factor distinguishes; higher tiers count as this one. */
export const MAX_TIER = 4;

/** 1 for a machine that fits the model without wasting a GPU, 0.5 for a GPU machine on a CPU model, 0 for one that does not fit. Pure. */
export function hardwareFit(hardware: Hardware, req: Pick<JobRequirement, "memoryBytes" | "gpu">): number {
  if (hardware.memory_bytes < req.memoryBytes) return 0;
  const hasGpu = hardware.gpus.length > 0;
  if (req.gpu) return hasGpu ? 1 : 0;
  return hasGpu ? 0.5 : 1;
}

/**
 * A node's score for a job, higher is better. Each factor is in [0, 1]: latency 1/(1 + ewma/scale),
 * success rate with a uniform prior ((ok + 1) / (ok + failed + 2)), tier / MAX_TIER, 1 − load,
 * hardware fit; the weighted sum is rounded to SCORE_BAND. A node a gateway recently saw fail
 * loses 1 (it goes after every healthy node and is still tried when nothing else is left). Pure.
 */
export function scoreNode(
  n: Pick<NodeView, "stats" | "tier" | "load" | "hardware" | "downUntil">,
  req: Pick<JobRequirement, "memoryBytes" | "gpu">,
  nowMs: number,
  weights: ScoreWeights = DEFAULT_WEIGHTS,
): number {
  const latency = 1 / (1 + (n.stats.latencyEwmaMs ?? LATENCY_SCALE_MS) / LATENCY_SCALE_MS);
  const success = (n.stats.successes + 1) / (n.stats.successes + n.stats.failures + 2);
  const tier = Math.min(Math.max(n.tier, 0), MAX_TIER) / MAX_TIER;
  const load = 1 - Math.min(Math.max(Number.isFinite(n.load) ? n.load : 1, 0), 1);
  const score =
    weights.latency * latency +
    weights.success * success +
    weights.tier * tier +
    weights.load * load +
    weights.hardware * hardwareFit(n.hardware, req);
  const banded = Math.round(score / SCORE_BAND) * SCORE_BAND;
  return n.downUntil > nowMs ? banded - 1 : banded;
}

/** Tie-break key: sha256(seed ‖ node), so equal nodes share the work across jobs, yet every gateway orders one job alike. Pure. */
export function tieBreakKey(seed: string, node: Address): string {
  return createHash("sha256").update(seed).update(node.toLowerCase()).digest("hex");
}

/** Candidates best first; equal scores ordered by `tieBreakKey(seed, node)` (seed: the job id). Pure. */
export function rankCandidates(
  candidates: readonly NodeView[],
  req: Pick<JobRequirement, "memoryBytes" | "gpu">,
  nowMs: number,
  seed: string,
  weights: ScoreWeights = DEFAULT_WEIGHTS,
): NodeView[] {
  return candidates
    .map((n) => ({ n, score: scoreNode(n, req, nowMs, weights), key: tieBreakKey(seed, n.node) }))
    .sort((a, b) => b.score - a.score || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((x) => x.n);
}

/** Per-call decay of the outcome counts: old outcomes fade, so a node that recovers is trusted again. */
export const STATS_DECAY = 0.98;
/** Weight of the newest latency sample in the EWMA. */
export const LATENCY_ALPHA = 0.2;

/** The statistics after one call: answered (with its latency) or failed. Pure; the Redis script mirrors it. */
export function updateStats(prev: NodeStats, outcome: { ok: true; latencyMs: number } | { ok: false }): NodeStats {
  if (!outcome.ok) {
    return { ...prev, successes: prev.successes * STATS_DECAY, failures: prev.failures * STATS_DECAY + 1 };
  }
  const latencyEwmaMs =
    prev.latencyEwmaMs === undefined
      ? outcome.latencyMs
      : prev.latencyEwmaMs + LATENCY_ALPHA * (outcome.latencyMs - prev.latencyEwmaMs);
  return { latencyEwmaMs, successes: prev.successes * STATS_DECAY + 1, failures: prev.failures * STATS_DECAY };
}

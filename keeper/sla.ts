// The SLA watch's decisions, pure: which forward attempts the gateway recorded are violations,
// how one node's violations group into incidents, the evidence document each incident (or each
// quorum dissent) becomes, and how much a slash takes. The evidence is canonical JSON with no
// clock of the keeper's in it, so the same attempts always give the same bytes, the same sha256,
// the same job id and the same `evidenceHash` on chain: NodeStaking refuses a hash twice.
import { createHash } from "node:crypto";

import { getAddress, parseAbi, type Address, type Hex } from "viem";

import type { SignedHeartbeatRecord } from "../gateway/heartbeat.ts";
import type { AttemptFailure, AttemptRecord, SignedWorkUnitRecord } from "../gateway/node-state.ts";
import type { DissentEvidence } from "../gateway/quorum.ts";
import { canonicalJson } from "../sdk/canonical-json.ts";

/** The parts of NodeStaking the SLA watch calls. */
export const nodeStakingSlashAbi = parseAbi([
  "function slash(address node, uint256 amount, bytes32 evidenceHash)",
  "function evidenceUsed(bytes32 evidenceHash) view returns (bool)",
  "function maxSlashOf(address node) view returns (uint256)",
  "function slashableStake(address node) view returns (uint256)",
  "event Slashed(address indexed node, bytes32 indexed evidenceHash, uint256 amount, uint256 fromActive, uint256 fromUnbonding, uint256 burned, uint256 redistributed, uint64 jailedUntil)",
  "error EvidenceAlreadyUsed(bytes32 evidenceHash)",
  "error SlashExceedsCap(uint256 amount, uint256 cap)",
]);

/** Basis points in one whole. */
export const BPS = 10_000n;
/** Default slash of an SLA incident: 10% of the node's slashable stake (then capped by maxSlashOf). */
export const DEFAULT_SLA_SLASH_BPS = 1_000;
/** The smallest slash sent: NodeStaking refuses zero. */
export const MIN_SLASH_WEI = 1n;

/**
 * Failures that break the SLA: the node took the job (or advertised, by a live heartbeat, that it
 * would) and gave no answer. A bad answer is an answer: it is not an SLA matter.
 */
const SLA_FAILURES: ReadonlySet<AttemptFailure> = new Set(["timeout", "dropped", "unreachable"]);

export type ViolationKind = "timeout" | "dropped" | "unreachable" | "no_answer" | "heartbeat_lost";

/** A node's heartbeat as the SLA watch judges it: the last one it signed, and when it counts as lost. */
export interface LostHeartbeat {
  last: SignedHeartbeatRecord;
  /** The loss rule applied: no heartbeat for this long (the gateway's heartbeat TTL). */
  lossMs: number;
}

export interface Violation {
  attempt: AttemptRecord;
  kind: ViolationKind;
  /** heartbeat_lost only: the node's last signed heartbeat, after which it went silent. */
  heartbeat?: LostHeartbeat;
}

/** What the SLA watch knows of heartbeats: each node's last signed one (lowercase address) and the loss rule. */
export interface HeartbeatWatch {
  last: ReadonlyMap<string, SignedHeartbeatRecord>;
  lossMs: number;
}

/** When a node whose last heartbeat is `last` counts as silent. */
export function heartbeatLostAt(last: SignedHeartbeatRecord, lossMs: number): number {
  return last.heartbeat.timestamp + lossMs;
}

/** The nodes (lowercase) whose heartbeat is lost at `now`: their open attempts count at once. */
export function silentNodes(heartbeats: HeartbeatWatch, now: number): Set<string> {
  const out = new Set<string>();
  for (const [node, last] of heartbeats.last) if (heartbeatLostAt(last, heartbeats.lossMs) <= now) out.add(node);
  return out;
}

/**
 * The attempts that are SLA violations at `now`: failed without an answer; sent and never marked
 * answered or failed while the node's heartbeat is lost (`heartbeat_lost`: the node holds the job
 * and has gone silent, no need to wait for the deadline); or sent and never marked answered or
 * failed `graceMs` after their deadline (`no_answer`: the node held the job when its gateway went
 * away, and nobody heard back). An open attempt whose node's heartbeat is lost stays
 * `heartbeat_lost` after its deadline too, so its evidence (and hash) does not change once seen.
 */
export function slaViolations(
  attempts: readonly AttemptRecord[],
  now: number,
  graceMs: number,
  heartbeats: HeartbeatWatch = { last: new Map(), lossMs: 0 },
): Violation[] {
  const out: Violation[] = [];
  for (const attempt of attempts) {
    if (attempt.status === "failed" && attempt.failure !== undefined && SLA_FAILURES.has(attempt.failure)) {
      out.push({ attempt, kind: attempt.failure as ViolationKind });
    } else if (attempt.status === "sent") {
      const last = heartbeats.last.get(attempt.node.toLowerCase());
      if (last !== undefined && heartbeatLostAt(last, heartbeats.lossMs) <= now) {
        out.push({ attempt, kind: "heartbeat_lost", heartbeat: { last, lossMs: heartbeats.lossMs } });
      } else if (attempt.deadline + graceMs <= now) {
        out.push({ attempt, kind: "no_answer" });
      }
    }
  }
  return out;
}

/**
 * When a violation became visible: a lost heartbeat when it was lost, anything else at its
 * deadline + grace (a failure is recorded by then, an open attempt counts from then).
 */
function visibleAt(violation: Violation, graceMs: number): number {
  if (violation.heartbeat !== undefined) return heartbeatLostAt(violation.heartbeat.last, violation.heartbeat.lossMs);
  return violation.attempt.deadline + graceMs;
}

export interface Incident {
  node: Address;
  violations: Violation[];
  /** sent_at of the first and last attempt. */
  from: number;
  to: number;
}

export interface IncidentOptions {
  /** Violations of one node less than this apart are one incident. */
  windowMs: number;
  /** How long after its deadline an unanswered attempt becomes visible as one. */
  graceMs: number;
  now: number;
  /** Per node (lowercase): sent_at of the last attempt an earlier slash already covered. */
  slashedThrough: ReadonlyMap<string, number>;
  /** Attempt ids (see attemptId) an earlier slash already covered. */
  consumed: ReadonlySet<string>;
}

/**
 * The attempt id the gateway uses (job id : node, lowercase): a violation's identity, whatever its
 * kind, so an attempt seen first as heartbeat_lost and later as no_answer is one violation.
 */
export function violationId(attempt: Pick<AttemptRecord, "job_id" | "node">): string {
  return `${attempt.job_id.toLowerCase()}:${attempt.node.toLowerCase()}`;
}

/**
 * Groups violations into incidents per node: a node killed mid-run drops several calls at once,
 * and that is one violation of the SLA, not one per call. Only settled incidents are returned:
 * window has passed since the last of them became visible (deadline + grace, or the heartbeat's
 * loss), so no attempt that belongs to it can still show up, and the group (and so its evidence
 * hash) is final. Attempts already covered by
 * a slash, or inside the window after one, never count again.
 */
export function settledIncidents(violations: readonly Violation[], options: IncidentOptions): Incident[] {
  const byNode = new Map<string, Violation[]>();
  for (const v of violations) {
    if (options.consumed.has(violationId(v.attempt))) continue;
    const node = v.attempt.node.toLowerCase();
    const through = options.slashedThrough.get(node);
    if (through !== undefined && v.attempt.sent_at <= through + options.windowMs) continue;
    const list = byNode.get(node) ?? [];
    list.push(v);
    byNode.set(node, list);
  }
  const incidents: Incident[] = [];
  for (const list of byNode.values()) {
    list.sort(
      (a, b) => a.attempt.sent_at - b.attempt.sent_at || violationId(a.attempt).localeCompare(violationId(b.attempt)),
    );
    let current: Violation[] = [];
    const close = () => {
      if (current.length === 0) return;
      const last = current[current.length - 1]!.attempt;
      const latest = Math.max(...current.map((v) => visibleAt(v, options.graceMs)));
      if (latest + options.windowMs <= options.now) {
        incidents.push({
          node: getAddress(last.node),
          violations: current,
          from: current[0]!.attempt.sent_at,
          to: last.sent_at,
        });
      }
      current = [];
    };
    for (const v of list) {
      const previous = current[current.length - 1];
      if (previous !== undefined && v.attempt.sent_at - previous.attempt.sent_at > options.windowMs) close();
      current.push(v);
    }
    close();
  }
  return incidents.sort((a, b) => a.from - b.from || a.node.localeCompare(b.node));
}

/** An evidence document: its canonical bytes and their sha256 (the `evidenceHash` on chain). */
export interface Evidence {
  kind: "sla-violation" | "quorum-dissent";
  node: Address;
  document: Record<string, unknown>;
  bytes: Uint8Array;
  sha256: Hex;
}

function sealed(kind: Evidence["kind"], node: Address, document: Record<string, unknown>): Evidence {
  const bytes = new TextEncoder().encode(canonicalJson(document));
  const sha256 = `0x${createHash("sha256").update(bytes).digest("hex")}` as Hex;
  return { kind, node, document, bytes, sha256 };
}

/**
 * The evidence of an SLA incident: every attempt record the gateway wrote (job, work-unit hash,
 * node, sent at, deadline, how it ended) and, where the gateway still holds it, the work unit
 * the client signed and that signature, so anyone can check the node was sent a real job. When
 * a heartbeat was lost, the node's last signed heartbeat and the loss rule: the node itself said
 * it was alive at its timestamp, and said nothing more while it held the jobs.
 */
export function slaEvidence(
  network: { chainId: number; nodeStaking: Address },
  incident: Incident,
  workUnits: ReadonlyMap<string, SignedWorkUnitRecord>,
  windowMs: number,
): Evidence {
  const ordered = [...incident.violations].sort(
    (a, b) => a.attempt.sent_at - b.attempt.sent_at || violationId(a.attempt).localeCompare(violationId(b.attempt)),
  );
  const attempts = ordered.map((v) => {
    const signed = workUnits.get(v.attempt.job_id.toLowerCase());
    return {
      violation: v.kind,
      attempt: v.attempt,
      ...(signed === undefined ? {} : { work_unit: signed.work_unit, client_signature: signed.client_signature }),
    };
  });
  const lost = ordered.find((v) => v.heartbeat !== undefined)?.heartbeat;
  return sealed("sla-violation", incident.node, {
    kind: "sla-violation",
    chain_id: network.chainId,
    node_staking: network.nodeStaking,
    node: incident.node,
    incident: { from: incident.from, to: incident.to, window_ms: windowMs, attempts: attempts.length },
    attempts,
    ...(lost === undefined
      ? {}
      : {
          last_heartbeat: { heartbeat: lost.last.heartbeat, signature: lost.last.signature },
          heartbeat_loss_ms: lost.lossMs,
        }),
  });
}

/**
 * The evidence of a quorum dissent the gateway recorded: the work unit, the client's signature and
 * the dissenting node's signed proof of serving another output than the stake majority's.
 */
export function dissentEvidenceDocument(
  network: { chainId: number; nodeStaking: Address },
  dissent: DissentEvidence,
): Evidence {
  const { recorded_at: _recordedAt, ...facts } = dissent;
  return sealed("quorum-dissent", getAddress(dissent.node), {
    ...facts,
    chain_id: network.chainId,
    node_staking: network.nodeStaking,
  });
}

/**
 * How much to slash: `bps` of the node's slashable stake, at least MIN_SLASH_WEI, at most the
 * contract's cap now (maxSlashOf). Zero when nothing can be slashed (send nothing).
 */
export function slashAmount(slashable: bigint, maxSlash: bigint, bps: number): bigint {
  if (maxSlash <= 0n || slashable <= 0n) return 0n;
  const wanted = (slashable * BigInt(bps)) / BPS;
  const atLeast = wanted < MIN_SLASH_WEI ? MIN_SLASH_WEI : wanted;
  return atLeast > maxSlash ? maxSlash : atLeast;
}

/** BullMQ job ids may not contain ":"; these never do. */
export function slashJobId(chainId: number, evidenceHash: Hex): string {
  return `slash-${chainId}-${evidenceHash.toLowerCase()}`;
}

export function closeJobId(chainId: number, epoch: bigint): string {
  return `close-${chainId}-${epoch}`;
}

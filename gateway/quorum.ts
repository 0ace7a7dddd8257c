// Redundant execution: the same work unit served by r distinct nodes, answered with the output
// whose nodes hold the most stake (a strict majority of the stake that answered), and every
// dissenting node's signed proof of serving kept as slash evidence for the keeper. Pure.
import { createHash } from "node:crypto";

import type { Address, Hex } from "viem";

import type { ProofOfServingJson, WorkUnitJson } from "../sdk/receipt.ts";

/** One node's answer to a quorum job. */
export interface QuorumAnswer {
  node: Address;
  /** The node's active stake: its vote's weight. */
  stake: bigint;
  outputHash: Hex;
  /** Output bytes, base64, as the node returned them. */
  output: string;
  proof: ProofOfServingJson;
}

/** A dissenting node's signed claim that it served another output: what the keeper needs to slash. */
export interface DissentEvidence {
  kind: "quorum-dissent";
  job_id: Hex;
  node: Address;
  output_hash: Hex;
  majority_output_hash: Hex;
  majority_nodes: Address[];
  majority_stake: string;
  dissent_stake: string;
  work_unit: WorkUnitJson;
  client_signature: Hex;
  proof_of_serving: ProofOfServingJson;
  recorded_at: number;
}

export type QuorumDecision =
  | { kind: "agreed"; winner: QuorumAnswer; majority: QuorumAnswer[]; dissent: QuorumAnswer[] }
  | { kind: "no_majority"; groups: { outputHash: Hex; stake: bigint; nodes: Address[] }[] };

/**
 * Groups answers by output hash and picks the group holding more than half of the answering
 * stake. Answers from the same node count once (the first). Every node in another group is a
 * dissenter. With no strict stake majority (a tie, or zero stake everywhere) nobody wins. Pure.
 */
export function decideQuorum(answers: readonly QuorumAnswer[]): QuorumDecision {
  const seen = new Set<string>();
  const groups = new Map<Hex, QuorumAnswer[]>();
  for (const a of answers) {
    const key = a.node.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    const hash = a.outputHash.toLowerCase() as Hex;
    groups.set(hash, [...(groups.get(hash) ?? []), a]);
  }
  const summed = [...groups.entries()]
    .map(([outputHash, members]) => ({ outputHash, members, stake: members.reduce((s, m) => s + m.stake, 0n) }))
    .sort((a, b) => (b.stake > a.stake ? 1 : b.stake < a.stake ? -1 : 0));
  const total = summed.reduce((s, g) => s + g.stake, 0n);
  const best = summed[0];
  if (best === undefined || total === 0n || best.stake * 2n <= total) {
    return {
      kind: "no_majority",
      groups: summed.map((g) => ({ outputHash: g.outputHash, stake: g.stake, nodes: g.members.map((m) => m.node) })),
    };
  }
  return {
    kind: "agreed",
    winner: best.members[0]!,
    majority: best.members,
    dissent: summed.slice(1).flatMap((g) => g.members),
  };
}

/** The evidence records of an agreed quorum's dissenters. Pure. */
export function dissentEvidence(
  decision: Extract<QuorumDecision, { kind: "agreed" }>,
  workUnit: WorkUnitJson,
  clientSignature: Hex,
  nowMs: number,
): DissentEvidence[] {
  const majorityStake = decision.majority.reduce((s, m) => s + m.stake, 0n);
  const { input: _input, ...unitWithoutInput } = workUnit;
  return decision.dissent.map((d) => ({
    kind: "quorum-dissent",
    job_id: d.proof.job_id as Hex,
    node: d.node,
    output_hash: d.outputHash,
    majority_output_hash: decision.winner.outputHash,
    majority_nodes: decision.majority.map((m) => m.node),
    majority_stake: majorityStake.toString(),
    dissent_stake: d.stake.toString(),
    work_unit: unitWithoutInput,
    client_signature: clientSignature,
    proof_of_serving: d.proof,
    recorded_at: nowMs,
  }));
}

/**
 * sha256 of the record's JSON without its clock: the `evidenceHash` a slash names, the same for
 * the same dissent whichever gateway recorded it (NodeStaking accepts each hash once). Pure.
 */
export function evidenceDigest(evidence: DissentEvidence): Hex {
  const { recorded_at: _recordedAt, ...facts } = evidence;
  return `0x${createHash("sha256").update(JSON.stringify(facts)).digest("hex")}`;
}

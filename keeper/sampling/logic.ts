// Validator sampling, the pure part: which served jobs are re-run, what the job ids are, who is
// wrong when answers disagree, the evidence a slash cites and how much it takes.
//
// The choice is HMAC(secret, job id) < fraction: deterministic, so a restarted keeper or a
// repeated trigger picks the same jobs and their job ids collapse in the queue; unpredictable
// without the secret, so a node cannot tell whether the job it serves will be checked.
import { createHmac } from "node:crypto";

import { canonicalJson } from "../../sdk/canonical-json.ts";
import type { ProofOfServingJson, WorkUnitJson } from "../../sdk/receipt.ts";

/** The score of a job under `secret`: a number in [0, 1) from the HMAC's first 52 bits. */
export function sampleScore(secret: Buffer, jobId: string): number {
  const mac = createHmac("sha256", secret).update(jobId.toLowerCase()).digest();
  // 52 bits fit a double exactly: the score is uniform and `fraction` 1 selects every job.
  return Number(mac.readBigUInt64BE(0) >> 12n) / 2 ** 52;
}

/** Whether the job is re-run: its score is below `fraction` (0: never, 1: always). */
export function isSampled(secret: Buffer, jobId: string, fraction: number): boolean {
  return fraction > 0 && sampleScore(secret, jobId) < fraction;
}

/** The BullMQ job id of a sampled job's check (no ":" allowed): one per chain and job. */
export function sampleJobId(chainId: number, jobId: string): string {
  return `sample-${chainId}-${jobId.toLowerCase()}`;
}

/** One signed answer to the same input: the work unit its client signed and the node's proof. */
export interface SignedAnswer {
  /** The work unit as signed, without the input bytes (the evidence names them by input_hash). */
  work_unit: WorkUnitJson;
  client_signature: string;
  proof_of_serving: ProofOfServingJson;
}

export type Verdict =
  /** Every answer has the same output hash. */
  | { kind: "agree" }
  /** Two answers disagree: a third is needed before anyone can be called wrong. */
  | { kind: "undecided" }
  /** Two or more agree and `accused` disagrees with them: it is the one to slash. */
  | { kind: "mismatch"; accused: SignedAnswer; witnesses: SignedAnswer[] }
  /** Three or more answers with no output hash given by two of them. */
  | { kind: "no_majority" };

/**
 * Who is wrong: with two answers that disagree nobody can tell, so it waits for a third; then the
 * output hash at least two nodes gave is taken as right and each other answer is accused (the
 * first such, the evidence names one node). Pure.
 */
export function judge(answers: readonly SignedAnswer[]): Verdict {
  const groups = new Map<string, SignedAnswer[]>();
  for (const a of answers) {
    const hash = a.proof_of_serving.output_hash.toLowerCase();
    groups.set(hash, [...(groups.get(hash) ?? []), a]);
  }
  if (groups.size <= 1) return { kind: "agree" };
  if (answers.length < 3) return { kind: "undecided" };
  const ranked = [...groups.values()].sort((x, y) => y.length - x.length);
  const majority = ranked[0]!;
  if (majority.length < 2 || ranked[1]!.length === majority.length) return { kind: "no_majority" };
  const accused = ranked[1]![0]!;
  return { kind: "mismatch", accused, witnesses: majority.slice(0, 2) };
}

/** The evidence document a sampling slash cites; its sha256 is the on-chain evidence hash. */
export interface SamplingEvidence {
  type: "inframesh.sampling.output_mismatch";
  chain_id: number;
  /** The node slashed. */
  node: string;
  model_ref: { model_id: number; version: number };
  /** sha256 of the input every answer was given (the input is in the blob store under it). */
  input_hash: string;
  /** The accused node's answer: a work unit, its client's signature and the node's signed proof. */
  accused: SignedAnswer;
  /** Two other nodes' signed answers to the same input, with the same output hash as each other. */
  witnesses: SignedAnswer[];
}

/** Strips the input bytes off a work unit: the evidence cites the input by hash. Pure. */
export function withoutInput(unit: WorkUnitJson): WorkUnitJson {
  const { input: _input, ...rest } = unit;
  return rest;
}

export function samplingEvidence(chainId: number, verdict: Extract<Verdict, { kind: "mismatch" }>): SamplingEvidence {
  const strip = (a: SignedAnswer): SignedAnswer => ({ ...a, work_unit: withoutInput(a.work_unit) });
  return {
    type: "inframesh.sampling.output_mismatch",
    chain_id: chainId,
    node: verdict.accused.proof_of_serving.node_id,
    model_ref: verdict.accused.work_unit.model_ref,
    input_hash: verdict.accused.work_unit.input_hash.toLowerCase(),
    accused: strip(verdict.accused),
    witnesses: verdict.witnesses.map(strip),
  };
}

/** The evidence's bytes: canonical JSON, so the same answers always give the same hash. */
export function evidenceBytes(evidence: SamplingEvidence): Buffer {
  return Buffer.from(canonicalJson(evidence), "utf8");
}

/** The amount to slash: `bps` of the most the contract lets one slash take from the node. Pure. */
export function slashAmount(maxSlash: bigint, bps: number): bigint {
  return (maxSlash * BigInt(bps)) / 10_000n;
}

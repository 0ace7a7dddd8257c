// The keeper's decisions, pure: when a settlement can be finalised, which unbonding locks have
// matured, what each job is called. A job id names the on-chain action it leads to (the epoch,
// the lock), so every duplicate trigger collapses into the job already queued.
import { parseAbi } from "viem";

/** The parts of EpochSettlement the keeper calls (the full ABI is in deployments/<network>.json). */
/** PaymentEscrow's withdrawal delay (seconds). */
export const paymentEscrowDelayAbi = parseAbi(["function withdrawalDelay() view returns (uint32)"]);

/**
 * Why epochs of `epochMs` are unsafe with this escrow, or null. A job served at the start of an
 * epoch is debited only when the epoch is final: up to one epoch plus the challenge window later.
 * A client that asks to withdraw right after its job must not be able to take the funds out
 * first, or the epoch's whole `collectDebits` reverts on its short balance (docs/settlement.md).
 */
export function epochLengthProblem(epochMs: number, challengeWindowS: bigint, withdrawalDelayS: bigint): string | null {
  const epochS = BigInt(Math.ceil(epochMs / 1000));
  if (epochS + challengeWindowS <= withdrawalDelayS) return null;
  return (
    `INFRAMESH_KEEPER_EPOCH_MS=${epochMs} is too long for this deployment: an epoch (${epochS} s) plus the ` +
    `challenge window (${challengeWindowS} s) exceeds the escrow's withdrawal delay (${withdrawalDelayS} s), so a ` +
    `client could withdraw before its jobs are debited. Use epochs of at most ` +
    `${withdrawalDelayS > challengeWindowS ? (withdrawalDelayS - challengeWindowS) * 1000n : 0n} ms, or have ` +
    `governance raise PaymentEscrow.withdrawalDelay`
  );
}

export const epochSettlementAbi = parseAbi([
  "struct SettlementRecord { bytes32 settlementHash; uint64 finalisableAt; uint8 status; }",
  "function nextEpoch() view returns (uint64)",
  "function settlementOf(uint64 epoch) view returns (SettlementRecord)",
  "function finalise(uint64 epoch)",
  "function challengeWindow() view returns (uint32)",
  "error UnexpectedStatus(uint64 epoch, uint8 status)",
  "error ChallengeWindowOpen(uint64 epoch, uint64 finalisableAt, uint256 nowTimestamp)",
]);

/** IEpochSettlement.Status, by its Solidity order. */
export const SETTLEMENT_STATUS = ["None", "Posted", "Voided", "Finalised"] as const;
export type SettlementStatus = (typeof SETTLEMENT_STATUS)[number];

export function settlementStatus(code: number): SettlementStatus {
  const status = SETTLEMENT_STATUS[code];
  if (status === undefined) throw new RangeError(`unknown settlement status ${code}`);
  return status;
}

export type FinaliseDecision =
  /** Posted and the challenge window is over: send finalise. */
  | { action: "send" }
  /** Posted, window still open until `finalisableAt` (chain time). */
  | { action: "wait"; finalisableAt: bigint }
  /** Already final: nothing to send (someone, maybe this keeper before a crash, did it). */
  | { action: "done" }
  /** Nothing posted, or voided: the committee has to post first. */
  | { action: "nothing"; status: SettlementStatus };

/** What to do about an epoch's settlement at chain time `now`. */
export function finaliseDecision(record: { status: number; finalisableAt: bigint }, now: bigint): FinaliseDecision {
  const status = settlementStatus(record.status);
  if (status === "Finalised") return { action: "done" };
  if (status !== "Posted") return { action: "nothing", status };
  return now >= record.finalisableAt ? { action: "send" } : { action: "wait", finalisableAt: record.finalisableAt };
}

/** BullMQ job ids may not contain ":"; these never do. */
export function finaliseJobId(chainId: number, epoch: bigint): string {
  return `finalise-${chainId}-${epoch}`;
}

export interface UnbondingLock {
  node: string;
  staker: string;
  lockId: string;
  amount: string;
  withdrawableAt: bigint;
}

export function unbondingJobId(chainId: number, lock: Pick<UnbondingLock, "node" | "staker" | "lockId">): string {
  return `unbonding-${chainId}-${lock.node.toLowerCase()}-${lock.staker.toLowerCase()}-${lock.lockId}`;
}

/** The webhook's body for a matured lock: what a staker's wallet or bot needs to withdraw. */
export function unbondingNotice(chainId: number, lock: UnbondingLock): Record<string, string | number> {
  return {
    type: "unbonding.matured",
    chainId,
    node: lock.node,
    staker: lock.staker,
    lockId: lock.lockId,
    amount: lock.amount,
    withdrawableAt: lock.withdrawableAt.toString(),
  };
}

/** Parses an epoch given to the trigger endpoint: a whole number as a JSON number or decimal string. */
export function parseEpoch(value: unknown): bigint {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  if (typeof value === "string" && /^[0-9]{1,20}$/.test(value) && BigInt(value) < 2n ** 64n) return BigInt(value);
  throw new RangeError(`epoch must be a whole number below 2^64, got ${JSON.stringify(value) ?? "nothing"}`);
}

/** One oracle's answer to POST /v1/epochs/close, or why there was none. */
export type OracleCloseAnswer =
  | { oracle: string; status: number; body: { epoch?: unknown; state?: unknown; error?: unknown; reason?: unknown } }
  | { oracle: string; unreachable: string };

export type CloseOutcome =
  /** An oracle has the epoch (opened now or earlier) and reports its state. */
  | { action: "closed"; oracle: string; state: string }
  /** Nothing to do for this epoch now: no receipts wait, or the chain has moved past it. */
  | { action: "nothing"; reason: string }
  /** No oracle could act: retry with backoff. */
  | { action: "retry"; reason: string };

/** Oracle error codes that mean "nothing to close now", not "try again". */
const NOTHING_TO_CLOSE = new Set(["nothing_to_settle", "epoch_not_open"]);

/**
 * What the committee's answers to "close `epoch`" amount to (pure). One oracle holding the epoch
 * is enough (the leader builds, posts and the followers sign); a leader that drove an older
 * unfinished epoch instead, or a committee that could not answer, is retried.
 */
export function closeOutcome(epoch: bigint, answers: readonly OracleCloseAnswer[]): CloseOutcome {
  const reasons: string[] = [];
  let nothing: string | undefined;
  for (const answer of answers) {
    if ("unreachable" in answer) {
      reasons.push(`${answer.oracle}: unreachable (${answer.unreachable})`);
      continue;
    }
    const { status, body } = answer;
    if (status === 200 && body.epoch === epoch.toString() && typeof body.state === "string") {
      return { action: "closed", oracle: answer.oracle, state: body.state };
    }
    if (status === 200) {
      reasons.push(`${answer.oracle}: still settling epoch ${String(body.epoch)} (${String(body.state)})`);
      continue;
    }
    const code = typeof body.error === "string" ? body.error : `HTTP ${status}`;
    const why = typeof body.reason === "string" ? `${code}: ${body.reason}` : code;
    if (status === 409 && NOTHING_TO_CLOSE.has(code)) nothing ??= why;
    else reasons.push(`${answer.oracle}: ${why}`);
  }
  if (nothing !== undefined) return { action: "nothing", reason: nothing };
  return { action: "retry", reason: reasons.join("; ") || "no oracle configured" };
}

// The keeper's decisions, pure: when a settlement can be finalised, which unbonding locks have
// matured, what each job is called. A job id names the on-chain action it leads to (the epoch,
// the lock), so every duplicate trigger collapses into the job already queued.
import { parseAbi } from "viem";

/** The parts of EpochSettlement the keeper calls (the full ABI is in deployments/<network>.json). */
export const epochSettlementAbi = parseAbi([
  "struct SettlementRecord { bytes32 settlementHash; uint64 finalisableAt; uint8 status; }",
  "function nextEpoch() view returns (uint64)",
  "function settlementOf(uint64 epoch) view returns (SettlementRecord)",
  "function finalise(uint64 epoch)",
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

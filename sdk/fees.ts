// The fee schedule EpochSettlement holds (feeSchedule()) and how each receipt's fee is split
// under it: the oracle, the demo and auditors all split with `splitFee`, so they agree to the wei.
// Per receipt, with `fee` the model version's price (at most the work unit's max_fee):
//   protocol fee = floor(fee * protocolFeeBps / 10_000)  -> treasury
//   royalty      = floor(fee * royaltyBps / 10_000)      -> the model's publisher
//   node         = fee - protocol fee - royalty          -> the serving node (keeps the rounding)
import { type Address, type PublicClient, getAddress, isAddress, parseAbi } from "viem";

/** 100% in basis points. */
export const MAX_BPS = 10_000;
/** EpochSettlement.MAX_FEE_BPS: protocol fee + royalty never take more than half a fee. */
export const MAX_FEE_BPS = 5_000;

/** EpochSettlement's FeeSchedule struct. */
export type FeeSchedule = { treasury: Address; protocolFeeBps: number; royaltyBps: number };

/** One receipt's fee, split. `node + protocolFee + royalty == fee` always. */
export type FeeSplit = { fee: bigint; protocolFee: bigint; royalty: bigint; node: bigint };

/** Thrown for a fee schedule the contract would refuse, or a negative fee. */
export class InvalidFeeError extends Error {
  override name = "InvalidFeeError";
}

/**
 * Checks a schedule as EpochSettlement._setFeeSchedule does and returns it with a checksummed
 * treasury.
 *
 * @throws InvalidFeeError naming what is wrong.
 */
export function checkFeeSchedule(schedule: {
  treasury: string;
  protocolFeeBps: number;
  royaltyBps: number;
}): FeeSchedule {
  const { treasury, protocolFeeBps, royaltyBps } = schedule;
  if (!isAddress(treasury, { strict: false }) || BigInt(treasury) === 0n) {
    throw new InvalidFeeError(`fee schedule treasury must be a non-zero address, got ${JSON.stringify(treasury)}`);
  }
  for (const [name, bps] of [
    ["protocolFeeBps", protocolFeeBps],
    ["royaltyBps", royaltyBps],
  ] as const) {
    if (!Number.isInteger(bps) || bps < 0)
      throw new InvalidFeeError(`${name} must be a non-negative integer, got ${bps}`);
  }
  if (protocolFeeBps + royaltyBps > MAX_FEE_BPS) {
    throw new InvalidFeeError(
      `protocolFeeBps + royaltyBps must be at most ${MAX_FEE_BPS}, got ${protocolFeeBps} + ${royaltyBps}`,
    );
  }
  return { treasury: getAddress(treasury), protocolFeeBps, royaltyBps };
}

/** Splits one receipt's `fee` under `schedule` (see the top of this file). */
export function splitFee(fee: bigint, schedule: Pick<FeeSchedule, "protocolFeeBps" | "royaltyBps">): FeeSplit {
  if (fee < 0n) throw new InvalidFeeError(`a receipt's fee cannot be negative, got ${fee}`);
  const protocolFee = (fee * BigInt(schedule.protocolFeeBps)) / BigInt(MAX_BPS);
  const royalty = (fee * BigInt(schedule.royaltyBps)) / BigInt(MAX_BPS);
  return { fee, protocolFee, royalty, node: fee - protocolFee - royalty };
}

const feeScheduleAbi = parseAbi([
  "function feeSchedule() view returns ((address treasury, uint16 protocolFeeBps, uint16 royaltyBps))",
]);

/** Reads EpochSettlement.feeSchedule(): the schedule the oracle applies to the epoch it closes. */
export async function readFeeSchedule(publicClient: PublicClient, epochSettlement: Address): Promise<FeeSchedule> {
  const schedule = await publicClient.readContract({
    address: epochSettlement,
    abi: feeScheduleAbi,
    functionName: "feeSchedule",
  });
  return checkFeeSchedule(schedule);
}

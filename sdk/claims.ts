// RewardClaims from TypeScript: what an earning account (node, model publisher, treasury) reads
// and calls to be paid its cumulative earnings. The amount and Merkle proof come from an oracle
// (`GET /v1/epochs/:n/claims/:account`); the contract pays `cumulativeAmount - claimed(account)` out of
// NodeStaking's earnings reserve: a node's commission accrues there for its operator to withdraw
// (sdk/staking.ts withdrawCommission), the rest compounds in its pool; other accounts are sent it all.
import { parseAbi, parseEventLogs, type Address, type Hash, type Hex, type PublicClient } from "viem";

import { describeRevert, nodeStakingAbi, type StakingWallet } from "./staking.ts";
import { simulateAndSend } from "./tx.ts";

/** The claimant-facing part of RewardClaims' ABI; test/sdk/sdk-abi.test.ts checks it against the artifact. */
export const rewardClaimsAbi = parseAbi([
  "function claim(address account, uint256 cumulativeAmount, bytes32[] proof) returns (uint256 amount)",
  "function claimed(address account) view returns (uint256)",
  "function latestRoot() view returns (bool funded, uint64 epoch, bytes32 root)",
  "function nextEpoch() view returns (uint64)",
  "function leafHash(address account, uint256 cumulativeAmount) pure returns (bytes32)",
  "event Claimed(address indexed account, uint256 cumulativeAmount, uint256 amount)",
  "error NoFinalSettlement()",
  "error InvalidProof(address account, uint256 cumulativeAmount)",
  "error NothingToClaim(address account, uint256 cumulativeAmount, uint256 claimed)",
]);

/** What a claim transaction can revert with: RewardClaims' errors and NodeStaking's, raised inside it. */
const claimCallAbi = [
  ...rewardClaimsAbi,
  ...parseAbi([
    // More claimed than the funded epochs put in staking's earnings reserve.
    "error InsufficientEarningsReserve(uint256 amount, uint256 reserve)",
  ]),
] as const;

export interface ClaimsContracts {
  publicClient: PublicClient;
  rewardClaims: Address;
}

/** The root claims are proven against now; `funded` false before the first settlement is funded. */
export interface LatestRoot {
  funded: boolean;
  epoch: bigint;
  root: Hex;
}

/**
 * What one claim paid: for a node, `commission` accrued to its operator (withdrawable from staking)
 * and `toStakers` into its pool; for any other account, `commission` is the amount sent to it.
 */
export interface ClaimPayout {
  hash: Hash;
  epoch: bigint;
  cumulativeAmount: bigint;
  amount: bigint;
  commission: bigint;
  toStakers: bigint;
  gasUsed: bigint;
}

/** A claim that reverted or could not be sent. `reason` is the contract's error when known. */
export class ClaimCallError extends Error {
  readonly reason: string | undefined;
  constructor(reason: string | undefined, options: { cause: unknown }) {
    super(`claim failed${reason === undefined ? "" : `: ${reason}`}`, options);
    this.name = "ClaimCallError";
    this.reason = reason;
  }
}

export async function readLatestRoot(contracts: ClaimsContracts): Promise<LatestRoot> {
  const [funded, epoch, root] = await contracts.publicClient.readContract({
    address: contracts.rewardClaims,
    abi: rewardClaimsAbi,
    functionName: "latestRoot",
  });
  return { funded, epoch: BigInt(epoch), root };
}

/** What `account` has claimed in all. */
export function readClaimed(contracts: ClaimsContracts, account: Address): Promise<bigint> {
  return contracts.publicClient.readContract({
    address: contracts.rewardClaims,
    abi: rewardClaimsAbi,
    functionName: "claimed",
    args: [account],
  });
}

/** Claims for `account` (anyone may send it; the tokens go to `account` or its pool). */
export async function claimRewards(
  contracts: ClaimsContracts,
  wallet: StakingWallet,
  account: Address,
  cumulativeAmount: bigint,
  proof: readonly Hex[],
): Promise<ClaimPayout> {
  let sent;
  let root: LatestRoot;
  try {
    root = await readLatestRoot(contracts);
    sent = await simulateAndSend(contracts.publicClient, wallet, {
      address: contracts.rewardClaims,
      abi: claimCallAbi,
      functionName: "claim",
      args: [account, cumulativeAmount, [...proof]],
    });
  } catch (error) {
    throw new ClaimCallError(describeRevert(error), { cause: error });
  }
  const [event] = parseEventLogs({ abi: rewardClaimsAbi, eventName: "Claimed", logs: sent.receipt.logs });
  const [paid] = parseEventLogs({ abi: nodeStakingAbi, eventName: "EarningsPaid", logs: sent.receipt.logs });
  if (event === undefined || paid === undefined) {
    throw new ClaimCallError("no Claimed and EarningsPaid events in the receipt", { cause: undefined });
  }
  const { toStakers, commissionAccrued } = paid.args;
  // An account that is not a node is sent the whole amount (EarningsPaid reports 0 and 0 then).
  const commission = toStakers === 0n && commissionAccrued === 0n ? event.args.amount : commissionAccrued;
  return {
    hash: sent.receipt.transactionHash,
    // Claims prove against the latest funded root: an epoch funded between the read and the
    // transaction would have made the proof fail.
    epoch: root.epoch,
    cumulativeAmount: event.args.cumulativeAmount,
    amount: event.args.amount,
    commission,
    toStakers,
    gasUsed: sent.receipt.gasUsed,
  };
}

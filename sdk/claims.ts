// RewardClaims from TypeScript: what an earning account (node, model publisher, treasury) reads
// and calls to be paid its cumulative earnings. The amount and Merkle proof come from an oracle
// (`GET /v1/epochs/:n/claims/:account`); the contract pays `cumulativeAmount - claimed(account)`.
import { parseAbi, parseEventLogs, type Address, type Hash, type Hex, type PublicClient } from "viem";

import { describeRevert, type StakingWallet } from "./staking.ts";
import { simulateAndSend } from "./tx.ts";

/** The claimant-facing part of RewardClaims' ABI; test/sdk/sdk-abi.test.ts checks it against the artifact. */
export const rewardClaimsAbi = parseAbi([
  "function claim(address account, uint256 cumulativeAmount, bytes32[] proof) returns (uint256 amount)",
  "function claimed(address account) view returns (uint256)",
  "function latestRoot() view returns (bool funded, uint64 epoch, bytes32 root)",
  "function nextEpoch() view returns (uint64)",
  "function leafHash(address account, uint256 cumulativeAmount) pure returns (bytes32)",
  "event Claimed(address indexed account, uint64 indexed epoch, uint256 cumulativeAmount, uint256 amount, uint256 commission, uint256 toStakers)",
  "error NoFinalSettlement()",
  "error InvalidProof(address account, uint256 cumulativeAmount)",
  "error NothingToClaim(address account, uint256 cumulativeAmount, uint256 claimed)",
  "error InsufficientFunds(uint256 amount, uint256 available)",
]);

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

/** What one claim paid: `commission` to the account (a node's operator), `toStakers` into its pool. */
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
  try {
    sent = await simulateAndSend(contracts.publicClient, wallet, {
      address: contracts.rewardClaims,
      abi: rewardClaimsAbi,
      functionName: "claim",
      args: [account, cumulativeAmount, [...proof]],
    });
  } catch (error) {
    throw new ClaimCallError(describeRevert(error), { cause: error });
  }
  const [event] = parseEventLogs({ abi: rewardClaimsAbi, eventName: "Claimed", logs: sent.receipt.logs });
  if (event === undefined) throw new ClaimCallError("no Claimed event in the receipt", { cause: undefined });
  return {
    hash: sent.receipt.transactionHash,
    epoch: BigInt(event.args.epoch),
    cumulativeAmount: event.args.cumulativeAmount,
    amount: event.args.amount,
    commission: event.args.commission,
    toStakers: event.args.toStakers,
    gasUsed: sent.receipt.gasUsed,
  };
}

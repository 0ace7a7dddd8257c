// NodeStaking from TypeScript: the calls every part makes (the `infra` CLI, node-agent,
// keeper, gateway, the demo). Thin wrappers over viem: each write is simulated first (so a
// revert surfaces as the contract's own custom error, decoded), sent, and awaited; each
// read returns plain values in the protocol's words.
import {
  type Abi,
  BaseError,
  ContractFunctionRevertedError,
  erc20Abi,
  keccak256,
  parseAbi,
  parseEventLogs,
  sha256,
  stringToHex,
  type Account,
  type Address,
  type Chain,
  type Hash,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
} from "viem";

import { simulateAndSend } from "./tx.ts";

// ------------------------------------------------------------------ roles

/** AccessControl's admin role: governance (the timelock) once deployment is finished. */
export const DEFAULT_ADMIN_ROLE: Hex = `0x${"00".repeat(32)}`;
/** May slash nodes (the keeper, the dispute contract). */
export const SLASHER_ROLE: Hex = keccak256(stringToHex("SLASHER_ROLE"));
/** May add rewards to pools (the settlement contract). */
export const REWARDER_ROLE: Hex = keccak256(stringToHex("REWARDER_ROLE"));
/** May pause new stake (a guardian). */
export const PAUSER_ROLE: Hex = keccak256(stringToHex("PAUSER_ROLE"));

// ------------------------------------------------------------------ ABI

/**
 * The part of NodeStaking's ABI this module calls. Human-readable so viem infers every
 * argument and result type; test/sdk/staking-abi.test.ts checks it against the compiled artifact.
 */
export const nodeStakingAbi = parseAbi([
  "struct NodeInfo { bool registered; uint16 commissionBps; uint64 jailedUntil; uint128 commissionOwed; bytes32 hardwareSpecHash; }",
  "struct Pool { uint128 stake; uint128 shares; }",
  "struct UnbondingLock { uint128 shares; uint64 withdrawableAt; }",
  "function registerNode(string endpoint, bytes32 hardwareSpecHash, uint16 commissionBps)",
  "function stake(address node, uint256 amount) returns (uint256 shares)",
  "function unbond(address node, uint256 amount) returns (uint256 lockId)",
  "function rebond(address node, uint256 lockId) returns (uint256 shares)",
  "function withdraw(address node, uint256 lockId) returns (uint256 amount)",
  "function slash(address node, uint256 amount, bytes32 evidenceHash)",
  "function releaseSlashedStake()",
  "function withdrawCommission() returns (uint256 amount)",
  "function earningsReserve() view returns (uint256)",
  "function tierThresholds() view returns (uint256[])",
  "function nodeInfo(address node) view returns (NodeInfo)",
  "function endpointOf(address node) view returns (string)",
  "function activePool(address node) view returns (Pool)",
  "function unbondingPool(address node) view returns (Pool)",
  "function stakeOf(address node, address staker) view returns (uint256)",
  "function selfStakeOf(address node) view returns (uint256)",
  "function lockCount(address node, address staker) view returns (uint256)",
  "function unbondingLock(address node, address staker, uint256 lockId) view returns (UnbondingLock)",
  "function lockValue(address node, address staker, uint256 lockId) view returns (uint256)",
  "function maxSlashOf(address node) view returns (uint256)",
  "function isJailed(address node) view returns (bool)",
  "function isEligible(address node) view returns (bool)",
  "function tierOf(address node) view returns (uint8)",
  "function slashedOwed() view returns (uint256 redistribution, uint256 burn)",
  "function hasRole(bytes32 role, address account) view returns (bool)",
  "event Staked(address indexed node, address indexed staker, uint256 amount, uint256 shares)",
  "event EarningsPaid(address indexed account, uint256 amount, uint256 toStakers, uint256 commissionAccrued)",
  "event CommissionWithdrawn(address indexed node, uint256 amount)",
  "event Unbonded(address indexed node, address indexed staker, uint256 indexed lockId, uint256 amount, uint256 activeShares, uint256 unbondingShares, uint64 withdrawableAt)",
  "error ZeroAmount()",
  "error UnknownNode(address node)",
  "error NodeAlreadyRegistered(address node)",
  "error CommissionTooHigh(uint16 commissionBps, uint16 maxBps)",
  "error SelfStakeBelowMinimum(uint256 have, uint256 need)",
  "error InsufficientStake(uint256 have, uint256 need)",
  "error LockNotFound(address node, address staker, uint256 lockId)",
  "error LockNotMatured(uint256 lockId, uint64 withdrawableAt, uint256 nowTimestamp)",
  "error SlashExceedsCap(uint256 amount, uint256 cap)",
  "error EvidenceAlreadyUsed(bytes32 evidenceHash)",
  "error PoolDepleted(address node)",
  "error AmountTooSmall(uint256 amount)",
  "error EnforcedPause()",
  "error NoCommission(address node)",
  "error InsufficientEarningsReserve(uint256 amount, uint256 reserve)",
  "error NotClaimsContract(address caller, address claims)",
  "error AccessControlUnauthorizedAccount(address account, bytes32 neededRole)",
  "error SafeERC20FailedOperation(address token)",
  "error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed)",
  "error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed)",
]);

// ------------------------------------------------------------------ types

/** Where NodeStaking and its token live, and the client that reads them. */
export interface StakingContracts {
  publicClient: PublicClient;
  nodeStaking: Address;
  stakeToken: Address;
}

/** A wallet that signs for one account (an operator, a delegator, the slasher). */
export type StakingWallet = WalletClient<Transport, Chain, Account>;

/** What an operator registers. */
export interface NodeRegistration {
  endpoint: string;
  hardwareSpecHash: Hex;
  commissionBps: number;
}

/** A node as the network sees it now. Stake amounts in token base units. */
export interface NodeStatus {
  node: Address;
  registered: boolean;
  endpoint: string;
  commissionBps: number;
  hardwareSpecHash: Hex;
  selfStake: bigint;
  /** Active stake of everyone but the operator. */
  delegated: bigint;
  activeStake: bigint;
  unbondingStake: bigint;
  tier: number;
  eligible: boolean;
  jailed: boolean;
  /** Unix seconds; 0 when never jailed or freed. */
  jailedUntil: bigint;
  /** Commission accrued by claims and not yet withdrawn by the operator (`withdrawCommission`). */
  commissionOwed: bigint;
}

/** One pending withdrawal of a staker on a node. */
export interface UnbondingLockStatus {
  lockId: bigint;
  /** Tokens the lock is worth now (after any slash). */
  value: bigint;
  withdrawableAt: bigint;
}

/** A staker's position on one node. */
export interface StakerPosition {
  node: Address;
  staker: Address;
  activeStake: bigint;
  locks: UnbondingLockStatus[];
}

/** A confirmed transaction. */
export interface StakingReceipt {
  hash: Hash;
  blockNumber: bigint;
  gasUsed: bigint;
}

/** A staking call that reverted or could not be sent. `reason` is the contract's error name when known. */
export class StakingCallError extends Error {
  readonly action: string;
  readonly reason: string | undefined;
  constructor(action: string, reason: string | undefined, options: { cause: unknown }) {
    super(`${action} failed${reason === undefined ? "" : `: ${reason}`}`, options);
    this.name = "StakingCallError";
    this.action = action;
    this.reason = reason;
  }
}

// ------------------------------------------------------------------ pure helpers

/** sha256 of the evidence bytes exactly as published to the blob store (never re-serialised). */
export function evidenceHash(evidence: Uint8Array): Hex {
  return sha256(evidence);
}

/** The revert's custom error, formatted `Name(arg, …)`, or viem's short message. */
export function describeRevert(error: unknown): string | undefined {
  if (!(error instanceof BaseError)) return undefined;
  const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError);
  if (reverted instanceof ContractFunctionRevertedError && reverted.data !== undefined) {
    const args = (reverted.data.args ?? []).map((a) => String(a)).join(", ");
    return `${reverted.data.errorName}(${args})`;
  }
  return error.shortMessage;
}

// ------------------------------------------------------------------ writes

async function send(
  contracts: StakingContracts,
  wallet: StakingWallet,
  action: string,
  request: Parameters<PublicClient["simulateContract"]>[0],
): Promise<{ receipt: TransactionReceipt; result: unknown }> {
  try {
    return await simulateAndSend(contracts.publicClient, wallet, request);
  } catch (error) {
    throw new StakingCallError(action, describeRevert(error), { cause: error });
  }
}

function toReceipt(receipt: TransactionReceipt): StakingReceipt {
  return { hash: receipt.transactionHash, blockNumber: receipt.blockNumber, gasUsed: receipt.gasUsed };
}

/** Registers the wallet's account as a node operator (the node id is its address). */
export async function registerNode(
  contracts: StakingContracts,
  operator: StakingWallet,
  registration: NodeRegistration,
): Promise<StakingReceipt> {
  const { receipt } = await send(contracts, operator, "registerNode", {
    address: contracts.nodeStaking,
    abi: nodeStakingAbi,
    functionName: "registerNode",
    args: [registration.endpoint, registration.hardwareSpecHash, registration.commissionBps],
  });
  return toReceipt(receipt);
}

/** Approves NodeStaking for exactly `amount` of the stake token when the allowance is short. */
export async function approveStake(
  contracts: StakingContracts,
  staker: StakingWallet,
  amount: bigint,
): Promise<StakingReceipt | undefined> {
  const allowance = await contracts.publicClient.readContract({
    address: contracts.stakeToken,
    abi: erc20Abi,
    functionName: "allowance",
    args: [staker.account.address, contracts.nodeStaking],
  });
  if (allowance >= amount) return undefined;
  const { receipt } = await send(contracts, staker, "approve", {
    address: contracts.stakeToken,
    abi: erc20Abi,
    functionName: "approve",
    args: [contracts.nodeStaking, amount],
  });
  return toReceipt(receipt);
}

/**
 * Stakes `amount` on `node`: self-stake when the wallet is the node, delegation otherwise.
 * Approves the token first when needed.
 */
export async function stake(
  contracts: StakingContracts,
  staker: StakingWallet,
  node: Address,
  amount: bigint,
): Promise<StakingReceipt & { shares: bigint }> {
  await approveStake(contracts, staker, amount);
  const { receipt, result } = await send(contracts, staker, "stake", {
    address: contracts.nodeStaking,
    abi: nodeStakingAbi,
    functionName: "stake",
    args: [node, amount],
  });
  return { ...toReceipt(receipt), shares: result as bigint };
}

/** Moves `amount` of the wallet's active stake on `node` into the unbonding pool; returns the lock. */
export async function unbond(
  contracts: StakingContracts,
  staker: StakingWallet,
  node: Address,
  amount: bigint,
): Promise<StakingReceipt & { lockId: bigint; withdrawableAt: bigint }> {
  const { receipt } = await send(contracts, staker, "unbond", {
    address: contracts.nodeStaking,
    abi: nodeStakingAbi,
    functionName: "unbond",
    args: [node, amount],
  });
  const [event] = parseEventLogs({ abi: nodeStakingAbi, eventName: "Unbonded", logs: receipt.logs });
  if (event === undefined) {
    throw new StakingCallError("unbond", "no Unbonded event in the receipt", { cause: receipt });
  }
  return { ...toReceipt(receipt), lockId: event.args.lockId, withdrawableAt: event.args.withdrawableAt };
}

/** Cancels unbonding lock `lockId` on `node`: its value goes back to the wallet's active stake. */
export async function rebond(
  contracts: StakingContracts,
  staker: StakingWallet,
  node: Address,
  lockId: bigint,
): Promise<StakingReceipt & { shares: bigint }> {
  const { receipt, result } = await send(contracts, staker, "rebond", {
    address: contracts.nodeStaking,
    abi: nodeStakingAbi,
    functionName: "rebond",
    args: [node, lockId],
  });
  return { ...toReceipt(receipt), shares: result as bigint };
}

/** Withdraws matured unbonding lock `lockId` on `node` to the wallet; returns the tokens paid. */
export async function withdraw(
  contracts: StakingContracts,
  staker: StakingWallet,
  node: Address,
  lockId: bigint,
): Promise<StakingReceipt & { amount: bigint }> {
  const { receipt, result } = await send(contracts, staker, "withdraw", {
    address: contracts.nodeStaking,
    abi: nodeStakingAbi,
    functionName: "withdraw",
    args: [node, lockId],
  });
  return { ...toReceipt(receipt), amount: result as bigint };
}

/** Pays the wallet's node all the commission its claims accrued; returns the tokens paid. */
export async function withdrawCommission(
  contracts: StakingContracts,
  operator: StakingWallet,
): Promise<StakingReceipt & { amount: bigint }> {
  const { receipt, result } = await send(contracts, operator, "withdrawCommission", {
    address: contracts.nodeStaking,
    abi: nodeStakingAbi,
    functionName: "withdrawCommission",
    args: [],
  });
  return { ...toReceipt(receipt), amount: result as bigint };
}

/** Slashes `node` by `amount` for the evidence whose sha256 is `evidence`. Slasher role only. */
export async function slash(
  contracts: StakingContracts,
  slasher: StakingWallet,
  node: Address,
  amount: bigint,
  evidence: Hex,
): Promise<StakingReceipt> {
  const { receipt } = await send(contracts, slasher, "slash", {
    address: contracts.nodeStaking,
    abi: nodeStakingAbi,
    functionName: "slash",
    args: [node, amount, evidence],
  });
  return toReceipt(receipt);
}

/** Pays the slashed tokens owed so far to the burn address and the redistribution recipient. */
export async function releaseSlashedStake(contracts: StakingContracts, caller: StakingWallet): Promise<StakingReceipt> {
  const { receipt } = await send(contracts, caller, "releaseSlashedStake", {
    address: contracts.nodeStaking,
    abi: nodeStakingAbi,
    functionName: "releaseSlashedStake",
    args: [],
  });
  return toReceipt(receipt);
}

/** Sends `amount` of the stake token to `to` (funding operators and delegators). */
export async function transferStakeToken(
  contracts: StakingContracts,
  from: StakingWallet,
  to: Address,
  amount: bigint,
): Promise<StakingReceipt> {
  const { receipt } = await send(contracts, from, "transfer", {
    address: contracts.stakeToken,
    abi: erc20Abi,
    functionName: "transfer",
    args: [to, amount],
  });
  return toReceipt(receipt);
}

// ------------------------------------------------------------------ reads

/** A node's registration, stake, tier and eligibility now. */
/** The node's own record (`nodeInfo`): one read, for callers that need only that (a claim). */
export async function readNodeInfo(contracts: StakingContracts, node: Address) {
  return contracts.publicClient.readContract({
    address: contracts.nodeStaking,
    abi: nodeStakingAbi,
    functionName: "nodeInfo",
    args: [node],
  });
}

export async function readNodeStatus(contracts: StakingContracts, node: Address): Promise<NodeStatus> {
  const read = contracts.publicClient;
  const at = { address: contracts.nodeStaking, abi: nodeStakingAbi } as const;
  const [info, endpoint, selfStake, active, unbonding, tier, eligible, jailed] = await Promise.all([
    read.readContract({ ...at, functionName: "nodeInfo", args: [node] }),
    read.readContract({ ...at, functionName: "endpointOf", args: [node] }),
    read.readContract({ ...at, functionName: "selfStakeOf", args: [node] }),
    read.readContract({ ...at, functionName: "activePool", args: [node] }),
    read.readContract({ ...at, functionName: "unbondingPool", args: [node] }),
    read.readContract({ ...at, functionName: "tierOf", args: [node] }),
    read.readContract({ ...at, functionName: "isEligible", args: [node] }),
    read.readContract({ ...at, functionName: "isJailed", args: [node] }),
  ]);
  return {
    node,
    registered: info.registered,
    endpoint,
    commissionBps: info.commissionBps,
    hardwareSpecHash: info.hardwareSpecHash,
    selfStake,
    delegated: active.stake - selfStake,
    activeStake: active.stake,
    unbondingStake: unbonding.stake,
    tier,
    eligible,
    jailed,
    jailedUntil: info.jailedUntil,
    commissionOwed: info.commissionOwed,
  };
}

/** A staker's active stake and live unbonding locks on one node. */
export async function readStakerPosition(
  contracts: StakingContracts,
  node: Address,
  staker: Address,
): Promise<StakerPosition> {
  const read = contracts.publicClient;
  const at = { address: contracts.nodeStaking, abi: nodeStakingAbi } as const;
  const [activeStake, count] = await Promise.all([
    read.readContract({ ...at, functionName: "stakeOf", args: [node, staker] }),
    read.readContract({ ...at, functionName: "lockCount", args: [node, staker] }),
  ]);
  const lockIds = Array.from({ length: Number(count) }, (_, i) => BigInt(i));
  const locks = await Promise.all(
    lockIds.map(async (lockId) => {
      const [lock, value] = await Promise.all([
        read.readContract({ ...at, functionName: "unbondingLock", args: [node, staker, lockId] }),
        read.readContract({ ...at, functionName: "lockValue", args: [node, staker, lockId] }),
      ]);
      return { lockId, shares: lock.shares, value, withdrawableAt: lock.withdrawableAt };
    }),
  );
  return {
    node,
    staker,
    activeStake,
    locks: locks
      .filter((lock) => lock.shares > 0n)
      .map(({ lockId, value, withdrawableAt }) => ({ lockId, value, withdrawableAt })),
  };
}

/** The stake token balance of `account`. */
export async function readTokenBalance(contracts: StakingContracts, account: Address): Promise<bigint> {
  return contracts.publicClient.readContract({
    address: contracts.stakeToken,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [account],
  });
}

/** A decoded event, located on chain. */
export interface ChainEvent {
  blockNumber: bigint;
  logIndex: number;
  transactionHash: Hash;
  eventName: string;
  args: Record<string, unknown>;
}

/**
 * Every event `address` emitted from `fromBlock` on, decoded with `abi` (the full ABI from
 * deployments/<network>.json), in chain order. Logs the ABI does not know are skipped.
 */
export async function readEvents(
  publicClient: PublicClient,
  address: Address,
  abi: Abi,
  fromBlock: bigint,
): Promise<ChainEvent[]> {
  const logs = await publicClient.getLogs({ address, fromBlock, toBlock: "latest" });
  return parseEventLogs({ abi, logs, strict: false })
    .map((log) => ({
      blockNumber: log.blockNumber,
      logIndex: log.logIndex,
      transactionHash: log.transactionHash,
      eventName: String(log.eventName),
      args: (Array.isArray(log.args) ? { ...log.args } : (log.args ?? {})) as Record<string, unknown>,
    }))
    .sort((a, b) =>
      a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1,
    );
}

// The staker's commands of the `infra` CLI: stake, delegate, unbond, rebond, withdraw, status.
// Each action checks what the contract would refuse first (balance, registration, active
// stake, lock maturity) so the user reads what is wrong and what to do, not a revert.
import { erc20Abi, formatUnits, getAddress, isAddress, parseUnits, type Address } from "viem";

import {
  nodeStakingAbi,
  readNodeStatus,
  readStakerPosition,
  readTokenBalance,
  rebond,
  stake,
  transferStakeToken,
  unbond,
  withdraw,
  type NodeStatus,
  type StakerPosition,
  type StakingContracts,
  type StakingWallet,
} from "../../sdk/staking.ts";
import { readEscrowAccount, type EscrowAccount } from "../../sdk/escrow.ts";
import { formatTable } from "../lib/table.ts";
import type { PendingRewards } from "./claim.ts";
import { escrowContracts } from "./escrow.ts";
import type { NetworkContext } from "./context.ts";
import { CliError } from "./format.ts";

/** The staking contracts of a network context. */
export function stakingContracts(context: NetworkContext): StakingContracts {
  return {
    publicClient: context.contracts.publicClient,
    nodeStaking: context.record.contracts.nodeStaking.address,
    stakeToken: context.record.contracts.stakeToken.address,
  };
}

// ------------------------------------------------------------------ pure parsing and formatting

/** A node id on the command line: its operator's address. */
export function parseNodeId(text: string): Address {
  if (!isAddress(text, { strict: false }))
    throw new CliError(`--node must be a node's address (0x + 40 hex), got "${text}"`);
  return getAddress(text);
}

/** A token amount in whole tokens ("500", "0.25"), converted to base units. */
export function parseTokenAmount(text: string, decimals: number): bigint {
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text))
    throw new CliError(`amount must be a number of tokens such as 500 or 0.25, got "${text}"`);
  const fraction = text.split(".")[1] ?? "";
  if (fraction.length > decimals) throw new CliError(`amount "${text}" has more than ${decimals} decimals`);
  const amount = parseUnits(text, decimals);
  if (amount === 0n) throw new CliError("amount must be more than 0");
  return amount;
}

/** A lock id on the command line. */
export function parseLockId(text: string): bigint {
  if (!/^[0-9]+$/.test(text)) throw new CliError(`--lock must be a lock number (see infra status), got "${text}"`);
  return BigInt(text);
}

/** "3d 4h", "12m 5s", "now": how long until `at` (unix seconds) from `now`. */
export function formatTimeLeft(at: bigint, now: bigint): string {
  if (at <= now) return "now";
  let s = Number(at - now);
  const d = Math.floor(s / 86_400);
  s -= d * 86_400;
  const h = Math.floor(s / 3_600);
  s -= h * 3_600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return m > 0 ? `${m}m ${s}s` : `${s}s`;
}

export function isoTime(seconds: bigint): string {
  return new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
}

// ------------------------------------------------------------------ reads

export interface TokenInfo {
  symbol: string;
  decimals: number;
}

export async function readTokenInfo(contracts: StakingContracts): Promise<TokenInfo> {
  const at = { address: contracts.stakeToken, abi: erc20Abi } as const;
  const [symbol, decimals] = await Promise.all([
    contracts.publicClient.readContract({ ...at, functionName: "symbol" }),
    contracts.publicClient.readContract({ ...at, functionName: "decimals" }),
  ]);
  return { symbol, decimals };
}

async function chainTime(contracts: StakingContracts): Promise<bigint> {
  return (await contracts.publicClient.getBlock({ blockTag: "latest" })).timestamp;
}

async function requireNode(contracts: StakingContracts, node: Address): Promise<NodeStatus> {
  const status = await readNodeStatus(contracts, node);
  if (!status.registered) {
    throw new CliError(
      `node ${node} is not registered on this network (its operator registers it: infra node register)`,
    );
  }
  return status;
}

// ------------------------------------------------------------------ actions

export interface StakeResult {
  action: "stake" | "delegate";
  node: Address;
  staker: Address;
  amount: bigint;
  shares: bigint;
  transaction: string;
  gasUsed: bigint;
  /** Set when the node is jailed: stake is accepted but earns nothing until it is free. */
  warning?: string;
}

/** Stakes on a node: self-stake when the wallet is the node's operator, delegation otherwise. */
export async function stakeAction(
  contracts: StakingContracts,
  wallet: StakingWallet,
  node: Address,
  amount: bigint,
  action: "stake" | "delegate",
): Promise<StakeResult> {
  const staker = wallet.account.address;
  const [status, balance, token, now] = await Promise.all([
    requireNode(contracts, node),
    readTokenBalance(contracts, staker),
    readTokenInfo(contracts),
    chainTime(contracts),
  ]);
  if (action === "delegate" && getAddress(node) === getAddress(staker)) {
    throw new CliError(
      "you operate this node: self-stake with `infra stake`, delegation is for other operators' nodes",
    );
  }
  if (balance < amount) {
    throw new CliError(
      `insufficient balance: ${staker} holds ${formatUnits(balance, token.decimals)} ${token.symbol}, ` +
        `the stake needs ${formatUnits(amount, token.decimals)}`,
    );
  }
  const sent = await stake(contracts, wallet, node, amount);
  return {
    action,
    node,
    staker,
    amount,
    shares: sent.shares,
    transaction: sent.hash,
    gasUsed: sent.gasUsed,
    ...(status.jailed
      ? {
          warning:
            `node ${node} is jailed until ${isoTime(status.jailedUntil)} (in ${formatTimeLeft(status.jailedUntil, now)}): ` +
            "your stake is accepted but the node is routed no jobs and earns nothing until then",
        }
      : {}),
  };
}

export interface UnbondResult {
  node: Address;
  staker: Address;
  amount: bigint;
  lockId: bigint;
  withdrawableAt: bigint;
  transaction: string;
}

export async function unbondAction(
  contracts: StakingContracts,
  wallet: StakingWallet,
  node: Address,
  amount: bigint,
): Promise<UnbondResult> {
  const staker = wallet.account.address;
  await requireNode(contracts, node);
  const [position, token] = await Promise.all([readStakerPosition(contracts, node, staker), readTokenInfo(contracts)]);
  if (position.activeStake < amount) {
    throw new CliError(
      `${staker} has ${formatUnits(position.activeStake, token.decimals)} ${token.symbol} active on node ${node}; ` +
        `cannot unbond ${formatUnits(amount, token.decimals)}`,
    );
  }
  const sent = await unbond(contracts, wallet, node, amount);
  return {
    node,
    staker,
    amount,
    lockId: sent.lockId,
    withdrawableAt: sent.withdrawableAt,
    transaction: sent.hash,
  };
}

function findLock(position: StakerPosition, lockId: bigint) {
  const lock = position.locks.find((l) => l.lockId === lockId);
  if (lock === undefined) {
    const live = position.locks.map((l) => l.lockId.toString());
    throw new CliError(
      `no unbonding lock ${lockId} of ${position.staker} on node ${position.node}` +
        (live.length === 0 ? " (it has none)" : ` (its locks: ${live.join(", ")})`),
    );
  }
  return lock;
}

export interface RebondResult {
  node: Address;
  lockId: bigint;
  value: bigint;
  shares: bigint;
  transaction: string;
}

export async function rebondAction(
  contracts: StakingContracts,
  wallet: StakingWallet,
  node: Address,
  lockId: bigint,
): Promise<RebondResult> {
  const position = await readStakerPosition(contracts, node, wallet.account.address);
  const lock = findLock(position, lockId);
  const sent = await rebond(contracts, wallet, node, lockId);
  return { node, lockId, value: lock.value, shares: sent.shares, transaction: sent.hash };
}

export interface WithdrawResult {
  node: Address;
  withdrawn: { lockId: bigint; amount: bigint; transaction: string }[];
  total: bigint;
}

/** Withdraws one lock, or every matured lock when `lockId` is undefined. */
export async function withdrawAction(
  contracts: StakingContracts,
  wallet: StakingWallet,
  node: Address,
  lockId: bigint | undefined,
): Promise<WithdrawResult> {
  const [position, now] = await Promise.all([
    readStakerPosition(contracts, node, wallet.account.address),
    chainTime(contracts),
  ]);
  let locks = position.locks;
  if (lockId !== undefined) {
    const lock = findLock(position, lockId);
    if (lock.withdrawableAt > now) {
      throw new CliError(
        `lock ${lockId} is not withdrawable yet: it matures at ${isoTime(lock.withdrawableAt)} ` +
          `(in ${formatTimeLeft(lock.withdrawableAt, now)})`,
      );
    }
    locks = [lock];
  } else {
    locks = locks.filter((l) => l.withdrawableAt <= now);
    if (locks.length === 0) {
      const next = position.locks.map((l) => l.withdrawableAt).sort((a, b) => (a < b ? -1 : 1))[0];
      throw new CliError(
        next === undefined
          ? `nothing to withdraw: no unbonding locks on node ${node} (unbond first: infra unbond)`
          : `nothing to withdraw yet: the next lock matures at ${isoTime(next)} (in ${formatTimeLeft(next, now)})`,
      );
    }
  }
  const withdrawn = [];
  for (const lock of locks) {
    const sent = await withdraw(contracts, wallet, node, lock.lockId);
    withdrawn.push({ lockId: lock.lockId, amount: sent.amount, transaction: sent.hash });
  }
  return { node, withdrawn, total: withdrawn.reduce((sum, w) => sum + w.amount, 0n) };
}

export interface StakerStatus {
  account: Address;
  balance: bigint;
  escrow: EscrowAccount;
  token: TokenInfo;
  now: bigint;
  positions: (StakerPosition & { nodeStatus: NodeStatus })[];
  /** With --oracle: what the account can still claim from RewardClaims. */
  rewards?: PendingRewards;
}

/** The nodes `account` ever staked on (from Staked events), or just `node`. */
async function nodesOf(context: NetworkContext, contracts: StakingContracts, account: Address): Promise<Address[]> {
  const logs = await contracts.publicClient.getContractEvents({
    address: contracts.nodeStaking,
    abi: nodeStakingAbi,
    eventName: "Staked",
    args: { staker: account },
    fromBlock: BigInt(context.record.contracts.nodeStaking.deployBlock ?? 0),
    toBlock: "latest",
  });
  const nodes = new Set<Address>();
  for (const log of logs) if (log.args.node !== undefined) nodes.add(getAddress(log.args.node));
  return [...nodes];
}

export async function statusAction(
  context: NetworkContext,
  account: Address,
  node: Address | undefined,
): Promise<StakerStatus> {
  const contracts = stakingContracts(context);
  const [nodes, balance, escrow, token, now] = await Promise.all([
    node === undefined ? nodesOf(context, contracts, account) : Promise.resolve([node]),
    readTokenBalance(contracts, account),
    readEscrowAccount(escrowContracts(context), account),
    readTokenInfo(contracts),
    chainTime(contracts),
  ]);
  const positions = await Promise.all(
    nodes.map(async (n) => {
      const [position, nodeStatus] = await Promise.all([
        readStakerPosition(contracts, n, account),
        readNodeStatus(contracts, n),
      ]);
      return { ...position, nodeStatus };
    }),
  );
  return { account, balance, escrow, token, now, positions };
}

/** The rewards line of `infra status --oracle`. */
function formatRewards(rewards: PendingRewards, amount: (value: bigint) => string): string {
  if (rewards.epoch === null) return "rewards to claim: none (no epoch settled and funded yet)";
  if (rewards.pending === 0n) {
    return `rewards to claim: none up to epoch ${rewards.epoch} (claimed ${amount(rewards.claimed)} in all)`;
  }
  return (
    `rewards to claim: ${amount(rewards.pending)} up to epoch ${rewards.epoch} ` +
    `(earned ${amount(rewards.cumulativeAmount)}, claimed ${amount(rewards.claimed)}; infra claim, or infra node claim for a node)`
  );
}

/** `infra status` for people. */
export function formatStakerStatus(status: StakerStatus): string {
  const { decimals, symbol } = status.token;
  const amount = (value: bigint) => `${formatUnits(value, decimals)} ${symbol}`;
  const lines = [`account ${status.account}: ${amount(status.balance)} in the wallet`];
  if (status.escrow.balance > 0n || status.escrow.pending.withdrawableAt > 0n) {
    const { withdrawableAt } = status.escrow.pending;
    lines.push(
      `payment escrow: ${amount(status.escrow.balance)}` +
        (withdrawableAt === 0n
          ? ""
          : `, withdrawal of ${amount(status.escrow.pending.amount)} matures at ${isoTime(withdrawableAt)} (in ${formatTimeLeft(withdrawableAt, status.now)})`),
    );
  }
  if (status.rewards !== undefined) lines.push(formatRewards(status.rewards, amount));
  if (status.positions.length === 0) {
    lines.push("no stake on any node (stake with: infra stake --node <address> --amount <tokens>)");
    return lines.join("\n");
  }
  lines.push(
    formatTable(
      [
        { header: "node" },
        { header: "tier", align: "right" },
        { header: "state" },
        { header: "commission", align: "right" },
        { header: "your stake", align: "right" },
        { header: "node stake", align: "right" },
      ],
      status.positions.map((p) => [
        p.node,
        String(p.nodeStatus.tier),
        p.nodeStatus.jailed
          ? `jailed until ${isoTime(p.nodeStatus.jailedUntil)} (in ${formatTimeLeft(p.nodeStatus.jailedUntil, status.now)})`
          : p.nodeStatus.eligible
            ? "eligible"
            : "not eligible",
        `${p.nodeStatus.commissionBps / 100}%`,
        amount(p.activeStake),
        amount(p.nodeStatus.activeStake),
      ]),
    ),
  );
  const locks = status.positions.flatMap((p) => p.locks.map((l) => ({ node: p.node, ...l })));
  if (locks.length > 0) {
    lines.push("unbonding locks:");
    lines.push(
      formatTable(
        [
          { header: "node" },
          { header: "lock", align: "right" },
          { header: "value", align: "right" },
          { header: "withdrawable at" },
          { header: "time left", align: "right" },
        ],
        locks.map((l) => [
          l.node,
          l.lockId.toString(),
          amount(l.value),
          isoTime(l.withdrawableAt),
          formatTimeLeft(l.withdrawableAt, status.now),
        ]),
      ),
    );
  }
  lines.push("rewards compound into each node's pool: they are part of 'your stake'.");
  return lines.join("\n");
}

export interface TransferResult {
  from: Address;
  to: Address;
  tokens: bigint;
  ether: bigint;
  transactions: string[];
}

/**
 * Sends tokens and/or ether for gas to `to`: how a token holder funds a new operator key, a
 * delegator or a client. Checks both balances first, so nothing is half sent.
 */
export async function transferAction(
  contracts: StakingContracts,
  wallet: StakingWallet,
  to: Address,
  tokens: bigint,
  ether: bigint,
): Promise<TransferResult> {
  const from = wallet.account.address;
  const [held, gas, token] = await Promise.all([
    readTokenBalance(contracts, from),
    contracts.publicClient.getBalance({ address: from }),
    readTokenInfo(contracts),
  ]);
  if (held < tokens) {
    throw new CliError(
      `insufficient balance: ${from} holds ${formatUnits(held, token.decimals)} ${token.symbol}, ` +
        `the transfer needs ${formatUnits(tokens, token.decimals)}`,
    );
  }
  if (gas < ether) {
    throw new CliError(
      `insufficient ether: ${from} holds ${formatUnits(gas, 18)} ETH, the transfer needs ${formatUnits(ether, 18)}`,
    );
  }
  const transactions: string[] = [];
  if (tokens > 0n) transactions.push((await transferStakeToken(contracts, wallet, to, tokens)).hash);
  if (ether > 0n) {
    const hash = await wallet.sendTransaction({ to, value: ether });
    const receipt = await contracts.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new CliError(`the ether transfer ${hash} reverted`);
    transactions.push(hash);
  }
  return { from, to, tokens, ether, transactions };
}

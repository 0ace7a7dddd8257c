// Every balance the protocol keeps, rebuilt from events alone (pure): NodeStaking's pools, each
// staker's shares and unbonding locks, RewardClaims' claimed amounts, PaymentEscrow's client
// balances. The auditor compares them with the contracts' views; INodeStaking promises that every
// balance can be rebuilt from its events, and this is that promise checked.
import { type Address, type Hex, getAddress } from "viem";

import type { ContractKey } from "../sdk/deployment.ts";
import type { JsonArg } from "../keeper/indexer/logic.ts";
import { type Finding, finding } from "./findings.ts";
import { unpackDebits } from "./settlement.ts";

/** One decoded protocol event, as the indexer stores it. */
export interface AuditEvent {
  contract: ContractKey;
  event: string | null;
  args: Record<string, JsonArg>;
  blockNumber: number;
  logIndex: number;
  txHash: string;
}

export interface PoolState {
  activeStake: bigint;
  activeShares: bigint;
  unbondingStake: bigint;
  unbondingShares: bigint;
  /** Bits the unbonding pool's share counts were divided by so far. */
  scale: bigint;
}

export interface LockState {
  shares: bigint;
  withdrawableAt: bigint;
}

/** What the events say the contracts hold. Keys: node, `node/staker`, `node/staker/lockId`, account. */
export interface Balances {
  pools: Map<Address, PoolState>;
  shares: Map<string, bigint>;
  lockCounts: Map<string, bigint>;
  /** Every lock ever made; a withdrawn or rebonded one is { shares: 0, withdrawableAt: 0 }. */
  locks: Map<string, LockState>;
  claimed: Map<Address, bigint>;
  /** Each node's commission accrued by claims and not withdrawn (NodeStaking nodeInfo.commissionOwed). */
  commissionOwed: Map<Address, bigint>;
  /** NodeStaking's earnings reserve: Σ EarningsFunded − Σ EarningsPaid. */
  earningsReserve: bigint;
  /** Highest cumulative amount each account claimed, and against which epoch. */
  lastClaim: Map<Address, { epoch: bigint; cumulativeAmount: bigint; tx: string }>;
  escrow: Map<Address, bigint>;
  /** Slashed stake NodeStaking released to RewardClaims, and what funded epochs allocated of it. */
  slashReceived: bigint;
  slashAllocated: bigint;
  /** Funded epochs: DebitsCollected's transaction per epoch (to find its DebitedPacked). */
  fundedTx: Map<bigint, string>;
  /** DebitedPacked words per transaction. */
  packedDebits: Map<string, Hex[]>;
}

const big = (v: JsonArg | undefined): bigint => {
  if (typeof v !== "string" || !/^[0-9]+$/.test(v)) throw new TypeError(`not a uint: ${JSON.stringify(v)}`);
  return BigInt(v);
};
const addr = (v: JsonArg | undefined): Address => {
  if (typeof v !== "string") throw new TypeError(`not an address: ${JSON.stringify(v)}`);
  return getAddress(v);
};

/** Replays `events` (in chain order) into the balances they imply. */
export function replayBalances(events: readonly AuditEvent[], rewardClaims: Address): Balances {
  const b: Balances = {
    pools: new Map(),
    shares: new Map(),
    lockCounts: new Map(),
    locks: new Map(),
    claimed: new Map(),
    commissionOwed: new Map(),
    earningsReserve: 0n,
    lastClaim: new Map(),
    escrow: new Map(),
    slashReceived: 0n,
    slashAllocated: 0n,
    fundedTx: new Map(),
    packedDebits: new Map(),
  };
  const pool = (node: Address) => {
    let p = b.pools.get(node);
    if (!p)
      b.pools.set(
        node,
        (p = { activeStake: 0n, activeShares: 0n, unbondingStake: 0n, unbondingShares: 0n, scale: 0n }),
      );
    return p;
  };
  const add = <K>(m: Map<K, bigint>, k: K, v: bigint) => m.set(k, (m.get(k) ?? 0n) + v);
  const lockScales = new Map<string, bigint>();
  // A claim proves against the latest funded root: the epoch of the last DebitsCollected before it.
  let fundedEpoch = -1n;
  for (const e of events) {
    const a = e.args;
    if (e.contract === "nodeStaking") {
      switch (e.event) {
        case "NodeRegistered":
          pool(addr(a.node));
          break;
        case "Staked": {
          const p = pool(addr(a.node));
          p.activeStake += big(a.amount);
          p.activeShares += big(a.shares);
          add(b.shares, `${addr(a.node)}/${addr(a.staker)}`, big(a.shares));
          break;
        }
        case "Unbonded": {
          const node = addr(a.node);
          const key = `${node}/${addr(a.staker)}`;
          const p = pool(node);
          p.activeStake -= big(a.amount);
          p.activeShares -= big(a.activeShares);
          p.unbondingStake += big(a.amount);
          p.unbondingShares += big(a.unbondingShares);
          add(b.shares, key, -big(a.activeShares));
          add(b.lockCounts, key, 1n);
          b.locks.set(`${key}/${big(a.lockId)}`, {
            shares: big(a.unbondingShares),
            withdrawableAt: big(a.withdrawableAt),
          });
          lockScales.set(`${key}/${big(a.lockId)}`, p.scale);
          break;
        }
        case "Rebonded": {
          const node = addr(a.node);
          const key = `${node}/${addr(a.staker)}`;
          const p = pool(node);
          p.unbondingStake -= big(a.amount);
          p.unbondingShares -= big(a.unbondingShares);
          p.activeStake += big(a.amount);
          p.activeShares += big(a.shares);
          add(b.shares, key, big(a.shares));
          b.locks.set(`${key}/${big(a.lockId)}`, { shares: 0n, withdrawableAt: 0n });
          break;
        }
        case "Withdrawn": {
          const node = addr(a.node);
          const p = pool(node);
          p.unbondingStake -= big(a.amount);
          p.unbondingShares -= big(a.unbondingShares);
          b.locks.set(`${node}/${addr(a.staker)}/${big(a.lockId)}`, { shares: 0n, withdrawableAt: 0n });
          break;
        }
        case "RewardsAdded":
          pool(addr(a.node)).activeStake += big(a.amount);
          break;
        case "EarningsFunded":
          b.earningsReserve += big(a.amount);
          break;
        case "EarningsPaid": {
          b.earningsReserve -= big(a.amount);
          const toStakers = big(a.toStakers);
          if (toStakers > 0n) pool(addr(a.account)).activeStake += toStakers;
          const accrued = big(a.commissionAccrued);
          if (accrued > 0n) add(b.commissionOwed, addr(a.account), accrued);
          break;
        }
        case "CommissionWithdrawn":
          add(b.commissionOwed, addr(a.node), -big(a.amount));
          break;
        case "Slashed": {
          const p = pool(addr(a.node));
          p.activeStake -= big(a.fromActive);
          p.unbondingStake -= big(a.fromUnbonding);
          break;
        }
        case "UnbondingPoolRedenominated": {
          const p = pool(addr(a.node));
          p.unbondingShares >>= big(a.bits);
          p.scale = big(a.scale);
          break;
        }
        case "SlashedStakeReleased":
          if (addr(a.recipient) === getAddress(rewardClaims)) b.slashReceived += big(a.redistributed);
          break;
      }
    } else if (e.contract === "rewardClaims") {
      if (e.event === "Claimed") {
        const account = addr(a.account);
        add(b.claimed, account, big(a.amount));
        b.lastClaim.set(account, { epoch: fundedEpoch, cumulativeAmount: big(a.cumulativeAmount), tx: e.txHash });
      } else if (e.event === "DebitsCollected") {
        fundedEpoch = big(a.epoch);
        b.slashAllocated += big(a.redistributedSlash);
        b.fundedTx.set(big(a.epoch), e.txHash);
      }
    } else if (e.contract === "paymentEscrow") {
      switch (e.event) {
        case "Deposited":
          add(b.escrow, addr(a.client), big(a.amount));
          break;
        case "Withdrawn":
        case "Debited":
          add(b.escrow, addr(a.client), -big(a.amount));
          break;
        case "DebitedPacked": {
          const words = (Array.isArray(a.debits) ? a.debits : []) as Hex[];
          b.packedDebits.set(e.txHash, words);
          for (const d of unpackDebits(words)) add(b.escrow, d.client, -d.amount);
          break;
        }
      }
    }
  }
  // A lock's shares as the view reports them: in the pool's current denomination.
  for (const [key, lock] of b.locks) {
    const node = key.split("/")[0] as Address;
    const shift = (b.pools.get(node)?.scale ?? 0n) - (lockScales.get(key) ?? 0n);
    if (lock.shares > 0n) lock.shares = shift >= 128n ? 0n : lock.shares >> shift;
  }
  return b;
}

/** What the contracts' views return for the same keys (read by auditor/chain.ts). */
export interface ChainBalances {
  pools: Map<Address, PoolState>;
  shares: Map<string, bigint>;
  lockCounts: Map<string, bigint>;
  locks: Map<string, LockState>;
  claimed: Map<Address, bigint>;
  commissionOwed: Map<Address, bigint>;
  earningsReserve: bigint;
  escrow: Map<Address, bigint>;
}

/**
 * Compares the replayed balances with the chain's, and claims with the recomputed earnings:
 * `earnings` maps a funded epoch to each account's cumulative earnings in it.
 */
export function compareBalances(
  expected: Balances,
  actual: ChainBalances,
  earnings: ReadonlyMap<bigint, ReadonlyMap<Address, bigint>>,
): Finding[] {
  const out: Finding[] = [];
  for (const [node, p] of expected.pools) {
    const q = actual.pools.get(node);
    for (const field of ["activeStake", "activeShares", "unbondingStake", "unbondingShares"] as const)
      if (q === undefined || q[field] !== p[field])
        out.push(
          finding(
            "stake_mismatch",
            `NodeStaking pool ${field} of the node, rebuilt from events`,
            p[field],
            q?.[field] ?? "unread",
            {
              account: node,
            },
          ),
        );
  }
  for (const [key, shares] of expected.shares) {
    const [node, staker] = key.split("/");
    const got = actual.shares.get(key);
    if (got !== shares)
      out.push(
        finding(
          "stake_mismatch",
          `NodeStaking sharesOf(node ${node}, staker) rebuilt from events`,
          shares,
          got ?? "unread",
          {
            account: staker,
          },
        ),
      );
    const count = expected.lockCounts.get(key) ?? 0n;
    const gotCount = actual.lockCounts.get(key);
    if (gotCount !== count)
      out.push(
        finding(
          "lock_mismatch",
          `NodeStaking lockCount(node ${node}, staker) rebuilt from events`,
          count,
          gotCount ?? "unread",
          {
            account: staker,
          },
        ),
      );
  }
  for (const [key, lock] of expected.locks) {
    const [node, staker, id] = key.split("/");
    const got = actual.locks.get(key);
    if (got === undefined || got.shares !== lock.shares || got.withdrawableAt !== lock.withdrawableAt)
      out.push(
        finding(
          "lock_mismatch",
          `NodeStaking unbondingLock(node ${node}, staker, lock ${id}) rebuilt from events`,
          `${lock.shares} shares, withdrawable at ${lock.withdrawableAt}`,
          got === undefined ? "unread" : `${got.shares} shares, withdrawable at ${got.withdrawableAt}`,
          { account: staker },
        ),
      );
  }
  for (const [node, owed] of expected.commissionOwed) {
    const got = actual.commissionOwed.get(node);
    if (got !== owed)
      out.push(
        finding(
          "commission_mismatch",
          "NodeStaking nodeInfo(node).commissionOwed: EarningsPaid accruals − CommissionWithdrawn from events",
          owed,
          got ?? "unread",
          { account: node },
        ),
      );
  }
  if (actual.earningsReserve !== expected.earningsReserve)
    out.push(
      finding(
        "reserve_mismatch",
        "NodeStaking earningsReserve(): Σ EarningsFunded − Σ EarningsPaid from events",
        expected.earningsReserve,
        actual.earningsReserve,
      ),
    );
  const accounts = new Set<Address>([...expected.claimed.keys(), ...actual.claimed.keys()]);
  for (const account of accounts) {
    const e = expected.claimed.get(account) ?? 0n;
    const a = actual.claimed.get(account);
    if (a !== e)
      out.push(
        finding("claimed_mismatch", "RewardClaims claimed(account): the sum of its Claimed events", e, a ?? "unread", {
          account,
        }),
      );
    const last = expected.lastClaim.get(account);
    if (last !== undefined) {
      if (last.cumulativeAmount !== e)
        out.push(
          finding(
            "claimed_mismatch",
            "the last Claimed event's cumulativeAmount is not the sum of the amounts claimed",
            e,
            last.cumulativeAmount,
            {
              account,
              epoch: last.epoch,
              tx: last.tx,
            },
          ),
        );
      const earned = earnings.get(last.epoch)?.get(account);
      if (earned === undefined || last.cumulativeAmount > earned)
        out.push(
          finding(
            "overclaimed",
            "claimed more than the recomputed cumulative earnings of the epoch claimed against",
            `≤ ${earned ?? 0n}`,
            last.cumulativeAmount,
            {
              account,
              epoch: last.epoch,
              tx: last.tx,
            },
          ),
        );
    }
  }
  for (const [client, balance] of expected.escrow) {
    const got = actual.escrow.get(client);
    if (got !== balance)
      out.push(
        finding(
          "escrow_mismatch",
          "PaymentEscrow balanceOf(client): deposits − withdrawals − debits from events",
          balance,
          got ?? "unread",
          {
            account: client,
          },
        ),
      );
  }
  if (expected.slashAllocated > expected.slashReceived)
    out.push(
      finding(
        "slash_overallocated",
        "funded epochs allocated more redistributed slash than NodeStaking released to RewardClaims",
        `≤ ${expected.slashReceived}`,
        expected.slashAllocated,
      ),
    );
  return out;
}

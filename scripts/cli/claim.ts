// `infra node claim` and `infra claim`: an earning account (node, model publisher, treasury) is paid
// what it earned. The oracle serves the account's cumulative amount and Merkle proof for the
// latest funded epoch; RewardClaims pays the difference to what was already claimed out of staking's
// earnings reserve (for a node: its commission accrues to the operator, the rest goes into its staking
// pool; `infra node claim` then withdraws the accrued commission to the operator unless told to keep
// it). Nothing is sent when there is nothing to claim.
import { formatUnits, getAddress, isAddress, type Address, type Hex } from "viem";

import { claimRewards, readClaimed, readLatestRoot, ClaimCallError, type ClaimsContracts } from "../../sdk/claims.ts";
import { readNodeInfo, withdrawCommission, type StakingWallet } from "../../sdk/staking.ts";
import type { NetworkContext } from "./context.ts";
import { CliError } from "./format.ts";
import { stakingContracts, type TokenInfo } from "./stake.ts";

export function claimsContracts(context: NetworkContext): ClaimsContracts {
  return { publicClient: context.contracts.publicClient, rewardClaims: context.record.contracts.rewardClaims.address };
}

/** Where the CLI looks for an oracle without --oracle: INFRAMESH_ORACLE_URL. */
export function defaultOracleUrl(env: NodeJS.ProcessEnv): string | undefined {
  const url = env.INFRAMESH_ORACLE_URL;
  return url !== undefined && url !== "" ? url : undefined;
}

/** An epoch number on the command line. */
export function parseEpoch(text: string): bigint {
  if (!/^[0-9]+$/.test(text)) throw new CliError(`--epoch must be an epoch number (0, 1, …), got "${text}"`);
  return BigInt(text);
}

/** The oracle's answer for one account: what it passes to RewardClaims.claim. */
export interface OracleClaim {
  epoch: bigint;
  cumulativeAmount: bigint;
  earningsRoot: Hex;
  proof: Hex[];
}

/** Checks the oracle's claim JSON (pure): every field the contract call needs, well formed. */
export function parseOracleClaim(json: unknown, account: Address): OracleClaim {
  const bad = (why: string) => new CliError(`the oracle's claim for ${account} is malformed: ${why}`);
  if (typeof json !== "object" || json === null) throw bad("not a JSON object");
  const c = json as Record<string, unknown>;
  if (typeof c.account !== "string" || !isAddress(c.account) || getAddress(c.account) !== account) {
    throw bad(`it is for account ${String(c.account)}`);
  }
  if (typeof c.cumulative_amount !== "string" || !/^[0-9]+$/.test(c.cumulative_amount)) throw bad("cumulative_amount");
  if (typeof c.epoch !== "string" || !/^[0-9]+$/.test(c.epoch)) throw bad("epoch");
  const hash = /^0x[0-9a-fA-F]{64}$/;
  if (typeof c.earnings_root !== "string" || !hash.test(c.earnings_root)) throw bad("earnings_root");
  if (!Array.isArray(c.proof) || !c.proof.every((p) => typeof p === "string" && hash.test(p))) throw bad("proof");
  return {
    epoch: BigInt(c.epoch),
    cumulativeAmount: BigInt(c.cumulative_amount),
    earningsRoot: c.earnings_root.toLowerCase() as Hex,
    proof: (c.proof as string[]).map((p) => p.toLowerCase() as Hex),
  };
}

/** Asks `oracle` for `account`'s claim at `epoch`; undefined when the account earned nothing. */
export async function fetchOracleClaim(
  oracle: string,
  epoch: bigint,
  account: Address,
): Promise<OracleClaim | undefined> {
  const url = `${oracle.replace(/\/+$/, "")}/v1/epochs/${epoch}/claims/${account}`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  } catch (error) {
    throw new CliError(`cannot reach the oracle at ${new URL(url).origin} (is it running? pass --oracle <url>)`, {
      cause: error,
    });
  }
  let json: unknown;
  try {
    json = await res.json();
  } catch (error) {
    throw new CliError(`${url} answered ${res.status} with a body that is not JSON: is it an Inframesh oracle?`, {
      cause: error,
    });
  }
  const body = (typeof json === "object" && json !== null ? json : {}) as { error?: unknown; reason?: unknown };
  if (res.status === 404 && body.error === "no_earnings") return undefined;
  if (res.status === 404 && body.error === "unknown_epoch") {
    throw new CliError(
      `the oracle at ${new URL(url).origin} has no record of epoch ${epoch}: ask an oracle of the committee that settled it`,
    );
  }
  if (res.status !== 200) {
    throw new CliError(`the oracle refused (${res.status} ${String(body.error)}): ${String(body.reason)}`);
  }
  return parseOracleClaim(json, account);
}

/** What an account can still claim: its cumulative amount in the latest funded root minus what it claimed. */
export interface PendingRewards {
  account: Address;
  /** The latest funded epoch; null before the first. */
  epoch: bigint | null;
  cumulativeAmount: bigint;
  claimed: bigint;
  pending: bigint;
}

/** The latest funded epoch's claim for `account`, checked against the root on chain. */
async function currentClaim(
  context: NetworkContext,
  oracle: string,
  account: Address,
  epoch: bigint | undefined,
): Promise<{ epoch: bigint | null; claim: OracleClaim | undefined; claimed: bigint }> {
  const contracts = claimsContracts(context);
  const [root, claimed] = await Promise.all([readLatestRoot(contracts), readClaimed(contracts, account)]);
  if (!root.funded) return { epoch: null, claim: undefined, claimed };
  if (epoch !== undefined && epoch !== root.epoch) {
    throw new CliError(
      `claims are proven against the latest funded epoch, ${root.epoch}: epoch ${epoch}'s proof would not verify ` +
        "(omit --epoch; the latest cumulative amount includes every earlier epoch)",
    );
  }
  const claim = await fetchOracleClaim(oracle, root.epoch, account);
  if (claim !== undefined && claim.earningsRoot !== root.root.toLowerCase()) {
    throw new CliError(
      `the oracle's earnings root for epoch ${root.epoch} is ${claim.earningsRoot}, but the chain's is ${root.root}: ` +
        "this oracle did not settle that epoch (pass --oracle of the committee that did)",
    );
  }
  return { epoch: root.epoch, claim, claimed };
}

export async function pendingRewards(
  context: NetworkContext,
  oracle: string,
  account: Address,
): Promise<PendingRewards> {
  const { epoch, claim, claimed } = await currentClaim(context, oracle, account, undefined);
  const cumulativeAmount = claim?.cumulativeAmount ?? 0n;
  const pending = cumulativeAmount > claimed ? cumulativeAmount - claimed : 0n;
  return { account, epoch, cumulativeAmount, claimed, pending };
}

/** Commission withdrawn to the operator after a node's claim (`infra node claim`). */
export interface CommissionWithdrawal {
  amount: bigint;
  transaction: string;
}

export type ClaimResult = (
  | { status: "nothing"; account: Address; epoch: bigint | null; reason: string }
  | { status: "already-claimed"; account: Address; epoch: bigint; cumulativeAmount: bigint; claimed: bigint }
  | {
      status: "claimed";
      account: Address;
      node: boolean;
      epoch: bigint;
      cumulativeAmount: bigint;
      amount: bigint;
      commission: bigint;
      toStakers: bigint;
      transaction: string;
      gasUsed: bigint;
    }
) & { withdrawn?: CommissionWithdrawal };

/**
 * Claims `account`'s rewards (sent by `wallet`); `requireNode` for `infra node claim`. With
 * `withdrawCommission`, a node signing for itself then withdraws all its accrued commission.
 */
export async function claimAction(
  context: NetworkContext,
  wallet: StakingWallet,
  options: { oracle: string; account?: Address; epoch?: bigint; requireNode: boolean; withdrawCommission?: boolean },
): Promise<ClaimResult> {
  const account = options.account ?? wallet.account.address;
  const node = await readNodeInfo(stakingContracts(context), account);
  if (options.requireNode && !node.registered) {
    throw new CliError(`${account} is not a registered node: a publisher or treasury account claims with infra claim`);
  }
  const result = await claimEarnings(context, wallet, account, node.registered, options);
  if (!options.withdrawCommission || !node.registered || getAddress(wallet.account.address) !== getAddress(account)) {
    return result;
  }
  const { commissionOwed } = await readNodeInfo(stakingContracts(context), account);
  if (commissionOwed === 0n) return result;
  try {
    const sent = await withdrawCommission(stakingContracts(context), wallet);
    return { ...result, withdrawn: { amount: sent.amount, transaction: sent.hash } };
  } catch (error) {
    throw new CliError(
      `the claim went through, but withdrawing the accrued commission failed (run infra node claim again): ` +
        `${(error as Error).message}`,
      { cause: error },
    );
  }
}

async function claimEarnings(
  context: NetworkContext,
  wallet: StakingWallet,
  account: Address,
  isNode: boolean,
  options: { oracle: string; epoch?: bigint },
): Promise<ClaimResult> {
  const { epoch, claim, claimed } = await currentClaim(context, options.oracle, account, options.epoch);
  if (epoch === null) {
    return { status: "nothing", account, epoch, reason: "no epoch has been settled and funded yet" };
  }
  if (claim === undefined) {
    return { status: "nothing", account, epoch, reason: `${account} has no earnings up to epoch ${epoch}` };
  }
  if (claim.cumulativeAmount <= claimed) {
    return { status: "already-claimed", account, epoch, cumulativeAmount: claim.cumulativeAmount, claimed };
  }
  let paid;
  try {
    paid = await claimRewards(claimsContracts(context), wallet, account, claim.cumulativeAmount, claim.proof);
  } catch (error) {
    if (error instanceof ClaimCallError) throw new CliError(error.message, { cause: error });
    throw error;
  }
  return {
    status: "claimed",
    account,
    node: isNode,
    epoch: paid.epoch,
    cumulativeAmount: paid.cumulativeAmount,
    amount: paid.amount,
    commission: paid.commission,
    toStakers: paid.toStakers,
    transaction: paid.hash,
    gasUsed: paid.gasUsed,
  };
}

/** `infra claim` for people. */
export function formatClaim(result: ClaimResult, token: TokenInfo): string {
  const amount = (v: bigint) => `${formatUnits(v, token.decimals)} ${token.symbol}`;
  const lines: string[] = [];
  switch (result.status) {
    case "nothing":
      lines.push(`nothing to claim: ${result.reason}`);
      break;
    case "already-claimed":
      lines.push(
        `nothing to claim: ${result.account} already claimed ${amount(result.claimed)}, ` +
          `all it earned up to epoch ${result.epoch} (no transaction sent)`,
      );
      break;
    case "claimed":
      lines.push(
        `claimed ${amount(result.amount)} for ${result.account} (epoch ${result.epoch}, ${amount(result.cumulativeAmount)} in all)`,
        result.node
          ? `  ${amount(result.commission)} commission accrued to the operator, ${amount(result.toStakers)} into the node's staking pool`
          : `  ${amount(result.commission)} paid to ${result.account}`,
        `  transaction ${result.transaction}`,
      );
      break;
  }
  if (result.withdrawn !== undefined) {
    lines.push(
      `withdrew ${amount(result.withdrawn.amount)} of accrued commission to the operator`,
      `  transaction ${result.withdrawn.transaction}`,
    );
  }
  return lines.join("\n");
}

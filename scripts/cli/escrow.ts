// The client's payment escrow commands of the `infra` CLI: deposit, and withdraw in two steps
// (a request, then the withdrawal once the delay has passed). Checks first what the contract
// would refuse, so the user reads what is wrong and when it will be right.
import { formatUnits } from "viem";

import {
  deposit,
  readEscrowAccount,
  requestWithdrawal,
  withdrawEscrow,
  type EscrowContracts,
} from "../../sdk/escrow.ts";
import { readTokenBalance, type StakingWallet } from "../../sdk/staking.ts";
import type { NetworkContext } from "./context.ts";
import { CliError } from "./format.ts";
import { formatTimeLeft, isoTime, stakingContracts, type TokenInfo } from "./stake.ts";

export function escrowContracts(context: NetworkContext): EscrowContracts {
  return {
    publicClient: context.contracts.publicClient,
    paymentEscrow: context.record.contracts.paymentEscrow.address,
    paymentToken: context.record.contracts.stakeToken.address,
  };
}

async function chainTime(contracts: EscrowContracts): Promise<bigint> {
  return (await contracts.publicClient.getBlock({ blockTag: "latest" })).timestamp;
}

export async function depositAction(
  context: NetworkContext,
  wallet: StakingWallet,
  amount: bigint,
  token: TokenInfo,
): Promise<{ client: string; amount: bigint; balance: bigint; transaction: string }> {
  const client = wallet.account.address;
  const held = await readTokenBalance(stakingContracts(context), client);
  if (held < amount) {
    throw new CliError(
      `insufficient balance: ${client} holds ${formatUnits(held, token.decimals)} ${token.symbol}, ` +
        `the deposit needs ${formatUnits(amount, token.decimals)}`,
    );
  }
  const sent = await deposit(escrowContracts(context), wallet, amount);
  return { client, amount, balance: sent.balance, transaction: sent.hash };
}

export type EscrowWithdrawResult =
  | { step: "requested"; amount: bigint; withdrawableAt: bigint; now: bigint; transaction: string }
  | { step: "withdrawn"; amount: bigint; transaction: string };

/**
 * With `amount`: requests a withdrawal (replacing any pending one). Without: withdraws the
 * matured request, or says when it matures.
 */
export async function escrowWithdrawAction(
  context: NetworkContext,
  wallet: StakingWallet,
  amount: bigint | undefined,
  token: TokenInfo,
): Promise<EscrowWithdrawResult> {
  const contracts = escrowContracts(context);
  const [account, now] = await Promise.all([
    readEscrowAccount(contracts, wallet.account.address),
    chainTime(contracts),
  ]);
  if (amount !== undefined) {
    if (account.balance < amount) {
      throw new CliError(
        `your escrow balance is ${formatUnits(account.balance, token.decimals)} ${token.symbol}: ` +
          `cannot request ${formatUnits(amount, token.decimals)}`,
      );
    }
    const sent = await requestWithdrawal(contracts, wallet, amount);
    return { step: "requested", amount, withdrawableAt: sent.withdrawableAt, now, transaction: sent.hash };
  }
  const { withdrawableAt } = account.pending;
  if (withdrawableAt === 0n) {
    throw new CliError("no withdrawal requested: first run infra withdraw --escrow --amount <tokens>");
  }
  if (withdrawableAt > now) {
    throw new CliError(
      `the withdrawal is not ready: it matures at ${isoTime(withdrawableAt)} (in ${formatTimeLeft(withdrawableAt, now)}); ` +
        "until then it stays in your balance and can pay for jobs already served",
    );
  }
  const sent = await withdrawEscrow(contracts, wallet);
  return { step: "withdrawn", amount: sent.amount, transaction: sent.hash };
}

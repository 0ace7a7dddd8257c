// PaymentEscrow from TypeScript: what a client calls (deposit, request a withdrawal, withdraw)
// and reads (balance, pending withdrawal). Writes are simulated first so a revert surfaces as
// the contract's own custom error.
import { erc20Abi, parseAbi, type Address, type Hash, type PublicClient } from "viem";

import { describeRevert, type StakingWallet } from "./staking.ts";
import { simulateAndSend } from "./tx.ts";

/** The client-facing part of PaymentEscrow's ABI; test/sdk/sdk-abi.test.ts checks it against the artifact. */
export const paymentEscrowAbi = parseAbi([
  "struct Withdrawal { uint128 amount; uint64 withdrawableAt; }",
  "function deposit(uint256 amount)",
  "function requestWithdrawal(uint256 amount) returns (uint64 withdrawableAt)",
  "function cancelWithdrawal()",
  "function withdraw() returns (uint256 amount)",
  "function balanceOf(address client) view returns (uint256)",
  "function pendingWithdrawal(address client) view returns (Withdrawal)",
  "function withdrawalDelay() view returns (uint32)",
  "function totalBalance() view returns (uint256)",
  "event Deposited(address indexed client, uint256 amount, uint256 balance)",
  "event WithdrawalRequested(address indexed client, uint256 amount, uint64 withdrawableAt)",
  "event Withdrawn(address indexed client, uint256 amount, uint256 balance)",
  "error ZeroAmount()",
  "error InsufficientBalance(address client, uint256 have, uint256 need)",
  "error NoWithdrawalRequested(address client)",
  "error WithdrawalNotMatured(address client, uint64 withdrawableAt, uint256 nowTimestamp)",
  "error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed)",
  "error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed)",
]);

export interface EscrowContracts {
  publicClient: PublicClient;
  paymentEscrow: Address;
  paymentToken: Address;
}

/** A client's escrow account. */
export interface EscrowAccount {
  client: Address;
  balance: bigint;
  /** Pending withdrawal request; `withdrawableAt` 0 when there is none. */
  pending: { amount: bigint; withdrawableAt: bigint };
  withdrawalDelay: number;
}

/** An escrow call that reverted or could not be sent. */
export class EscrowCallError extends Error {
  readonly action: string;
  readonly reason: string | undefined;
  constructor(action: string, reason: string | undefined, options: { cause: unknown }) {
    super(`${action} failed${reason === undefined ? "" : `: ${reason}`}`, options);
    this.name = "EscrowCallError";
    this.action = action;
    this.reason = reason;
  }
}

async function send(
  contracts: EscrowContracts,
  wallet: StakingWallet,
  action: string,
  request: Parameters<PublicClient["simulateContract"]>[0],
) {
  try {
    return await simulateAndSend(contracts.publicClient, wallet, request);
  } catch (error) {
    throw new EscrowCallError(action, describeRevert(error), { cause: error });
  }
}

/** Deposits `amount` for the wallet's account, approving the escrow first when the allowance is short. */
export async function deposit(
  contracts: EscrowContracts,
  client: StakingWallet,
  amount: bigint,
): Promise<{ hash: Hash; balance: bigint }> {
  const allowance = await contracts.publicClient.readContract({
    address: contracts.paymentToken,
    abi: erc20Abi,
    functionName: "allowance",
    args: [client.account.address, contracts.paymentEscrow],
  });
  if (allowance < amount) {
    await send(contracts, client, "approve", {
      address: contracts.paymentToken,
      abi: erc20Abi,
      functionName: "approve",
      args: [contracts.paymentEscrow, amount],
    });
  }
  const { receipt } = await send(contracts, client, "deposit", {
    address: contracts.paymentEscrow,
    abi: paymentEscrowAbi,
    functionName: "deposit",
    args: [amount],
  });
  return {
    hash: receipt.transactionHash,
    balance: (await readEscrowAccount(contracts, client.account.address)).balance,
  };
}

/** Asks to withdraw `amount`; it stays debitable until withdrawn. Replaces any pending request. */
export async function requestWithdrawal(
  contracts: EscrowContracts,
  client: StakingWallet,
  amount: bigint,
): Promise<{ hash: Hash; withdrawableAt: bigint }> {
  const { receipt, result } = await send(contracts, client, "requestWithdrawal", {
    address: contracts.paymentEscrow,
    abi: paymentEscrowAbi,
    functionName: "requestWithdrawal",
    args: [amount],
  });
  return { hash: receipt.transactionHash, withdrawableAt: BigInt(result as bigint) };
}

/** Withdraws the matured request: pays min(requested, balance left after debits). */
export async function withdrawEscrow(
  contracts: EscrowContracts,
  client: StakingWallet,
): Promise<{ hash: Hash; amount: bigint }> {
  const { receipt, result } = await send(contracts, client, "withdraw", {
    address: contracts.paymentEscrow,
    abi: paymentEscrowAbi,
    functionName: "withdraw",
    args: [],
  });
  return { hash: receipt.transactionHash, amount: result as bigint };
}

export async function readEscrowAccount(contracts: EscrowContracts, client: Address): Promise<EscrowAccount> {
  const at = { address: contracts.paymentEscrow, abi: paymentEscrowAbi } as const;
  const [balance, pending, withdrawalDelay] = await Promise.all([
    contracts.publicClient.readContract({ ...at, functionName: "balanceOf", args: [client] }),
    contracts.publicClient.readContract({ ...at, functionName: "pendingWithdrawal", args: [client] }),
    contracts.publicClient.readContract({ ...at, functionName: "withdrawalDelay" }),
  ]);
  return {
    client,
    balance,
    pending: { amount: pending.amount, withdrawableAt: pending.withdrawableAt },
    withdrawalDelay,
  };
}

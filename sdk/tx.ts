// One way to send a contract call from TypeScript: simulate first (a revert surfaces as the
// contract's own custom error, decoded, before any gas is spent), send, wait for the receipt.
// Each sdk module wraps the error in its own typed error (StakingCallError, …).
import type { PublicClient, TransactionReceipt, WalletClient, Transport, Chain, Account } from "viem";

export type SigningWallet = WalletClient<Transport, Chain, Account>;

/** Simulates, sends and awaits `request` from `wallet`; throws viem's error (or a revert) as is. */
export async function simulateAndSend(
  publicClient: PublicClient,
  wallet: SigningWallet,
  request: Parameters<PublicClient["simulateContract"]>[0],
): Promise<{ receipt: TransactionReceipt; result: unknown }> {
  const simulated = await publicClient.simulateContract({ ...request, account: wallet.account });
  const hash = await wallet.writeContract(simulated.request as Parameters<SigningWallet["writeContract"]>[0]);
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`transaction ${hash} reverted`);
  return { receipt, result: simulated.result };
}

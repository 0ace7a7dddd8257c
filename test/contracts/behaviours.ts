// Assertions shared by the contract suites: access control, pausing, share arithmetic.
import { expect } from "chai";
import type { BaseContract } from "ethers";

/** A contract whose ABI includes the custom errors under test. */
type WithInterface = Pick<BaseContract, "interface">;

/** `sent` reverts with OpenZeppelin's AccessControlUnauthorizedAccount(caller, role). */
export async function expectMissingRole(
  sent: Promise<unknown>,
  contract: WithInterface,
  caller: { address: string },
  role: string,
): Promise<void> {
  await expect(sent)
    .to.be.revertedWithCustomError(contract, "AccessControlUnauthorizedAccount")
    .withArgs(caller.address, role);
}

/** `sent` reverts with Pausable's EnforcedPause(). */
export async function expectPaused(sent: Promise<unknown>, contract: WithInterface): Promise<void> {
  await expect(sent).to.be.revertedWithCustomError(contract, "EnforcedPause");
}

// ------------------------------------------------------------------ NodeStaking share arithmetic
//
// A TypeScript copy of the contract's pool pricing (virtual shares 1e6, virtual stake 1, as in
// OpenZeppelin's ERC4626 offset), so tests can state exact expected amounts, rounding included.

export const VIRTUAL_SHARES = 10n ** 6n;
export const VIRTUAL_STAKE = 1n;

export type PoolLike = { stake: bigint; shares: bigint };

/** Shares minted for `amount` tokens (rounded down). */
export const toShares = (amount: bigint, pool: PoolLike): bigint =>
  (amount * (pool.shares + VIRTUAL_SHARES)) / (pool.stake + VIRTUAL_STAKE);

/** Shares burned for `amount` tokens (rounded up). */
export const toSharesCeil = (amount: bigint, pool: PoolLike): bigint => {
  const numerator = amount * (pool.shares + VIRTUAL_SHARES);
  const denominator = pool.stake + VIRTUAL_STAKE;
  return (numerator + denominator - 1n) / denominator;
};

/** Tokens `shares` are worth (rounded down). */
export const toStake = (shares: bigint, pool: PoolLike): bigint =>
  (shares * (pool.stake + VIRTUAL_STAKE)) / (pool.shares + VIRTUAL_SHARES);

/** A plain copy of a pool struct returned by the contract. */
export const pool = (p: PoolLike): PoolLike => ({
  stake: p.stake,
  shares: p.shares,
});

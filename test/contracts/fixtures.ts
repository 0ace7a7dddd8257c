// Shared fixtures for the contract suites: the staking layer deployed and wired as in
// production (the timelock holds DEFAULT_ADMIN_ROLE, the deployer keeps nothing), named
// signers funded and approved, and helpers to run governance calls through the timelock.
//
// Every suite imports `ethers` and `networkHelpers` from here, so all fixtures live on one
// network connection and `loadFixture` snapshots are shared between files. The connection
// comes from `network.getOrCreate()` (Hardhat 3.18 deprecates `network.connect()`).
import { expect } from "chai";
import type { BytesLike, ContractTransactionResponse, HDNodeWallet, Interface } from "ethers";
import { network } from "hardhat";

import type { InframeshTimelock, InframeshToken, NodeStaking } from "../../types/ethers-contracts/index.js";

export const connection = await network.getOrCreate();
export const { ethers, networkHelpers } = connection;
export const { loadFixture, time } = networkHelpers;

export type Signer = Awaited<ReturnType<typeof ethers.getSigners>>[number];
export type Account = Signer | HDNodeWallet;

// ------------------------------------------------------------------ constants

/** One whole token (18 decimals). */
export const UNIT = 10n ** 18n;
/** Converts whole tokens to base units. */
export const tokens = (whole: bigint | number): bigint => BigInt(whole) * UNIT;

export const DAY = 24n * 3600n;
export const TIMELOCK_DELAY = DAY;
export const INITIAL_SUPPLY = tokens(1_000_000_000);
/** What every operator, delegator and the rewarder receive from the deployer. */
export const FUNDING = tokens(1_000_000);
export const BURN_ADDRESS = "0x000000000000000000000000000000000000dEaD";

export type Parameters = {
  minSelfStake: bigint;
  unbondingPeriod: bigint;
  jailPeriod: bigint;
  maxSlashBps: number;
  burnBps: number;
};

export const PARAMETERS: Parameters = {
  minSelfStake: tokens(1_000),
  unbondingPeriod: 7n * DAY,
  jailPeriod: 3n * DAY,
  maxSlashBps: 1_000, // 10% of the slashable stake per incident
  burnBps: 5_000, // half burned, half redistributed
};

/** Active stake needed for tier 2 and tier 3 (tier 1 is "eligible"). */
export const TIER_THRESHOLDS: bigint[] = [tokens(10_000), tokens(100_000)];

// ------------------------------------------------------------------ governance

/** The timelock and the account allowed to propose through it. */
export type Governance = {
  timelock: InframeshTimelock;
  proposer: Signer;
  minDelay: bigint;
};

/** A call to be made by the timelock. */
export type TimelockCall = {
  target: string;
  data: BytesLike;
  value?: bigint;
  predecessor?: BytesLike;
  salt?: BytesLike;
};

let saltCounter = 0n;
/** A salt never used before in this process, so the same call can be scheduled twice. */
export function freshSalt(): string {
  saltCounter += 1n;
  return ethers.toBeHex(saltCounter, 32);
}

function normalise(call: TimelockCall): Required<TimelockCall> {
  return {
    target: call.target,
    data: call.data,
    value: call.value ?? 0n,
    predecessor: call.predecessor ?? ethers.ZeroHash,
    salt: call.salt ?? freshSalt(),
  };
}

/** Encodes a call to `contract.fn(...args)` for the timelock. */
export async function encodeCall(
  contract: { getAddress(): Promise<string>; interface: Interface },
  fn: string,
  args: readonly unknown[] = [],
): Promise<TimelockCall> {
  return {
    target: await contract.getAddress(),
    data: contract.interface.encodeFunctionData(fn, args),
  };
}

/**
 * Schedules `call` on the timelock with the minimum delay. Returns the fully specified call
 * (salt filled in) and its operation id, for `executeScheduled`.
 */
export async function scheduleCall(
  gov: Governance,
  call: TimelockCall,
): Promise<{ call: Required<TimelockCall>; id: string }> {
  const full = normalise(call);
  await (
    await gov.timelock
      .connect(gov.proposer)
      .schedule(full.target, full.value, full.data, full.predecessor, full.salt, gov.minDelay)
  ).wait();
  const id = await gov.timelock.hashOperation(full.target, full.value, full.data, full.predecessor, full.salt);
  return { call: full, id };
}

/** Executes an already scheduled call (anyone may execute: executors = [ZeroAddress]). */
export function executeScheduled(
  gov: Governance,
  call: Required<TimelockCall>,
  executor?: Account,
): Promise<ContractTransactionResponse> {
  const timelock = executor ? gov.timelock.connect(executor) : gov.timelock;
  return timelock.execute(call.target, call.value, call.data, call.predecessor, call.salt, { value: call.value });
}

/**
 * Runs `call` through governance: schedule, wait out the delay, execute. Resolves to the
 * execute transaction, so `expect(governanceCall(...)).to.emit(...)` and
 * `.to.be.revertedWithCustomError(target, ...)` (the timelock bubbles the target's revert) work.
 */
export async function governanceCall(gov: Governance, call: TimelockCall): Promise<ContractTransactionResponse> {
  const { call: full } = await scheduleCall(gov, call);
  await time.increase(gov.minDelay);
  return executeScheduled(gov, full);
}

/** Deploys a timelock with `proposer` as sole proposer, open execution and no admin. */
export async function deployTimelock(proposer: Signer, minDelay: bigint = TIMELOCK_DELAY): Promise<Governance> {
  const timelock = await ethers.deployContract("InframeshTimelock", [
    minDelay,
    [proposer.address],
    [ethers.ZeroAddress],
    ethers.ZeroAddress,
  ]);
  await timelock.waitForDeployment();
  return { timelock, proposer, minDelay };
}

// ------------------------------------------------------------------ staking layer

export type StakingFixture = {
  token: InframeshToken;
  staking: NodeStaking;
  stakingAddress: string;
  gov: Governance;
  deployer: Signer;
  governor: Signer;
  slasher: Signer;
  rewarder: Signer;
  pauser: Signer;
  recipient: Signer;
  /** Operators: `operators[i]`'s address is its node id. None is registered yet. */
  operators: [Signer, Signer, Signer];
  delegators: [Signer, Signer, Signer];
  outsider: Signer;
  roles: { admin: string; slasher: string; rewarder: string; pauser: string };
};

/**
 * Token, timelock and NodeStaking wired as in production:
 * a temporary deployer admin grants SLASHER/REWARDER/PAUSER to named signers, hands
 * DEFAULT_ADMIN_ROLE to the timelock and renounces its own. Operators, delegators and the
 * rewarder hold `FUNDING` tokens each with an unlimited approval to the staking contract.
 */
export async function deployStakingFixture(): Promise<StakingFixture> {
  const signers = await ethers.getSigners();
  const at = (i: number): Signer => {
    const signer = signers[i];
    if (!signer) throw new Error(`no signer #${i}`);
    return signer;
  };
  const [deployer, governor, slasher, rewarder, pauser, recipient] = [at(0), at(1), at(2), at(3), at(4), at(5)];
  const operators: [Signer, Signer, Signer] = [at(6), at(7), at(8)];
  const delegators: [Signer, Signer, Signer] = [at(9), at(10), at(11)];
  const outsider = at(12);

  const token = await ethers.deployContract("InframeshToken", [deployer.address, INITIAL_SUPPLY]);
  const gov = await deployTimelock(governor);
  const staking = await ethers.deployContract("NodeStaking", [
    await token.getAddress(),
    deployer.address,
    PARAMETERS,
    TIER_THRESHOLDS,
    recipient.address,
  ]);
  const stakingAddress = await staking.getAddress();

  const roles = {
    admin: await staking.DEFAULT_ADMIN_ROLE(),
    slasher: await staking.SLASHER_ROLE(),
    rewarder: await staking.REWARDER_ROLE(),
    pauser: await staking.PAUSER_ROLE(),
  };
  await (await staking.grantRole(roles.slasher, slasher.address)).wait();
  await (await staking.grantRole(roles.rewarder, rewarder.address)).wait();
  await (await staking.grantRole(roles.pauser, pauser.address)).wait();
  await (await staking.grantRole(roles.admin, await gov.timelock.getAddress())).wait();
  await (await staking.renounceRole(roles.admin, deployer.address)).wait();

  for (const account of [...operators, ...delegators, rewarder]) {
    await (await token.transfer(account.address, FUNDING)).wait();
    await (await token.connect(account).approve(stakingAddress, ethers.MaxUint256)).wait();
  }

  return {
    token,
    staking,
    stakingAddress,
    gov,
    deployer,
    governor,
    slasher,
    rewarder,
    pauser,
    recipient,
    operators,
    delegators,
    outsider,
    roles,
  };
}

/** Registers `operator`'s node and self-stakes `selfStake` on it (nothing when 0). */
export async function registerAndStake(
  fx: StakingFixture,
  operator: Signer,
  selfStake: bigint = PARAMETERS.minSelfStake,
  commissionBps = 500,
): Promise<void> {
  await (
    await fx.staking
      .connect(operator)
      .registerNode(
        `https://${operator.address.slice(2, 10).toLowerCase()}.node.example/infer`,
        ethers.id(operator.address),
        commissionBps,
      )
  ).wait();
  if (selfStake > 0n) await (await fx.staking.connect(operator).stake(operator.address, selfStake)).wait();
}

/** Calls a non-view function that returns a value and gives back the value it returned. */
export async function callAndReturn<T>(
  staticCall: () => Promise<T>,
  send: () => Promise<ContractTransactionResponse>,
): Promise<T> {
  const value = await staticCall();
  await (await send()).wait();
  return value;
}

// ------------------------------------------------------------------ invariants

/**
 * Token conservation: the staking contract's balance equals the active and unbonding stake of
 * every node plus the slashed tokens not yet released. `nodes` must list every node that
 * ever held stake in this fixture.
 */
export async function expectTokensConserved(
  fx: StakingFixture,
  nodes: readonly { address: string }[] = fx.operators,
): Promise<void> {
  let owed = await fx.staking.earningsReserve();
  for (const node of nodes) {
    owed += (await fx.staking.activePool(node.address)).stake;
    owed += (await fx.staking.unbondingPool(node.address)).stake;
    owed += (await fx.staking.nodeInfo(node.address)).commissionOwed;
  }
  const [redistribution, burn] = await fx.staking.slashedOwed();
  owed += redistribution + burn;
  expect(await fx.token.balanceOf(fx.stakingAddress)).to.equal(
    owed,
    "staking balance != pools + slashed owed + earnings reserve + commission owed",
  );
}

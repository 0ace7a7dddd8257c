import { expect } from "chai";
import type { ContractTransactionResponse } from "ethers";

import {
  BURN_ADDRESS,
  DAY,
  FUNDING,
  PARAMETERS,
  TIER_THRESHOLDS,
  type Parameters,
  type Signer,
  type StakingFixture,
  deployStakingFixture,
  encodeCall,
  ethers,
  expectTokensConserved,
  governanceCall,
  loadFixture,
  registerAndStake,
  time,
  tokens,
} from "./fixtures.ts";
import { expectMissingRole, expectPaused, pool, toShares, toSharesCeil, toStake } from "./behaviours.ts";

// ------------------------------------------------------------------ fixtures

/** Node A registered with exactly the minimum self-stake; node B registered with no stake; C unregistered. */
async function nodesFixture(): Promise<StakingFixture> {
  const fx = await deployStakingFixture();
  await registerAndStake(fx, fx.operators[0], PARAMETERS.minSelfStake);
  await registerAndStake(fx, fx.operators[1], 0n);
  return fx;
}

/** nodesFixture plus delegations on node A: alice 3,000 and bob 1,000 (active pool 5,000). */
async function delegatedFixture(): Promise<StakingFixture> {
  const fx = await nodesFixture();
  const node = fx.operators[0].address;
  await (await fx.staking.connect(fx.delegators[0]).stake(node, tokens(3_000))).wait();
  await (await fx.staking.connect(fx.delegators[1]).stake(node, tokens(1_000))).wait();
  return fx;
}

/** delegatedFixture plus unbonding on node A: alice 1,000 (lock 0), bob 500 (lock 0). */
async function unbondingFixture(): Promise<StakingFixture> {
  const fx = await delegatedFixture();
  const node = fx.operators[0].address;
  await (await fx.staking.connect(fx.delegators[0]).unbond(node, tokens(1_000))).wait();
  await (await fx.staking.connect(fx.delegators[1]).unbond(node, tokens(500))).wait();
  return fx;
}

// ------------------------------------------------------------------ helpers

/** Pins the next block's timestamp a little ahead and returns it. */
async function nextTimestamp(ahead = 10): Promise<bigint> {
  const t = BigInt(await time.latest()) + BigInt(ahead);
  await time.setNextBlockTimestamp(t);
  return t;
}

async function timestampOf(sent: Promise<ContractTransactionResponse>): Promise<bigint> {
  const receipt = await (await sent).wait();
  if (!receipt) throw new Error("no receipt");
  const block = await ethers.provider.getBlock(receipt.blockNumber);
  if (!block) throw new Error("no block");
  return BigInt(block.timestamp);
}

function expectApprox(actual: bigint, expected: bigint, tolerance: bigint, what = "value"): void {
  const diff = actual > expected ? actual - expected : expected - actual;
  expect(diff <= tolerance, `${what}: ${actual} not within ${tolerance} of ${expected}`).to.equal(true);
}

const setParameters = (fx: StakingFixture, p: Parameters) =>
  encodeCall(fx.staking, "setParameters", [p]).then((call) => governanceCall(fx.gov, call));
const setThresholds = (fx: StakingFixture, thresholds: bigint[]) =>
  encodeCall(fx.staking, "setTierThresholds", [thresholds]).then((call) => governanceCall(fx.gov, call));

async function signPermit(
  fx: StakingFixture,
  owner: Signer,
  value: bigint,
  deadline: bigint,
): Promise<{ v: number; r: string; s: string }> {
  const { chainId } = await ethers.provider.getNetwork();
  const signature = await owner.signTypedData(
    {
      name: await fx.token.name(),
      version: "1",
      chainId,
      verifyingContract: await fx.token.getAddress(),
    },
    {
      Permit: [
        { name: "owner", type: "address" },
        { name: "spender", type: "address" },
        { name: "value", type: "uint256" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    },
    {
      owner: owner.address,
      spender: fx.stakingAddress,
      value,
      nonce: await fx.token.nonces(owner.address),
      deadline,
    },
  );
  const { v, r, s } = ethers.Signature.from(signature);
  return { v, r, s };
}

// ------------------------------------------------------------------ shared behaviours

type Call = (fx: StakingFixture) => Promise<unknown>;
type CallOn = (fx: StakingFixture, node: string) => Promise<unknown>;
type CallBy = (fx: StakingFixture, caller: Signer) => Promise<unknown>;

/** Each call, given a node that was never registered, reverts with UnknownNode(node). */
function itRevertsForUnknownNode(fixture: () => Promise<StakingFixture>, calls: Record<string, CallOn>): void {
  for (const [name, call] of Object.entries(calls)) {
    it(`${name} reverts with UnknownNode for an unregistered node`, async function () {
      const fx = await loadFixture(fixture);
      const unknown = fx.operators[2].address;
      await expect(call(fx, unknown)).to.be.revertedWithCustomError(fx.staking, "UnknownNode").withArgs(unknown);
    });
  }
}

/** Each call reverts with ZeroAmount when given an amount of 0. */
function itRevertsOnZeroAmount(fixture: () => Promise<StakingFixture>, calls: Record<string, Call>): void {
  for (const [name, call] of Object.entries(calls)) {
    it(`${name} reverts with ZeroAmount for 0 tokens`, async function () {
      const fx = await loadFixture(fixture);
      await expect(call(fx)).to.be.revertedWithCustomError(fx.staking, "ZeroAmount");
    });
  }
}

/**
 * Each call reverts with AccessControlUnauthorizedAccount(caller, role) for callers without
 * `role`: an outsider, the deployer (who renounced everything) and the holders of the other roles.
 */
function itRequiresRole(
  role: keyof StakingFixture["roles"],
  fixture: () => Promise<StakingFixture>,
  calls: Record<string, CallBy>,
): void {
  for (const [name, call] of Object.entries(calls)) {
    it(`${name} requires ${role === "admin" ? "DEFAULT_ADMIN_ROLE (the timelock)" : `the ${role} role`}`, async function () {
      const fx = await loadFixture(fixture);
      const holders: Record<keyof StakingFixture["roles"], Signer | undefined> = {
        admin: undefined,
        slasher: fx.slasher,
        rewarder: fx.rewarder,
        pauser: fx.pauser,
      };
      const callers = [fx.outsider, fx.deployer, fx.governor, fx.operators[0], fx.delegators[0]];
      for (const [other, holder] of Object.entries(holders)) if (other !== role && holder) callers.push(holder);
      for (const caller of callers) {
        await expectMissingRole(call(fx, caller), fx.staking, caller, fx.roles[role]);
      }
    });
  }
}

/** With the contract paused, each call reverts with EnforcedPause. */
function itIsBlockedWhilePaused(fixture: () => Promise<StakingFixture>, calls: Record<string, Call>): void {
  for (const [name, call] of Object.entries(calls)) {
    it(`${name} is blocked while paused`, async function () {
      const fx = await loadFixture(fixture);
      await (await fx.staking.connect(fx.pauser).pause()).wait();
      await expectPaused(call(fx), fx.staking);
    });
  }
}

// ------------------------------------------------------------------ tests

describe("NodeStaking", function () {
  describe("deployment", function () {
    it("stores the token, parameters, tier thresholds and redistribution recipient", async function () {
      const fx = await loadFixture(deployStakingFixture);
      expect(await fx.staking.STAKE_TOKEN()).to.equal(await fx.token.getAddress());
      const p = await fx.staking.parameters();
      expect(p.minSelfStake).to.equal(PARAMETERS.minSelfStake);
      expect(p.unbondingPeriod).to.equal(PARAMETERS.unbondingPeriod);
      expect(p.jailPeriod).to.equal(PARAMETERS.jailPeriod);
      expect(p.maxSlashBps).to.equal(PARAMETERS.maxSlashBps);
      expect(p.burnBps).to.equal(PARAMETERS.burnBps);
      expect(await fx.staking.tierThresholds()).to.deep.equal(TIER_THRESHOLDS);
      expect(await fx.staking.redistributionRecipient()).to.equal(fx.recipient.address);
      expect(await fx.staking.paused()).to.equal(false);
      expect(await fx.staking.slashedOwed()).to.deep.equal([0n, 0n]);
    });

    it("exposes its constants", async function () {
      const fx = await loadFixture(deployStakingFixture);
      expect(await fx.staking.MAX_BPS()).to.equal(10_000n);
      expect(await fx.staking.MAX_UNBONDING_PERIOD()).to.equal(365n * 24n * 3600n);
      expect(await fx.staking.MAX_JAIL_PERIOD()).to.equal(365n * 24n * 3600n);
      expect(await fx.staking.MAX_TIERS()).to.equal(16n);
      expect(await fx.staking.BURN_ADDRESS()).to.equal(BURN_ADDRESS);
      expect(fx.roles.slasher).to.equal(ethers.id("SLASHER_ROLE"));
      expect(fx.roles.rewarder).to.equal(ethers.id("REWARDER_ROLE"));
      expect(fx.roles.pauser).to.equal(ethers.id("PAUSER_ROLE"));
    });

    it("grants the protocol roles to the named signers", async function () {
      const fx = await loadFixture(deployStakingFixture);
      expect(await fx.staking.hasRole(fx.roles.slasher, fx.slasher.address)).to.equal(true);
      expect(await fx.staking.hasRole(fx.roles.rewarder, fx.rewarder.address)).to.equal(true);
      expect(await fx.staking.hasRole(fx.roles.pauser, fx.pauser.address)).to.equal(true);
      expect(await fx.staking.hasRole(fx.roles.admin, await fx.gov.timelock.getAddress())).to.equal(true);
    });
  });

  // ---------------------------------------------------------------- operator

  describe("registerNode", function () {
    it("registers the caller's node with its endpoint, hardware hash and commission", async function () {
      const fx = await loadFixture(deployStakingFixture);
      const [op] = fx.operators;
      const hw = ethers.id("8x H100, 2 TB RAM");
      await expect(fx.staking.connect(op).registerNode("https://a.example/infer", hw, 750))
        .to.emit(fx.staking, "NodeRegistered")
        .withArgs(op.address, "https://a.example/infer", hw, 750);
      const info = await fx.staking.nodeInfo(op.address);
      expect(info.registered).to.equal(true);
      expect(info.commissionBps).to.equal(750n);
      expect(info.jailedUntil).to.equal(0n);
      expect(info.hardwareSpecHash).to.equal(hw);
      expect(await fx.staking.endpointOf(op.address)).to.equal("https://a.example/infer");
      // Registered but without self-stake: not eligible yet.
      expect(await fx.staking.isEligible(op.address)).to.equal(false);
    });

    it("accepts a commission of exactly 100%", async function () {
      const fx = await loadFixture(deployStakingFixture);
      await expect(fx.staking.connect(fx.operators[0]).registerNode("e", ethers.ZeroHash, 10_000)).to.emit(
        fx.staking,
        "NodeRegistered",
      );
    });

    it("reverts with CommissionTooHigh above 100%", async function () {
      const fx = await loadFixture(deployStakingFixture);
      await expect(fx.staking.connect(fx.operators[0]).registerNode("e", ethers.ZeroHash, 10_001))
        .to.be.revertedWithCustomError(fx.staking, "CommissionTooHigh")
        .withArgs(10_001, 10_000);
    });

    it("reverts with NodeAlreadyRegistered on a second registration", async function () {
      const fx = await loadFixture(nodesFixture);
      const [op] = fx.operators;
      await expect(fx.staking.connect(op).registerNode("again", ethers.ZeroHash, 0))
        .to.be.revertedWithCustomError(fx.staking, "NodeAlreadyRegistered")
        .withArgs(op.address);
    });

    it("returns empty records for an unregistered node", async function () {
      const fx = await loadFixture(deployStakingFixture);
      const info = await fx.staking.nodeInfo(fx.operators[2].address);
      expect(info.registered).to.equal(false);
      expect(await fx.staking.endpointOf(fx.operators[2].address)).to.equal("");
    });
  });

  describe("updateNode", function () {
    it("updates the endpoint, hardware hash and commission", async function () {
      const fx = await loadFixture(nodesFixture);
      const [op] = fx.operators;
      const hw = ethers.id("new hardware");
      await expect(fx.staking.connect(op).updateNode("https://moved.example", hw, 1_234))
        .to.emit(fx.staking, "NodeUpdated")
        .withArgs(op.address, "https://moved.example", hw, 1_234);
      const info = await fx.staking.nodeInfo(op.address);
      expect(info.registered).to.equal(true);
      expect(info.commissionBps).to.equal(1_234n);
      expect(info.hardwareSpecHash).to.equal(hw);
      expect(await fx.staking.endpointOf(op.address)).to.equal("https://moved.example");
      // Stake is untouched.
      expect(await fx.staking.selfStakeOf(op.address)).to.equal(PARAMETERS.minSelfStake);
    });

    it("reverts with CommissionTooHigh above 100%", async function () {
      const fx = await loadFixture(nodesFixture);
      await expect(fx.staking.connect(fx.operators[0]).updateNode("e", ethers.ZeroHash, 65_535))
        .to.be.revertedWithCustomError(fx.staking, "CommissionTooHigh")
        .withArgs(65_535, 10_000);
    });

    it("reverts with UnknownNode(caller) for a caller without a node", async function () {
      const fx = await loadFixture(nodesFixture);
      await expect(fx.staking.connect(fx.outsider).updateNode("e", ethers.ZeroHash, 0))
        .to.be.revertedWithCustomError(fx.staking, "UnknownNode")
        .withArgs(fx.outsider.address);
    });

    it("still works while paused", async function () {
      const fx = await loadFixture(nodesFixture);
      await (await fx.staking.connect(fx.pauser).pause()).wait();
      await expect(fx.staking.connect(fx.operators[0]).updateNode("e", ethers.ZeroHash, 0)).to.emit(
        fx.staking,
        "NodeUpdated",
      );
    });
  });

  // ---------------------------------------------------------------- stake

  itRevertsForUnknownNode(nodesFixture, {
    stake: (fx, node) => fx.staking.connect(fx.delegators[0]).stake(node, tokens(1)),
    "stake (by the unknown node itself)": (fx, node) =>
      fx.staking.connect(fx.operators[2]).stake(node, PARAMETERS.minSelfStake),
    unbond: (fx, node) => fx.staking.connect(fx.delegators[0]).unbond(node, tokens(1)),
    addRewards: (fx, node) => fx.staking.connect(fx.rewarder).addRewards(node, tokens(1)),
    slash: (fx, node) => fx.staking.connect(fx.slasher).slash(node, tokens(1), ethers.id("unknown")),
    "unjail (through governance)": (fx, node) =>
      encodeCall(fx.staking, "unjail", [node]).then((call) => governanceCall(fx.gov, call)),
  });

  itRevertsOnZeroAmount(nodesFixture, {
    "stake (self)": (fx) => fx.staking.connect(fx.operators[0]).stake(fx.operators[0].address, 0n),
    "stake (delegation)": (fx) => fx.staking.connect(fx.delegators[0]).stake(fx.operators[0].address, 0n),
    stakeWithPermit: (fx) =>
      fx.staking
        .connect(fx.delegators[0])
        .stakeWithPermit(fx.operators[0].address, 0n, 0n, 0, ethers.ZeroHash, ethers.ZeroHash),
    unbond: (fx) => fx.staking.connect(fx.operators[0]).unbond(fx.operators[0].address, 0n),
    addRewards: (fx) => fx.staking.connect(fx.rewarder).addRewards(fx.operators[0].address, 0n),
    slash: (fx) => fx.staking.connect(fx.slasher).slash(fx.operators[0].address, 0n, ethers.id("zero")),
  });

  itIsBlockedWhilePaused(unbondingFixture, {
    registerNode: (fx) => fx.staking.connect(fx.operators[2]).registerNode("e", ethers.ZeroHash, 0),
    "stake (self)": (fx) => fx.staking.connect(fx.operators[0]).stake(fx.operators[0].address, tokens(1)),
    "stake (delegation)": (fx) => fx.staking.connect(fx.delegators[0]).stake(fx.operators[0].address, tokens(1)),
    stakeWithPermit: (fx) =>
      fx.staking
        .connect(fx.delegators[0])
        .stakeWithPermit(fx.operators[0].address, tokens(1), 0n, 0, ethers.ZeroHash, ethers.ZeroHash),
    // alice's lock 0 was made before the pause.
    rebond: (fx) => fx.staking.connect(fx.delegators[0]).rebond(fx.operators[0].address, 0n),
  });

  describe("stake: self-stake", function () {
    it("reverts with SelfStakeBelowMinimum when the first self-stake is below the minimum", async function () {
      const fx = await loadFixture(nodesFixture);
      const op = fx.operators[1];
      const amount = PARAMETERS.minSelfStake - 1n;
      await expect(fx.staking.connect(op).stake(op.address, amount))
        .to.be.revertedWithCustomError(fx.staking, "SelfStakeBelowMinimum")
        .withArgs(amount, PARAMETERS.minSelfStake);
    });

    it("accepts exactly the minimum as first self-stake and mints shares at the initial price", async function () {
      const fx = await loadFixture(nodesFixture);
      const op = fx.operators[1];
      const amount = PARAMETERS.minSelfStake;
      const expectedShares = toShares(amount, { stake: 0n, shares: 0n });
      expect(await fx.staking.connect(op).stake.staticCall(op.address, amount)).to.equal(expectedShares);
      const sent = fx.staking.connect(op).stake(op.address, amount);
      await expect(sent).to.emit(fx.staking, "Staked").withArgs(op.address, op.address, amount, expectedShares);
      await expect(sent).to.changeTokenBalances(ethers, fx.token, [op, fx.staking], [-amount, amount]);
      expect(await fx.staking.selfStakeOf(op.address)).to.equal(amount);
      expect(await fx.staking.stakeOf(op.address, op.address)).to.equal(amount);
      expect(await fx.staking.sharesOf(op.address, op.address)).to.equal(expectedShares);
      expect(pool(await fx.staking.activePool(op.address))).to.deep.equal({
        stake: amount,
        shares: expectedShares,
      });
      expect(await fx.staking.isEligible(op.address)).to.equal(true);
      await expectTokensConserved(fx);
    });

    it("accepts any top-up once the minimum is met", async function () {
      const fx = await loadFixture(nodesFixture);
      const [op] = fx.operators;
      const before = pool(await fx.staking.activePool(op.address));
      const expectedShares = toShares(1n, before);
      await expect(fx.staking.connect(op).stake(op.address, 1n))
        .to.emit(fx.staking, "Staked")
        .withArgs(op.address, op.address, 1n, expectedShares);
      expect(await fx.staking.selfStakeOf(op.address)).to.equal(PARAMETERS.minSelfStake + 1n);
      await expectTokensConserved(fx);
    });

    it("accepts a top-up of any size after a slash left the self-stake below the minimum", async function () {
      const fx = await loadFixture(nodesFixture);
      const [op] = fx.operators;
      await (await fx.staking.connect(fx.slasher).slash(op.address, tokens(100), ethers.id("e1"))).wait();
      await time.increase(PARAMETERS.jailPeriod);
      // 900 self-stake now; a 50 top-up is accepted but leaves the node ineligible at 950.
      await expect(fx.staking.connect(op).stake(op.address, tokens(50))).to.emit(fx.staking, "Staked");
      expect(await fx.staking.selfStakeOf(op.address)).to.be.lessThan(PARAMETERS.minSelfStake);
      expect(await fx.staking.isEligible(op.address)).to.equal(false);
      expect(await fx.staking.tierOf(op.address)).to.equal(0n);
      // Topping up by 50 more restores the minimum and eligibility.
      await expect(fx.staking.connect(op).stake(op.address, tokens(50))).to.emit(fx.staking, "Staked");
      expect(await fx.staking.selfStakeOf(op.address)).to.equal(PARAMETERS.minSelfStake);
      expect(await fx.staking.isEligible(op.address)).to.equal(true);
      await expectTokensConserved(fx);
    });

    it("reverts with AmountTooSmall when the amount buys no share", async function () {
      const fx = await loadFixture(nodesFixture);
      const op = fx.operators[1];
      // A 1-wei pool (minimum lowered by governance) inflated by a reward: one share is worth > 1 wei.
      await setParameters(fx, { ...PARAMETERS, minSelfStake: 1n });
      await (await fx.staking.connect(op).stake(op.address, 1n)).wait();
      await (await fx.staking.connect(fx.rewarder).addRewards(op.address, 10n ** 7n)).wait();
      const active = pool(await fx.staking.activePool(op.address));
      expect(toShares(1n, active)).to.equal(0n);
      await expect(fx.staking.connect(op).stake(op.address, 1n))
        .to.be.revertedWithCustomError(fx.staking, "AmountTooSmall")
        .withArgs(1n);
      await expect(fx.staking.connect(fx.delegators[0]).stake(op.address, 1n))
        .to.be.revertedWithCustomError(fx.staking, "AmountTooSmall")
        .withArgs(1n);
      // Enough wei for one share goes through.
      const oneShare = toStake(1n, active) + 1n;
      expect(toShares(oneShare, active)).to.equal(1n);
      await expect(fx.staking.connect(fx.delegators[0]).stake(op.address, oneShare))
        .to.emit(fx.staking, "Staked")
        .withArgs(op.address, fx.delegators[0].address, oneShare, 1n);
    });
  });

  describe("stake: delegation", function () {
    it("delegates on an eligible node and mints shares at the pool price", async function () {
      const fx = await loadFixture(nodesFixture);
      const [op] = fx.operators;
      const [alice] = fx.delegators;
      const before = pool(await fx.staking.activePool(op.address));
      const amount = tokens(3_000);
      const expectedShares = toShares(amount, before);
      const sent = fx.staking.connect(alice).stake(op.address, amount);
      await expect(sent).to.emit(fx.staking, "Staked").withArgs(op.address, alice.address, amount, expectedShares);
      await expect(sent).to.changeTokenBalances(ethers, fx.token, [alice, fx.staking], [-amount, amount]);
      expect(await fx.staking.sharesOf(op.address, alice.address)).to.equal(expectedShares);
      expectApprox(await fx.staking.stakeOf(op.address, alice.address), amount, 1n, "alice's stake");
      // The operator's self-stake is not diluted.
      expectApprox(await fx.staking.selfStakeOf(op.address), PARAMETERS.minSelfStake, 1n, "self-stake");
      expect((await fx.staking.activePool(op.address)).stake).to.equal(before.stake + amount);
      await expectTokensConserved(fx);
    });

    it("tops up an existing delegation", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [op] = fx.operators;
      const [alice] = fx.delegators;
      const shares = await fx.staking.sharesOf(op.address, alice.address);
      const before = pool(await fx.staking.activePool(op.address));
      const added = toShares(tokens(10), before);
      await (await fx.staking.connect(alice).stake(op.address, tokens(10))).wait();
      expect(await fx.staking.sharesOf(op.address, alice.address)).to.equal(shares + added);
    });

    it("accepts delegation to a registered node whose operator has not staked; the node stays ineligible", async function () {
      const fx = await loadFixture(nodesFixture);
      const node = fx.operators[1].address;
      await expect(fx.staking.connect(fx.delegators[0]).stake(node, tokens(1)))
        .to.emit(fx.staking, "Staked")
        .withArgs(node, fx.delegators[0].address, tokens(1), anyShares);
      expect(await fx.staking.isEligible(node)).to.equal(false);
      expect(await fx.staking.tierOf(node)).to.equal(0n);
      await expectTokensConserved(fx);
    });

    it("accepts delegation after the operator unbonds below the minimum; eligibility follows the self-stake", async function () {
      const fx = await loadFixture(nodesFixture);
      const [op] = fx.operators;
      await (await fx.staking.connect(op).unbond(op.address, tokens(1))).wait();
      expect(await fx.staking.isEligible(op.address)).to.equal(false);
      await expect(fx.staking.connect(fx.delegators[0]).stake(op.address, tokens(1))).to.emit(fx.staking, "Staked");
      expect(await fx.staking.isEligible(op.address)).to.equal(false);
    });

    it("accepts delegation to a jailed node, which is ineligible until the jail expires", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [op] = fx.operators;
      const slashedAt = await timestampOf(fx.staking.connect(fx.slasher).slash(op.address, tokens(10), ethers.id("e")));
      const jailedUntil = slashedAt + PARAMETERS.jailPeriod;
      await (await fx.staking.connect(op).stake(op.address, tokens(10))).wait();
      await expect(fx.staking.connect(fx.delegators[2]).stake(op.address, tokens(1))).to.emit(fx.staking, "Staked");
      expect(await fx.staking.isJailed(op.address)).to.equal(true);
      expect(await fx.staking.isEligible(op.address)).to.equal(false);
      await time.increaseTo(jailedUntil);
      expect(await fx.staking.isEligible(op.address)).to.equal(true);
    });
  });

  describe("stakeWithPermit", function () {
    async function noAllowanceFixture(): Promise<StakingFixture> {
      const fx = await nodesFixture();
      await (await fx.token.connect(fx.delegators[0]).approve(fx.stakingAddress, 0n)).wait();
      return fx;
    }

    it("stakes with a real EIP-2612 signature and no prior approval", async function () {
      const fx = await loadFixture(noAllowanceFixture);
      const [op] = fx.operators;
      const [alice] = fx.delegators;
      const amount = tokens(500);
      const deadline = BigInt(await time.latest()) + 3600n;
      const { v, r, s } = await signPermit(fx, alice, amount, deadline);
      const expectedShares = toShares(amount, pool(await fx.staking.activePool(op.address)));
      const sent = fx.staking.connect(alice).stakeWithPermit(op.address, amount, deadline, v, r, s);
      await expect(sent).to.emit(fx.staking, "Staked").withArgs(op.address, alice.address, amount, expectedShares);
      await expect(sent).to.changeTokenBalances(ethers, fx.token, [alice, fx.staking], [-amount, amount]);
      expect(await fx.token.nonces(alice.address)).to.equal(1n);
      expect(await fx.token.allowance(alice.address, fx.stakingAddress)).to.equal(0n);
      await expectTokensConserved(fx);
    });

    it("works for an operator's own first self-stake", async function () {
      const fx = await loadFixture(nodesFixture);
      const op = fx.operators[1];
      await (await fx.token.connect(op).approve(fx.stakingAddress, 0n)).wait();
      const deadline = BigInt(await time.latest()) + 3600n;
      const { v, r, s } = await signPermit(fx, op, PARAMETERS.minSelfStake, deadline);
      await (
        await fx.staking.connect(op).stakeWithPermit(op.address, PARAMETERS.minSelfStake, deadline, v, r, s)
      ).wait();
      expect(await fx.staking.selfStakeOf(op.address)).to.equal(PARAMETERS.minSelfStake);
    });

    it("still stakes when a front-runner already submitted the permit", async function () {
      const fx = await loadFixture(noAllowanceFixture);
      const [op] = fx.operators;
      const [alice] = fx.delegators;
      const amount = tokens(500);
      const deadline = BigInt(await time.latest()) + 3600n;
      const { v, r, s } = await signPermit(fx, alice, amount, deadline);
      // Someone copies the signature from the mempool and spends it first.
      await (
        await fx.token.connect(fx.outsider).permit(alice.address, fx.stakingAddress, amount, deadline, v, r, s)
      ).wait();
      expect(await fx.token.allowance(alice.address, fx.stakingAddress)).to.equal(amount);
      await expect(fx.staking.connect(alice).stakeWithPermit(op.address, amount, deadline, v, r, s))
        .to.emit(fx.staking, "Staked")
        .withArgs(op.address, alice.address, amount, anyShares);
      expect(await fx.token.allowance(alice.address, fx.stakingAddress)).to.equal(0n);
    });

    it("falls back to the existing allowance when the permit is invalid", async function () {
      const fx = await loadFixture(nodesFixture); // alice has an unlimited approval
      await expect(
        fx.staking
          .connect(fx.delegators[0])
          .stakeWithPermit(fx.operators[0].address, tokens(1), 0n, 27, ethers.ZeroHash, ethers.ZeroHash),
      ).to.emit(fx.staking, "Staked");
    });

    it("reverts with the token's ERC20InsufficientAllowance when the permit fails and there is no allowance", async function () {
      const fx = await loadFixture(noAllowanceFixture);
      const [alice] = fx.delegators;
      const amount = tokens(500);
      // Expired deadline.
      const expired = BigInt(await time.latest()) - 1n;
      const sig = await signPermit(fx, alice, amount, expired);
      await expect(
        fx.staking.connect(alice).stakeWithPermit(fx.operators[0].address, amount, expired, sig.v, sig.r, sig.s),
      )
        .to.be.revertedWithCustomError(fx.token, "ERC20InsufficientAllowance")
        .withArgs(fx.stakingAddress, 0n, amount);
      // Signed by someone else.
      const deadline = BigInt(await time.latest()) + 3600n;
      const forged = await signPermit(fx, fx.delegators[1], amount, deadline);
      await expect(
        fx.staking
          .connect(alice)
          .stakeWithPermit(fx.operators[0].address, amount, deadline, forged.v, forged.r, forged.s),
      )
        .to.be.revertedWithCustomError(fx.token, "ERC20InsufficientAllowance")
        .withArgs(fx.stakingAddress, 0n, amount);
    });

    it("applies the same staking rules as stake", async function () {
      const fx = await loadFixture(noAllowanceFixture);
      const deadline = BigInt(await time.latest()) + 3600n;
      const sig = await signPermit(fx, fx.delegators[0], tokens(1), deadline);
      await expect(
        fx.staking
          .connect(fx.delegators[0])
          .stakeWithPermit(fx.operators[0].address, 0n, deadline, sig.v, sig.r, sig.s),
      ).to.be.revertedWithCustomError(fx.staking, "ZeroAmount");
      await expect(
        fx.staking
          .connect(fx.delegators[0])
          .stakeWithPermit(fx.operators[2].address, tokens(1), deadline, sig.v, sig.r, sig.s),
      )
        .to.be.revertedWithCustomError(fx.staking, "UnknownNode")
        .withArgs(fx.operators[2].address);
    });
  });

  // ---------------------------------------------------------------- unbond

  describe("unbond", function () {
    it("moves part of the stake into the unbonding pool as lock 0", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [op] = fx.operators;
      const [alice] = fx.delegators;
      const amount = tokens(1_200);
      const active = pool(await fx.staking.activePool(op.address));
      const unbonding = pool(await fx.staking.unbondingPool(op.address));
      const sharesBefore = await fx.staking.sharesOf(op.address, alice.address);
      const stakeBefore = await fx.staking.stakeOf(op.address, alice.address);
      const activeShares = toSharesCeil(amount, active);
      const unbondingShares = toShares(amount, unbonding);
      const t = await nextTimestamp();
      const withdrawableAt = t + PARAMETERS.unbondingPeriod;

      await expect(fx.staking.connect(alice).unbond(op.address, amount))
        .to.emit(fx.staking, "Unbonded")
        .withArgs(op.address, alice.address, 0n, amount, activeShares, unbondingShares, withdrawableAt);

      expect(await fx.staking.sharesOf(op.address, alice.address)).to.equal(sharesBefore - activeShares);
      expectApprox(await fx.staking.stakeOf(op.address, alice.address), stakeBefore - amount, 1n, "remaining stake");
      expect(pool(await fx.staking.activePool(op.address))).to.deep.equal({
        stake: active.stake - amount,
        shares: active.shares - activeShares,
      });
      expect(pool(await fx.staking.unbondingPool(op.address))).to.deep.equal({
        stake: amount,
        shares: unbondingShares,
      });
      const lock = await fx.staking.unbondingLock(op.address, alice.address, 0n);
      expect(lock.shares).to.equal(unbondingShares);
      expect(lock.withdrawableAt).to.equal(withdrawableAt);
      expect(await fx.staking.lockValue(op.address, alice.address, 0n)).to.equal(amount);
      expect(await fx.staking.lockCount(op.address, alice.address)).to.equal(1n);
      // Unbonding stake stays slashable.
      expect(await fx.staking.slashableStake(op.address)).to.equal(tokens(5_000));
      await expectTokensConserved(fx);
    });

    it("returns the lock id and increments it per unbond; many locks per staker", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [op] = fx.operators;
      const [alice] = fx.delegators;
      const amounts = [tokens(100), tokens(250), 1n, tokens(7), tokens(1_000)];
      for (const [i, amount] of amounts.entries()) {
        expect(await fx.staking.connect(alice).unbond.staticCall(op.address, amount)).to.equal(BigInt(i));
        await expect(fx.staking.connect(alice).unbond(op.address, amount))
          .to.emit(fx.staking, "Unbonded")
          .withArgs(op.address, alice.address, BigInt(i), amount, anyShares, anyShares, anyTimestamp);
      }
      expect(await fx.staking.lockCount(op.address, alice.address)).to.equal(BigInt(amounts.length));
      for (const [i, amount] of amounts.entries()) {
        expectApprox(await fx.staking.lockValue(op.address, alice.address, BigInt(i)), amount, 1n, `lock ${i}`);
      }
      const total = amounts.reduce((a, b) => a + b, 0n);
      expectApprox((await fx.staking.unbondingPool(op.address)).stake, total, 0n, "unbonding pool");
      expectApprox(
        await fx.staking.stakeOf(op.address, alice.address),
        tokens(3_000) - total,
        2n,
        "alice's remaining stake",
      );
      await expectTokensConserved(fx);
    });

    it("counts lock ids per node and per staker", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [opA, opB] = fx.operators;
      const [alice, bob] = fx.delegators;
      await (await fx.staking.connect(opB).stake(opB.address, PARAMETERS.minSelfStake)).wait();
      await (await fx.staking.connect(alice).stake(opB.address, tokens(100))).wait();
      await (await fx.staking.connect(alice).unbond(opA.address, tokens(1))).wait();
      await (await fx.staking.connect(alice).unbond(opA.address, tokens(1))).wait();
      expect(await fx.staking.connect(alice).unbond.staticCall(opB.address, tokens(1))).to.equal(0n);
      expect(await fx.staking.connect(bob).unbond.staticCall(opA.address, tokens(1))).to.equal(0n);
      expect(await fx.staking.lockCount(opA.address, alice.address)).to.equal(2n);
      expect(await fx.staking.lockCount(opB.address, alice.address)).to.equal(0n);
      expect(await fx.staking.lockCount(opA.address, bob.address)).to.equal(0n);
    });

    it("unbonds the whole stake", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [op] = fx.operators;
      const [, bob] = fx.delegators;
      const all = await fx.staking.stakeOf(op.address, bob.address);
      await (await fx.staking.connect(bob).unbond(op.address, all)).wait();
      expect(await fx.staking.stakeOf(op.address, bob.address)).to.equal(0n);
      expect(await fx.staking.lockValue(op.address, bob.address, 0n)).to.equal(all);
      await expectTokensConserved(fx);
    });

    it("reverts with InsufficientStake(have, need) above the staker's active stake", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [op] = fx.operators;
      const [alice, , carol] = fx.delegators;
      const have = await fx.staking.stakeOf(op.address, alice.address);
      await expect(fx.staking.connect(alice).unbond(op.address, have + 1n))
        .to.be.revertedWithCustomError(fx.staking, "InsufficientStake")
        .withArgs(have, have + 1n);
      await expect(fx.staking.connect(carol).unbond(op.address, 1n))
        .to.be.revertedWithCustomError(fx.staking, "InsufficientStake")
        .withArgs(0n, 1n);
      // Unbonded stake no longer counts.
      await (await fx.staking.connect(alice).unbond(op.address, have)).wait();
      await expect(fx.staking.connect(alice).unbond(op.address, 1n))
        .to.be.revertedWithCustomError(fx.staking, "InsufficientStake")
        .withArgs(0n, 1n);
    });

    it("lets the operator unbond below the minimum, which makes the node ineligible", async function () {
      const fx = await loadFixture(nodesFixture);
      const [op] = fx.operators;
      expect(await fx.staking.isEligible(op.address)).to.equal(true);
      await (await fx.staking.connect(op).unbond(op.address, PARAMETERS.minSelfStake)).wait();
      expect(await fx.staking.selfStakeOf(op.address)).to.equal(0n);
      expect(await fx.staking.isEligible(op.address)).to.equal(false);
      expect(await fx.staking.tierOf(op.address)).to.equal(0n);
    });

    it("works while paused and while the node is jailed", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [op] = fx.operators;
      await (await fx.staking.connect(fx.slasher).slash(op.address, tokens(1), ethers.id("e"))).wait();
      await (await fx.staking.connect(fx.pauser).pause()).wait();
      expect(await fx.staking.isJailed(op.address)).to.equal(true);
      await expect(fx.staking.connect(fx.delegators[0]).unbond(op.address, tokens(100))).to.emit(
        fx.staking,
        "Unbonded",
      );
      await expect(fx.staking.connect(op).unbond(op.address, tokens(100))).to.emit(fx.staking, "Unbonded");
    });

    it("uses the unbonding period in force when the lock is made", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [op] = fx.operators;
      const [alice] = fx.delegators;
      await (await fx.staking.connect(alice).unbond(op.address, tokens(1))).wait();
      const first = await fx.staking.unbondingLock(op.address, alice.address, 0n);
      await setParameters(fx, { ...PARAMETERS, unbondingPeriod: 1n });
      const t = await nextTimestamp();
      await (await fx.staking.connect(alice).unbond(op.address, tokens(1))).wait();
      expect((await fx.staking.unbondingLock(op.address, alice.address, 1n)).withdrawableAt).to.equal(t + 1n);
      expect((await fx.staking.unbondingLock(op.address, alice.address, 0n)).withdrawableAt).to.equal(
        first.withdrawableAt,
      );
    });
  });

  // ---------------------------------------------------------------- rebond

  describe("rebond", function () {
    it("restores the stake and deletes the lock", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [op] = fx.operators;
      const [alice] = fx.delegators;
      const stakeBefore = await fx.staking.stakeOf(op.address, alice.address);
      await (await fx.staking.connect(alice).unbond(op.address, tokens(700))).wait();
      const lock = await fx.staking.unbondingLock(op.address, alice.address, 0n);
      const unbonding = pool(await fx.staking.unbondingPool(op.address));
      const amount = toStake(lock.shares, unbonding);
      const shares = toShares(amount, pool(await fx.staking.activePool(op.address)));
      expect(await fx.staking.connect(alice).rebond.staticCall(op.address, 0n)).to.equal(shares);
      await expect(fx.staking.connect(alice).rebond(op.address, 0n))
        .to.emit(fx.staking, "Rebonded")
        .withArgs(op.address, alice.address, 0n, amount, lock.shares, shares);
      expectApprox(await fx.staking.stakeOf(op.address, alice.address), stakeBefore, 2n, "restored stake");
      expect((await fx.staking.unbondingLock(op.address, alice.address, 0n)).shares).to.equal(0n);
      expect(await fx.staking.lockValue(op.address, alice.address, 0n)).to.equal(0n);
      expect(pool(await fx.staking.unbondingPool(op.address))).to.deep.equal({
        stake: 0n,
        shares: 0n,
      });
      // The lock id is not reused.
      expect(await fx.staking.lockCount(op.address, alice.address)).to.equal(1n);
      await expectTokensConserved(fx);
    });

    it("rebonds one lock among many, after maturity too", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      const [alice] = fx.delegators;
      await (await fx.staking.connect(alice).unbond(op.address, tokens(10))).wait();
      await time.increase(PARAMETERS.unbondingPeriod);
      await (await fx.staking.connect(alice).rebond(op.address, 1n)).wait();
      expect(await fx.staking.lockValue(op.address, alice.address, 0n)).to.equal(tokens(1_000));
      expect(await fx.staking.lockValue(op.address, alice.address, 1n)).to.equal(0n);
      await expectTokensConserved(fx);
    });

    it("returns the slashed value of the lock", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      const [alice] = fx.delegators;
      await (await fx.staking.connect(fx.slasher).slash(op.address, tokens(400), ethers.id("e"))).wait();
      const value = await fx.staking.lockValue(op.address, alice.address, 0n);
      expectApprox(value, tokens(920), 1n, "slashed lock value");
      await expect(fx.staking.connect(alice).rebond(op.address, 0n))
        .to.emit(fx.staking, "Rebonded")
        .withArgs(op.address, alice.address, 0n, value, anyShares, anyShares);
      await expectTokensConserved(fx);
    });

    it("reverts with LockNotFound for a lock never made, already rebonded or withdrawn, or someone else's", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      const [alice, bob, carol] = fx.delegators;
      const notFound = (staker: Signer, lockId: bigint) =>
        expect(fx.staking.connect(staker).rebond(op.address, lockId))
          .to.be.revertedWithCustomError(fx.staking, "LockNotFound")
          .withArgs(op.address, staker.address, lockId);
      await notFound(alice, 1n); // never made
      await notFound(carol, 0n); // never made by this staker
      await (await fx.staking.connect(alice).rebond(op.address, 0n)).wait();
      await notFound(alice, 0n); // rebonded
      await time.increase(PARAMETERS.unbondingPeriod);
      await (await fx.staking.connect(bob).withdraw(op.address, 0n)).wait();
      await notFound(bob, 0n); // withdrawn
      // A node that was never registered has no locks either.
      await expect(fx.staking.connect(alice).rebond(fx.operators[2].address, 0n))
        .to.be.revertedWithCustomError(fx.staking, "LockNotFound")
        .withArgs(fx.operators[2].address, alice.address, 0n);
    });

    it("is blocked while paused, and works again after governance unpauses", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      await (await fx.staking.connect(fx.pauser).pause()).wait();
      await expectPaused(fx.staking.connect(fx.delegators[0]).rebond(op.address, 0n), fx.staking);
      await governanceCall(fx.gov, await encodeCall(fx.staking, "unpause"));
      await expect(fx.staking.connect(fx.delegators[0]).rebond(op.address, 0n)).to.emit(fx.staking, "Rebonded");
    });

    it("reverts with AmountTooSmall when the lock is worth less than one active share", async function () {
      const fx = await loadFixture(nodesFixture);
      const op = fx.operators[1];
      // A tiny pool (minimum lowered by governance): 10 wei self-stake, 1 wei unbonded,
      // then a reward that makes one active share worth about 10 wei.
      await setParameters(fx, { ...PARAMETERS, minSelfStake: 1n });
      await (await fx.staking.connect(op).stake(op.address, 10n)).wait();
      await (await fx.staking.connect(op).unbond(op.address, 1n)).wait();
      await (await fx.staking.connect(fx.rewarder).addRewards(op.address, 10n ** 8n)).wait();
      expect(await fx.staking.lockValue(op.address, op.address, 0n)).to.equal(1n);
      await expect(fx.staking.connect(op).rebond(op.address, 0n))
        .to.be.revertedWithCustomError(fx.staking, "AmountTooSmall")
        .withArgs(1n);
      // The lock can still be withdrawn.
      await time.increase(PARAMETERS.unbondingPeriod);
      await expect(fx.staking.connect(op).withdraw(op.address, 0n)).to.changeTokenBalance(ethers, fx.token, op, 1n);
      await expectTokensConserved(fx);
    });
  });

  // ---------------------------------------------------------------- withdraw

  describe("withdraw", function () {
    it("reverts with LockNotMatured(lockId, withdrawableAt, now) before the unbonding period ends", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      const [alice] = fx.delegators;
      const { withdrawableAt } = await fx.staking.unbondingLock(op.address, alice.address, 0n);
      const now = await nextTimestamp();
      await expect(fx.staking.connect(alice).withdraw(op.address, 0n))
        .to.be.revertedWithCustomError(fx.staking, "LockNotMatured")
        .withArgs(0n, withdrawableAt, now);
      await time.setNextBlockTimestamp(withdrawableAt - 1n);
      await expect(fx.staking.connect(alice).withdraw(op.address, 0n))
        .to.be.revertedWithCustomError(fx.staking, "LockNotMatured")
        .withArgs(0n, withdrawableAt, withdrawableAt - 1n);
    });

    it("pays exactly the lock's value at withdrawableAt and deletes the lock", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      const [alice] = fx.delegators;
      const lock = await fx.staking.unbondingLock(op.address, alice.address, 0n);
      const unbondingBefore = pool(await fx.staking.unbondingPool(op.address));
      await time.setNextBlockTimestamp(lock.withdrawableAt);
      const sent = fx.staking.connect(alice).withdraw(op.address, 0n);
      await expect(sent)
        .to.emit(fx.staking, "Withdrawn")
        .withArgs(op.address, alice.address, 0n, tokens(1_000), lock.shares);
      await expect(sent).to.changeTokenBalances(ethers, fx.token, [alice, fx.staking], [tokens(1_000), -tokens(1_000)]);
      expect((await fx.staking.unbondingLock(op.address, alice.address, 0n)).shares).to.equal(0n);
      expect(await fx.staking.lockValue(op.address, alice.address, 0n)).to.equal(0n);
      expect(pool(await fx.staking.unbondingPool(op.address))).to.deep.equal({
        stake: unbondingBefore.stake - tokens(1_000),
        shares: unbondingBefore.shares - lock.shares,
      });
      await expectTokensConserved(fx);
    });

    it("returns the amount paid", async function () {
      const fx = await loadFixture(unbondingFixture);
      await time.increase(PARAMETERS.unbondingPeriod);
      expect(await fx.staking.connect(fx.delegators[1]).withdraw.staticCall(fx.operators[0].address, 0n)).to.equal(
        tokens(500),
      );
    });

    it("reverts with LockNotFound on a second withdrawal and for a lock never made", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      const [alice, , carol] = fx.delegators;
      await time.increase(PARAMETERS.unbondingPeriod);
      await (await fx.staking.connect(alice).withdraw(op.address, 0n)).wait();
      await expect(fx.staking.connect(alice).withdraw(op.address, 0n))
        .to.be.revertedWithCustomError(fx.staking, "LockNotFound")
        .withArgs(op.address, alice.address, 0n);
      await expect(fx.staking.connect(alice).withdraw(op.address, 5n))
        .to.be.revertedWithCustomError(fx.staking, "LockNotFound")
        .withArgs(op.address, alice.address, 5n);
      // Another staker cannot take bob's lock 0.
      await expect(fx.staking.connect(carol).withdraw(op.address, 0n))
        .to.be.revertedWithCustomError(fx.staking, "LockNotFound")
        .withArgs(op.address, carol.address, 0n);
    });

    it("reverts with LockNotFound for a rebonded lock", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      await (await fx.staking.connect(fx.delegators[0]).rebond(op.address, 0n)).wait();
      await time.increase(PARAMETERS.unbondingPeriod);
      await expect(fx.staking.connect(fx.delegators[0]).withdraw(op.address, 0n))
        .to.be.revertedWithCustomError(fx.staking, "LockNotFound")
        .withArgs(op.address, fx.delegators[0].address, 0n);
    });

    it("works while paused and while the node is jailed", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      await (await fx.staking.connect(fx.slasher).slash(op.address, tokens(1), ethers.id("e"))).wait();
      await (await fx.staking.connect(fx.pauser).pause()).wait();
      await time.increase(PARAMETERS.unbondingPeriod);
      const value = await fx.staking.lockValue(op.address, fx.delegators[1].address, 0n);
      await expect(fx.staking.connect(fx.delegators[1]).withdraw(op.address, 0n)).to.changeTokenBalance(
        ethers,
        fx.token,
        fx.delegators[1],
        value,
      );
      await expectTokensConserved(fx);
    });

    it("pays the slashed value, not the unbonded amount", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      const [alice, bob] = fx.delegators;
      await (await fx.staking.connect(fx.slasher).slash(op.address, tokens(400), ethers.id("e"))).wait();
      await time.increase(PARAMETERS.unbondingPeriod);
      const aliceValue = await fx.staking.lockValue(op.address, alice.address, 0n);
      const bobValue = await fx.staking.lockValue(op.address, bob.address, 0n);
      await expect(fx.staking.connect(alice).withdraw(op.address, 0n)).to.changeTokenBalance(
        ethers,
        fx.token,
        alice,
        aliceValue,
      );
      await expect(fx.staking.connect(bob).withdraw(op.address, 0n)).to.changeTokenBalance(
        ethers,
        fx.token,
        bob,
        bobValue,
      );
      // Rounding dust stays in the pool and in the balance, never more is paid than held.
      const rest = pool(await fx.staking.unbondingPool(op.address));
      expect(rest.shares).to.equal(0n);
      expect(rest.stake).to.be.lessThanOrEqual(2n);
      await expectTokensConserved(fx);
    });
  });

  // ---------------------------------------------------------------- rewards

  describe("addRewards", function () {
    itRequiresRole("rewarder", delegatedFixture, {
      addRewards: (fx, caller) => fx.staking.connect(caller).addRewards(fx.operators[0].address, tokens(1)),
    });

    it("compounds for every staker of the node, pro rata", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [op] = fx.operators;
      const [alice, bob] = fx.delegators;
      const before = pool(await fx.staking.activePool(op.address));
      const reward = tokens(500); // +10% on 5,000
      const sent = fx.staking.connect(fx.rewarder).addRewards(op.address, reward);
      await expect(sent).to.emit(fx.staking, "RewardsAdded").withArgs(op.address, fx.rewarder.address, reward);
      await expect(sent).to.changeTokenBalances(ethers, fx.token, [fx.rewarder, fx.staking], [-reward, reward]);
      const after = pool(await fx.staking.activePool(op.address));
      expect(after).to.deep.equal({
        stake: before.stake + reward,
        shares: before.shares,
      });
      for (const [who, staked] of [
        [op, tokens(1_000)],
        [alice, tokens(3_000)],
        [bob, tokens(1_000)],
      ] as const) {
        const shares = await fx.staking.sharesOf(op.address, who.address);
        expect(await fx.staking.stakeOf(op.address, who.address)).to.equal(toStake(shares, after));
        expectApprox(await fx.staking.stakeOf(op.address, who.address), (staked * 11n) / 10n, 2n, "compounded stake");
      }
      await expectTokensConserved(fx);
    });

    it("does not reward the unbonding pool", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      await (await fx.staking.connect(fx.rewarder).addRewards(op.address, tokens(350))).wait();
      expect(await fx.staking.lockValue(op.address, fx.delegators[0].address, 0n)).to.equal(tokens(1_000));
      expect((await fx.staking.unbondingPool(op.address)).stake).to.equal(tokens(1_500));
      await expectTokensConserved(fx);
    });

    it("reverts with NoStakers for a node with no active shares", async function () {
      const fx = await loadFixture(nodesFixture);
      const opB = fx.operators[1].address;
      await expect(fx.staking.connect(fx.rewarder).addRewards(opB, tokens(1)))
        .to.be.revertedWithCustomError(fx.staking, "NoStakers")
        .withArgs(opB);
      // Also once every staker has unbonded.
      const [op] = fx.operators;
      await (await fx.staking.connect(op).unbond(op.address, PARAMETERS.minSelfStake)).wait();
      await expect(fx.staking.connect(fx.rewarder).addRewards(op.address, tokens(1)))
        .to.be.revertedWithCustomError(fx.staking, "NoStakers")
        .withArgs(op.address);
    });

    it("works while paused", async function () {
      const fx = await loadFixture(delegatedFixture);
      await (await fx.staking.connect(fx.pauser).pause()).wait();
      await expect(fx.staking.connect(fx.rewarder).addRewards(fx.operators[0].address, tokens(1))).to.emit(
        fx.staking,
        "RewardsAdded",
      );
    });
  });

  describe("earnings reserve (fundEarnings, payEarnings, withdrawCommission)", function () {
    /** The claims contract's part, played by the redistribution recipient: funds the reserve with `amount`. */
    async function funded(fixture: () => Promise<StakingFixture>, amount = tokens(1_000)) {
      const fx = await fixture();
      await (await fx.token.connect(fx.rewarder).transfer(fx.recipient.address, amount)).wait();
      await (await fx.token.connect(fx.recipient).approve(fx.stakingAddress, amount)).wait();
      await (await fx.staking.connect(fx.recipient).fundEarnings(amount)).wait();
      return fx;
    }
    const fundedDelegated = () => funded(delegatedFixture);
    const fundedNodes = () => funded(nodesFixture);

    it("lets only the claims contract (the redistribution recipient) fund and pay, whatever its roles", async function () {
      const fx = await loadFixture(fundedDelegated);
      for (const caller of [fx.rewarder, fx.outsider, fx.operators[0]]) {
        await expect(fx.staking.connect(caller).fundEarnings(tokens(1)))
          .to.be.revertedWithCustomError(fx.staking, "NotClaimsContract")
          .withArgs(caller.address, fx.recipient.address);
        await expect(fx.staking.connect(caller).payEarnings(fx.operators[0].address, tokens(1)))
          .to.be.revertedWithCustomError(fx.staking, "NotClaimsContract")
          .withArgs(caller.address, fx.recipient.address);
      }
    });

    it("pulls the funded tokens into the reserve and refuses a zero amount", async function () {
      const fx = await loadFixture(fundedNodes);
      expect(await fx.staking.earningsReserve()).to.equal(tokens(1_000));
      await expectTokensConserved(fx);
      await expect(fx.staking.connect(fx.recipient).fundEarnings(0n)).to.be.revertedWithCustomError(
        fx.staking,
        "ZeroAmount",
      );
      await (await fx.token.connect(fx.rewarder).transfer(fx.recipient.address, tokens(5))).wait();
      await (await fx.token.connect(fx.recipient).approve(fx.stakingAddress, tokens(5))).wait();
      const sent = fx.staking.connect(fx.recipient).fundEarnings(tokens(5));
      await expect(sent).to.emit(fx.staking, "EarningsFunded").withArgs(fx.recipient.address, tokens(5));
      await expect(sent).to.changeTokenBalances(ethers, fx.token, [fx.recipient, fx.staking], [-tokens(5), tokens(5)]);
      expect(await fx.staking.earningsReserve()).to.equal(tokens(1_005));
    });

    it("pays a node with no token transfer: commission accrues to the operator, the rest compounds in the pool", async function () {
      const fx = await loadFixture(fundedDelegated);
      const [op] = fx.operators;
      const before = pool(await fx.staking.activePool(op.address));
      const earned = tokens(400);
      const commission = (earned * 500n) / 10_000n; // registerAndStake's 5%
      expect(await fx.staking.connect(fx.recipient).payEarnings.staticCall(op.address, earned)).to.deep.equal([
        earned - commission,
        commission,
      ]);
      const sent = fx.staking.connect(fx.recipient).payEarnings(op.address, earned);
      await expect(sent)
        .to.emit(fx.staking, "EarningsPaid")
        .withArgs(op.address, earned, earned - commission, commission);
      await expect(sent).to.not.emit(fx.token, "Transfer");
      expect(pool(await fx.staking.activePool(op.address))).to.deep.equal({
        stake: before.stake + earned - commission,
        shares: before.shares,
      });
      expect((await fx.staking.nodeInfo(op.address)).commissionOwed).to.equal(commission);
      expect(await fx.staking.earningsReserve()).to.equal(tokens(600));
      await expectTokensConserved(fx);
    });

    it("accrues everything to a node without stakers, and sends everything to an account that is not a node", async function () {
      const fx = await loadFixture(fundedNodes);
      const lonely = fx.operators[1].address; // registered, no stake
      await expect(fx.staking.connect(fx.recipient).payEarnings(lonely, tokens(7)))
        .to.emit(fx.staking, "EarningsPaid")
        .withArgs(lonely, tokens(7), 0n, tokens(7));
      expect((await fx.staking.nodeInfo(lonely)).commissionOwed).to.equal(tokens(7));

      const publisher = fx.outsider;
      const sent = fx.staking.connect(fx.recipient).payEarnings(publisher.address, tokens(9));
      await expect(sent).to.emit(fx.staking, "EarningsPaid").withArgs(publisher.address, tokens(9), 0n, 0n);
      await expect(sent).to.changeTokenBalances(ethers, fx.token, [fx.staking, publisher], [-tokens(9), tokens(9)]);
      expect(await fx.staking.earningsReserve()).to.equal(tokens(1_000 - 7 - 9));
      await expectTokensConserved(fx);
    });

    it("never pays past the reserve", async function () {
      const fx = await loadFixture(fundedDelegated);
      const [op] = fx.operators;
      await expect(fx.staking.connect(fx.recipient).payEarnings(op.address, tokens(1_000) + 1n))
        .to.be.revertedWithCustomError(fx.staking, "InsufficientEarningsReserve")
        .withArgs(tokens(1_000) + 1n, tokens(1_000));
      await (await fx.staking.connect(fx.recipient).payEarnings(op.address, tokens(1_000))).wait();
      expect(await fx.staking.earningsReserve()).to.equal(0n);
      await expect(fx.staking.connect(fx.recipient).payEarnings(op.address, 1n))
        .to.be.revertedWithCustomError(fx.staking, "InsufficientEarningsReserve")
        .withArgs(1n, 0n);
    });

    it("pays the operator its accrued commission once, also while paused", async function () {
      const fx = await loadFixture(fundedDelegated);
      const [op] = fx.operators;
      await (await fx.staking.connect(fx.recipient).payEarnings(op.address, tokens(200))).wait();
      const owed = (await fx.staking.nodeInfo(op.address)).commissionOwed;
      expect(owed).to.equal(tokens(10));
      await (await fx.staking.connect(fx.pauser).pause()).wait();
      const sent = fx.staking.connect(op).withdrawCommission();
      await expect(sent).to.emit(fx.staking, "CommissionWithdrawn").withArgs(op.address, owed);
      await expect(sent).to.changeTokenBalances(ethers, fx.token, [fx.staking, op], [-owed, owed]);
      expect((await fx.staking.nodeInfo(op.address)).commissionOwed).to.equal(0n);
      await expect(fx.staking.connect(op).withdrawCommission())
        .to.be.revertedWithCustomError(fx.staking, "NoCommission")
        .withArgs(op.address);
      await expect(fx.staking.connect(fx.delegators[0]).withdrawCommission())
        .to.be.revertedWithCustomError(fx.staking, "NoCommission")
        .withArgs(fx.delegators[0].address);
      await expectTokensConserved(fx);
    });

    it("keeps the accrued commission when the operator updates its node", async function () {
      const fx = await loadFixture(fundedDelegated);
      const [op] = fx.operators;
      await (await fx.staking.connect(fx.recipient).payEarnings(op.address, tokens(200))).wait();
      await (await fx.staking.connect(op).updateNode("https://new.example/infer", ethers.id("hw"), 1_000)).wait();
      const info = await fx.staking.nodeInfo(op.address);
      expect(info.commissionOwed).to.equal(tokens(10));
      expect(info.commissionBps).to.equal(1_000n);
    });
  });

  // ---------------------------------------------------------------- slashing

  describe("slash", function () {
    itRequiresRole("slasher", delegatedFixture, {
      slash: (fx, caller) => fx.staking.connect(caller).slash(fx.operators[0].address, tokens(1), ethers.id("e")),
    });

    it("reports active plus unbonding stake as slashable, and the cap on it", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      expect((await fx.staking.activePool(op.address)).stake).to.equal(tokens(3_500));
      expect((await fx.staking.unbondingPool(op.address)).stake).to.equal(tokens(1_500));
      expect(await fx.staking.slashableStake(op.address)).to.equal(tokens(5_000));
      expect(await fx.staking.maxSlashOf(op.address)).to.equal(tokens(500));
      expect(await fx.staking.slashableStake(fx.operators[2].address)).to.equal(0n);
      expect(await fx.staking.maxSlashOf(fx.operators[2].address)).to.equal(0n);
    });

    it("reverts with SlashExceedsCap(amount, cap) over maxSlashBps of the slashable stake", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      const cap = tokens(500);
      await expect(fx.staking.connect(fx.slasher).slash(op.address, cap + 1n, ethers.id("e")))
        .to.be.revertedWithCustomError(fx.staking, "SlashExceedsCap")
        .withArgs(cap + 1n, cap);
      await expect(fx.staking.connect(fx.slasher).slash(op.address, cap, ethers.id("e"))).to.emit(
        fx.staking,
        "Slashed",
      );
    });

    it("reverts with SlashExceedsCap(amount, 0) on a node without stake", async function () {
      const fx = await loadFixture(nodesFixture);
      await expect(fx.staking.connect(fx.slasher).slash(fx.operators[1].address, 1n, ethers.id("e")))
        .to.be.revertedWithCustomError(fx.staking, "SlashExceedsCap")
        .withArgs(1n, 0n);
    });

    it("takes the slash pro rata from the active and unbonding pools, splits burn/redistribution and jails", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      const evidence = ethers.id("missed SLA, epoch 42");
      const t = await nextTimestamp();
      const jailedUntil = t + PARAMETERS.jailPeriod;
      // 400 of 5,000: 3,500/5,000 from active = 280, 1,500/5,000 from unbonding = 120; half burned.
      const sent = fx.staking.connect(fx.slasher).slash(op.address, tokens(400), evidence);
      await expect(sent)
        .to.emit(fx.staking, "Slashed")
        .withArgs(op.address, evidence, tokens(400), tokens(280), tokens(120), tokens(200), tokens(200), jailedUntil);
      await expect(sent).to.changeTokenBalance(ethers, fx.token, fx.staking, 0n); // tokens stay until released
      expect((await fx.staking.activePool(op.address)).stake).to.equal(tokens(3_220));
      expect((await fx.staking.unbondingPool(op.address)).stake).to.equal(tokens(1_380));
      expect(await fx.staking.slashedOwed()).to.deep.equal([tokens(200), tokens(200)]);
      expect(await fx.staking.evidenceUsed(evidence)).to.equal(true);
      expect(await fx.staking.evidenceUsed(ethers.id("other"))).to.equal(false);
      expect((await fx.staking.nodeInfo(op.address)).jailedUntil).to.equal(jailedUntil);
      expect(await fx.staking.isJailed(op.address)).to.equal(true);
      expect(await fx.staking.isEligible(op.address)).to.equal(false);
      expect(await fx.staking.tierOf(op.address)).to.equal(0n);
      await expectTokensConserved(fx);
    });

    it("reduces every active stake and every unbonding lock proportionally, without touching shares", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      const [alice, bob] = fx.delegators;
      const stakers = [op, alice, bob];
      const stakesBefore = await Promise.all(stakers.map((s) => fx.staking.stakeOf(op.address, s.address)));
      const sharesBefore = await Promise.all(stakers.map((s) => fx.staking.sharesOf(op.address, s.address)));
      const locksBefore = await Promise.all(
        [alice, bob].map((s) => fx.staking.unbondingLock(op.address, s.address, 0n)),
      );
      await (await fx.staking.connect(fx.slasher).slash(op.address, tokens(400), ethers.id("e"))).wait();
      // Active pool lost 280/3,500 = 8%, unbonding pool 120/1,500 = 8%.
      for (const [i, s] of stakers.entries()) {
        expect(await fx.staking.sharesOf(op.address, s.address)).to.equal(sharesBefore[i]);
        expectApprox(
          await fx.staking.stakeOf(op.address, s.address),
          (stakesBefore[i]! * 92n) / 100n,
          2n,
          "active stake",
        );
      }
      for (const [i, s] of [alice, bob].entries()) {
        expect((await fx.staking.unbondingLock(op.address, s.address, 0n)).shares).to.equal(locksBefore[i]!.shares);
      }
      expectApprox(await fx.staking.lockValue(op.address, alice.address, 0n), tokens(920), 1n, "alice's lock");
      expectApprox(await fx.staking.lockValue(op.address, bob.address, 0n), tokens(460), 1n, "bob's lock");
    });

    it("rounds the remainder onto the unbonding pool and the burn down", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      // 7 wei of 5,000 tokens: 7 * 3,500 / 5,000 = 4.9 -> 4 from active, 3 from unbonding; 7 * 50% = 3.5 -> 3 burned.
      await expect(fx.staking.connect(fx.slasher).slash(op.address, 7n, ethers.id("e")))
        .to.emit(fx.staking, "Slashed")
        .withArgs(op.address, ethers.id("e"), 7n, 4n, 3n, 3n, 4n, anyTimestamp);
      await expectTokensConserved(fx);
    });

    it("takes everything from the active pool when nothing is unbonding", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [op] = fx.operators;
      await expect(fx.staking.connect(fx.slasher).slash(op.address, tokens(100), ethers.id("e")))
        .to.emit(fx.staking, "Slashed")
        .withArgs(op.address, ethers.id("e"), tokens(100), tokens(100), 0n, tokens(50), tokens(50), anyTimestamp);
    });

    it("still reaches stake that is fully unbonding and matured but not withdrawn", async function () {
      const fx = await loadFixture(nodesFixture);
      const [op] = fx.operators;
      await (await fx.staking.connect(op).unbond(op.address, PARAMETERS.minSelfStake)).wait();
      await time.increase(PARAMETERS.unbondingPeriod * 2n);
      await expect(fx.staking.connect(fx.slasher).slash(op.address, tokens(100), ethers.id("e")))
        .to.emit(fx.staking, "Slashed")
        .withArgs(op.address, ethers.id("e"), tokens(100), 0n, tokens(100), tokens(50), tokens(50), anyTimestamp);
      await expect(fx.staking.connect(op).withdraw(op.address, 0n)).to.changeTokenBalance(
        ethers,
        fx.token,
        op,
        tokens(900),
      );
      await expectTokensConserved(fx);
    });

    it("reverts with EvidenceAlreadyUsed when evidence is reused, on any node", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [op, opB] = fx.operators;
      await (await fx.staking.connect(opB).stake(opB.address, PARAMETERS.minSelfStake)).wait();
      const evidence = ethers.id("e");
      await (await fx.staking.connect(fx.slasher).slash(op.address, tokens(1), evidence)).wait();
      await expect(fx.staking.connect(fx.slasher).slash(op.address, tokens(1), evidence))
        .to.be.revertedWithCustomError(fx.staking, "EvidenceAlreadyUsed")
        .withArgs(evidence);
      await expect(fx.staking.connect(fx.slasher).slash(opB.address, tokens(1), evidence))
        .to.be.revertedWithCustomError(fx.staking, "EvidenceAlreadyUsed")
        .withArgs(evidence);
    });

    it("caps a second slash on the reduced stake and extends, never shortens, the jail", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [op] = fx.operators;
      const first = await timestampOf(fx.staking.connect(fx.slasher).slash(op.address, tokens(500), ethers.id("e1")));
      expect(await fx.staking.maxSlashOf(op.address)).to.equal(tokens(450));
      await expect(fx.staking.connect(fx.slasher).slash(op.address, tokens(451), ethers.id("e2")))
        .to.be.revertedWithCustomError(fx.staking, "SlashExceedsCap")
        .withArgs(tokens(451), tokens(450));
      await time.increase(DAY);
      const second = await timestampOf(fx.staking.connect(fx.slasher).slash(op.address, tokens(1), ethers.id("e2")));
      expect((await fx.staking.nodeInfo(op.address)).jailedUntil).to.equal(second + PARAMETERS.jailPeriod);
      expect(second).to.be.greaterThan(first);
      // A shorter jail period does not shorten an existing jail.
      await setParameters(fx, { ...PARAMETERS, jailPeriod: 60n });
      await (await fx.staking.connect(fx.slasher).slash(op.address, tokens(1), ethers.id("e3"))).wait();
      expect((await fx.staking.nodeInfo(op.address)).jailedUntil).to.equal(second + PARAMETERS.jailPeriod);
    });

    it("does not jail when the jail period is zero", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [op] = fx.operators;
      await setParameters(fx, { ...PARAMETERS, jailPeriod: 0n });
      await (await fx.staking.connect(fx.slasher).slash(op.address, tokens(1), ethers.id("e"))).wait();
      expect(await fx.staking.isJailed(op.address)).to.equal(false);
      expect(await fx.staking.isEligible(op.address)).to.equal(false); // 1 token of 5,000: self-stake just under 1,000
      await (await fx.staking.connect(op).stake(op.address, tokens(1))).wait();
      expect(await fx.staking.isEligible(op.address)).to.equal(true);
    });

    it("works while paused", async function () {
      const fx = await loadFixture(delegatedFixture);
      await (await fx.staking.connect(fx.pauser).pause()).wait();
      await expect(fx.staking.connect(fx.slasher).slash(fx.operators[0].address, tokens(1), ethers.id("e"))).to.emit(
        fx.staking,
        "Slashed",
      );
    });

    describe("repeated slashes at the 50% cap", function () {
      async function dustFixture(): Promise<StakingFixture> {
        const fx = await unbondingFixture();
        await setParameters(fx, { ...PARAMETERS, maxSlashBps: 5_000, jailPeriod: 0n });
        const node = fx.operators[0].address;
        // 40 halvings: the pool's 1e27-scale share total now prices 1,000 tokens above 2^128 shares.
        for (let i = 0; i < 40; i++) {
          const cap = await fx.staking.maxSlashOf(node);
          await (await fx.staking.connect(fx.slasher).slash(node, cap, ethers.id(`dust-${i}`))).wait();
        }
        return fx;
      }

      it("never empties a pool in one slash, and refuses new stake with PoolDepleted once it is dust", async function () {
        const fx = await loadFixture(dustFixture);
        const [op] = fx.operators;
        expect((await fx.staking.activePool(op.address)).stake).to.be.greaterThan(0n);
        await expect(fx.staking.connect(op).stake(op.address, PARAMETERS.minSelfStake))
          .to.be.revertedWithCustomError(fx.staking, "PoolDepleted")
          .withArgs(op.address);

        await expectTokensConserved(fx);
      });

      it("still lets every staker unbond and withdraw what is left", async function () {
        const fx = await loadFixture(dustFixture);
        const [op] = fx.operators;
        const [alice] = fx.delegators;
        const left = await fx.staking.stakeOf(op.address, alice.address);
        const lockLeft = await fx.staking.lockValue(op.address, alice.address, 0n);
        expect(left).to.be.greaterThan(0n);
        // The unbonding pool was re-denominated on the way down, so exits still mint shares.
        const redenominated = await fx.staking.queryFilter(fx.staking.filters.UnbondingPoolRedenominated(op.address));
        expect(redenominated.length).to.be.greaterThan(0);
        await expect(fx.staking.connect(alice).unbond(op.address, left)).to.emit(fx.staking, "Unbonded");
        await time.increase(PARAMETERS.unbondingPeriod);
        await expect(fx.staking.connect(alice).withdraw(op.address, 0n))
          .to.emit(fx.staking, "Withdrawn")
          .withArgs(op.address, alice.address, 0n, lockLeft, anyShares);
        await expectTokensConserved(fx);
      });
    });
  });

  describe("releaseSlashedStake", function () {
    it("keeps slashedTotal cumulative across releases while slashedOwed returns to zero", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      await (await fx.staking.connect(fx.slasher).slash(op.address, tokens(100), ethers.id("t1"))).wait();
      await (await fx.staking.releaseSlashedStake()).wait();
      expect(await fx.staking.slashedOwed()).to.deep.equal([0n, 0n]);
      await (await fx.staking.connect(fx.slasher).slash(op.address, tokens(10), ethers.id("t2"))).wait();
      const burnShare = (amount: bigint) => (amount * BigInt(PARAMETERS.burnBps)) / 10_000n;
      const burned = burnShare(tokens(100)) + burnShare(tokens(10));
      expect(await fx.staking.slashedTotal()).to.deep.equal([tokens(110) - burned, burned]);
      expect(await fx.staking.slashedOwed()).to.deep.equal([tokens(10) - burnShare(tokens(10)), burnShare(tokens(10))]);
      await expectTokensConserved(fx);
    });

    it("pays the burn to the dead address and the rest to the recipient, once", async function () {
      const fx = await loadFixture(unbondingFixture);
      const [op] = fx.operators;
      await (await fx.staking.connect(fx.slasher).slash(op.address, tokens(400), ethers.id("e1"))).wait();
      await (await fx.staking.connect(fx.slasher).slash(op.address, 3n, ethers.id("e2"))).wait();
      // 400 tokens: 200 / 200; 3 wei: 1 burned, 2 redistributed.
      const burn = tokens(200) + 1n;
      const redistribution = tokens(200) + 2n;
      expect(await fx.staking.slashedOwed()).to.deep.equal([redistribution, burn]);
      const sent = fx.staking.connect(fx.outsider).releaseSlashedStake();
      await expect(sent)
        .to.emit(fx.staking, "SlashedStakeReleased")
        .withArgs(fx.recipient.address, redistribution, burn);
      await expect(sent).to.changeTokenBalances(
        ethers,
        fx.token,
        [fx.staking, fx.recipient, BURN_ADDRESS],
        [-(burn + redistribution), redistribution, burn],
      );
      expect(await fx.staking.slashedOwed()).to.deep.equal([0n, 0n]);
      await expectTokensConserved(fx);
      // Nothing left to pay: a second release moves no tokens.
      const again = fx.staking.releaseSlashedStake();
      await expect(again).to.emit(fx.staking, "SlashedStakeReleased").withArgs(fx.recipient.address, 0n, 0n);
      await expect(again).to.changeTokenBalance(ethers, fx.token, fx.staking, 0n);
    });

    it("honours burnBps of 0% and 100%", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [op] = fx.operators;
      await setParameters(fx, { ...PARAMETERS, burnBps: 0 });
      await (await fx.staking.connect(fx.slasher).slash(op.address, tokens(10), ethers.id("e1"))).wait();
      expect(await fx.staking.slashedOwed()).to.deep.equal([tokens(10), 0n]);
      await setParameters(fx, { ...PARAMETERS, burnBps: 10_000 });
      await (await fx.staking.connect(fx.slasher).slash(op.address, tokens(10), ethers.id("e2"))).wait();
      expect(await fx.staking.slashedOwed()).to.deep.equal([tokens(10), tokens(10)]);
      await expect(fx.staking.releaseSlashedStake()).to.changeTokenBalances(
        ethers,
        fx.token,
        [fx.recipient, BURN_ADDRESS],
        [tokens(10), tokens(10)],
      );
    });

    it("pays the recipient in force at release time, and works while paused", async function () {
      const fx = await loadFixture(delegatedFixture);
      await (await fx.staking.connect(fx.slasher).slash(fx.operators[0].address, tokens(100), ethers.id("e"))).wait();
      await governanceCall(fx.gov, await encodeCall(fx.staking, "setRedistributionRecipient", [fx.outsider.address]));
      await (await fx.staking.connect(fx.pauser).pause()).wait();
      await expect(fx.staking.releaseSlashedStake()).to.changeTokenBalances(
        ethers,
        fx.token,
        [fx.outsider, fx.recipient],
        [tokens(50), 0n],
      );
    });
  });

  // ---------------------------------------------------------------- jail

  describe("jail and unjail", function () {
    async function jailedFixture(): Promise<StakingFixture> {
      const fx = await delegatedFixture();
      await (await fx.staking.connect(fx.slasher).slash(fx.operators[0].address, tokens(10), ethers.id("jail"))).wait();
      // Keep the self-stake above the minimum so only the jail matters.
      await (await fx.staking.connect(fx.operators[0]).stake(fx.operators[0].address, tokens(10))).wait();
      return fx;
    }

    it("frees the node when the jail period has passed", async function () {
      const fx = await loadFixture(jailedFixture);
      const [op] = fx.operators;
      const { jailedUntil } = await fx.staking.nodeInfo(op.address);
      expect(await fx.staking.isJailed(op.address)).to.equal(true);
      await time.setNextBlockTimestamp(jailedUntil - 1n);
      await ethers.provider.send("evm_mine", []);
      expect(await fx.staking.isJailed(op.address)).to.equal(true);
      await ethers.provider.send("evm_mine", []);
      expect(await fx.staking.isJailed(op.address)).to.equal(false);
      expect(await fx.staking.isEligible(op.address)).to.equal(true);
      // The record keeps the past timestamp; unjail has nothing to do.
      expect((await fx.staking.nodeInfo(op.address)).jailedUntil).to.equal(jailedUntil);
      await expect(governanceCall(fx.gov, await encodeCall(fx.staking, "unjail", [op.address])))
        .to.be.revertedWithCustomError(fx.staking, "NodeNotJailed")
        .withArgs(op.address);
    });

    it("lets governance free a jailed node early through the timelock", async function () {
      const fx = await loadFixture(jailedFixture);
      const [op] = fx.operators;
      await expect(governanceCall(fx.gov, await encodeCall(fx.staking, "unjail", [op.address])))
        .to.emit(fx.staking, "NodeUnjailed")
        .withArgs(op.address);
      expect((await fx.staking.nodeInfo(op.address)).jailedUntil).to.equal(0n);
      expect(await fx.staking.isJailed(op.address)).to.equal(false);
      expect(await fx.staking.isEligible(op.address)).to.equal(true);
      await expect(fx.staking.connect(fx.delegators[2]).stake(op.address, tokens(1))).to.emit(fx.staking, "Staked");
    });

    it("reverts with NodeNotJailed for a node never jailed", async function () {
      const fx = await loadFixture(nodesFixture);
      await expect(governanceCall(fx.gov, await encodeCall(fx.staking, "unjail", [fx.operators[0].address])))
        .to.be.revertedWithCustomError(fx.staking, "NodeNotJailed")
        .withArgs(fx.operators[0].address);
    });

    itRequiresRole("admin", jailedFixture, {
      unjail: (fx, caller) => fx.staking.connect(caller).unjail(fx.operators[0].address),
    });
  });

  // ---------------------------------------------------------------- eligibility

  describe("eligibility and tiers", function () {
    it("is 0 / not eligible for an unregistered node and a registered node without self-stake", async function () {
      const fx = await loadFixture(nodesFixture);
      for (const node of [fx.operators[2], fx.operators[1], fx.outsider]) {
        expect(await fx.staking.isEligible(node.address)).to.equal(false);
        expect(await fx.staking.tierOf(node.address)).to.equal(0n);
        expect(await fx.staking.isJailed(node.address)).to.equal(false);
      }
    });

    it("is 0 when the self-stake is below the minimum, even with large delegations", async function () {
      const fx = await loadFixture(nodesFixture);
      const [op] = fx.operators;
      await (await fx.staking.connect(fx.delegators[0]).stake(op.address, tokens(200_000))).wait();
      expect(await fx.staking.tierOf(op.address)).to.equal(3n);
      await (await fx.staking.connect(op).unbond(op.address, 1n)).wait();
      expect(await fx.staking.isEligible(op.address)).to.equal(false);
      expect(await fx.staking.tierOf(op.address)).to.equal(0n);
    });

    it("is 0 while jailed", async function () {
      const fx = await loadFixture(nodesFixture);
      const [op] = fx.operators;
      await (await fx.staking.connect(op).stake(op.address, tokens(20_000))).wait();
      expect(await fx.staking.tierOf(op.address)).to.equal(2n);
      await (await fx.staking.connect(fx.slasher).slash(op.address, tokens(1), ethers.id("e"))).wait();
      expect(await fx.staking.isEligible(op.address)).to.equal(false);
      expect(await fx.staking.tierOf(op.address)).to.equal(0n);
    });

    it("counts thresholds reached by the node's whole active stake, inclusively", async function () {
      const fx = await loadFixture(nodesFixture);
      const [op] = fx.operators;
      const [alice] = fx.delegators;
      const [t1, t2] = TIER_THRESHOLDS as [bigint, bigint];
      const expectTier = async (tier: bigint) => expect(await fx.staking.tierOf(op.address)).to.equal(tier);
      await expectTier(1n); // eligible, 1,000 active
      await (await fx.staking.connect(alice).stake(op.address, t1 - PARAMETERS.minSelfStake - 1n)).wait();
      await expectTier(1n); // one wei short
      await (await fx.staking.connect(alice).stake(op.address, 1n)).wait();
      await expectTier(2n); // exactly the first threshold
      await (await fx.staking.connect(op).stake(op.address, t2 - t1)).wait();
      await expectTier(3n); // exactly the second
      // Unbonding stake does not count.
      await (await fx.staking.connect(alice).unbond(op.address, 1n)).wait();
      await expectTier(2n);
      // Rewards do.
      await (await fx.staking.connect(fx.rewarder).addRewards(op.address, 1n)).wait();
      await expectTier(3n);
    });

    it("follows new thresholds set by governance, including none", async function () {
      const fx = await loadFixture(nodesFixture);
      const [op] = fx.operators;
      await setThresholds(fx, [tokens(100), tokens(500), tokens(1_000), tokens(2_000)]);
      expect(await fx.staking.tierOf(op.address)).to.equal(4n);
      await setThresholds(fx, []);
      expect(await fx.staking.tierOf(op.address)).to.equal(1n);
      const sixteen = Array.from({ length: 16 }, (_, i) => BigInt(i + 1));
      await setThresholds(fx, sixteen);
      expect(await fx.staking.tierOf(op.address)).to.equal(17n);
    });

    it("follows a new minimum self-stake", async function () {
      const fx = await loadFixture(nodesFixture);
      const [op] = fx.operators;
      expect(await fx.staking.isEligible(op.address)).to.equal(true);
      await setParameters(fx, {
        ...PARAMETERS,
        minSelfStake: PARAMETERS.minSelfStake + 1n,
      });
      expect(await fx.staking.isEligible(op.address)).to.equal(false);
      expect(await fx.staking.tierOf(op.address)).to.equal(0n);
    });
  });

  // ---------------------------------------------------------------- governance

  describe("governance setters (timelock only)", function () {
    itRequiresRole("admin", deployStakingFixture, {
      setParameters: (fx, caller) => fx.staking.connect(caller).setParameters(PARAMETERS),
      setTierThresholds: (fx, caller) => fx.staking.connect(caller).setTierThresholds([1n]),
      setRedistributionRecipient: (fx, caller) => fx.staking.connect(caller).setRedistributionRecipient(caller.address),
      unpause: (fx, caller) => fx.staking.connect(caller).unpause(),
      grantRole: (fx, caller) => fx.staking.connect(caller).grantRole(fx.roles.slasher, caller.address),
      revokeRole: (fx, caller) => fx.staking.connect(caller).revokeRole(fx.roles.slasher, fx.slasher.address),
    });

    it("setParameters through the timelock updates the parameters and emits ParametersSet", async function () {
      const fx = await loadFixture(deployStakingFixture);
      const p: Parameters = {
        minSelfStake: tokens(5_000),
        unbondingPeriod: 365n * 24n * 3600n,
        jailPeriod: 365n * 24n * 3600n,
        maxSlashBps: 5_000,
        burnBps: 10_000,
      };
      await expect(setParameters(fx, p))
        .to.emit(fx.staking, "ParametersSet")
        .withArgs([p.minSelfStake, p.unbondingPeriod, p.jailPeriod, p.maxSlashBps, p.burnBps]);
      const stored = await fx.staking.parameters();
      expect([...stored]).to.deep.equal([
        p.minSelfStake,
        p.unbondingPeriod,
        p.jailPeriod,
        BigInt(p.maxSlashBps),
        BigInt(p.burnBps),
      ]);
      const low: Parameters = {
        minSelfStake: 1n,
        unbondingPeriod: 1n,
        jailPeriod: 0n,
        maxSlashBps: 1,
        burnBps: 0,
      };
      await expect(setParameters(fx, low)).to.emit(fx.staking, "ParametersSet");
    });

    const invalidParameters: [string, Partial<Parameters>, string, bigint][] = [
      ["a zero minimum self-stake", { minSelfStake: 0n }, "minSelfStake", 0n],
      ["a zero unbonding period", { unbondingPeriod: 0n }, "unbondingPeriod", 0n],
      [
        "an unbonding period over a year",
        { unbondingPeriod: 365n * 86_400n + 1n },
        "unbondingPeriod",
        365n * 86_400n + 1n,
      ],
      ["a jail period over a year", { jailPeriod: 365n * 86_400n + 1n }, "jailPeriod", 365n * 86_400n + 1n],
      ["a zero slash cap", { maxSlashBps: 0 }, "maxSlashBps", 0n],
      ["a slash cap over half the slashable stake", { maxSlashBps: 5_001 }, "maxSlashBps", 5_001n],
      ["a burn share over 100%", { burnBps: 10_001 }, "burnBps", 10_001n],
    ];
    for (const [what, change, name, value] of invalidParameters) {
      it(`setParameters reverts with InvalidParameter("${name}") for ${what}`, async function () {
        const fx = await loadFixture(deployStakingFixture);
        await expect(setParameters(fx, { ...PARAMETERS, ...change }))
          .to.be.revertedWithCustomError(fx.staking, "InvalidParameter")
          .withArgs(name, value);
      });
    }

    it("setTierThresholds through the timelock emits TierThresholdsSet", async function () {
      const fx = await loadFixture(deployStakingFixture);
      const thresholds = [1n, tokens(50_000), tokens(60_000)];
      await expect(setThresholds(fx, thresholds)).to.emit(fx.staking, "TierThresholdsSet").withArgs(thresholds);
      expect(await fx.staking.tierThresholds()).to.deep.equal(thresholds);
    });

    it("setTierThresholds reverts with TierThresholdsNotAscending(index, previous, value)", async function () {
      const fx = await loadFixture(deployStakingFixture);
      await expect(setThresholds(fx, [1n, 2n, 2n]))
        .to.be.revertedWithCustomError(fx.staking, "TierThresholdsNotAscending")
        .withArgs(2n, 2n, 2n);
      await expect(setThresholds(fx, [tokens(10), tokens(5)]))
        .to.be.revertedWithCustomError(fx.staking, "TierThresholdsNotAscending")
        .withArgs(1n, tokens(10), tokens(5));
    });

    it('setTierThresholds reverts with InvalidParameter("tierCount") above MAX_TIERS', async function () {
      const fx = await loadFixture(deployStakingFixture);
      const seventeen = Array.from({ length: 17 }, (_, i) => BigInt(i + 1));
      await expect(setThresholds(fx, seventeen))
        .to.be.revertedWithCustomError(fx.staking, "InvalidParameter")
        .withArgs("tierCount", 17n);
    });

    it("setRedistributionRecipient through the timelock, and ZeroAddress for the zero address", async function () {
      const fx = await loadFixture(deployStakingFixture);
      await expect(
        governanceCall(fx.gov, await encodeCall(fx.staking, "setRedistributionRecipient", [fx.outsider.address])),
      )
        .to.emit(fx.staking, "RedistributionRecipientSet")
        .withArgs(fx.outsider.address);
      expect(await fx.staking.redistributionRecipient()).to.equal(fx.outsider.address);
      await expect(
        governanceCall(fx.gov, await encodeCall(fx.staking, "setRedistributionRecipient", [ethers.ZeroAddress])),
      )
        .to.be.revertedWithCustomError(fx.staking, "ZeroAddress")
        .withArgs("redistributionRecipient");
    });

    it("lets governance grant and revoke protocol roles", async function () {
      const fx = await loadFixture(delegatedFixture);
      await governanceCall(fx.gov, await encodeCall(fx.staking, "revokeRole", [fx.roles.slasher, fx.slasher.address]));
      await expectMissingRole(
        fx.staking.connect(fx.slasher).slash(fx.operators[0].address, 1n, ethers.id("e")),
        fx.staking,
        fx.slasher,
        fx.roles.slasher,
      );
      await governanceCall(fx.gov, await encodeCall(fx.staking, "grantRole", [fx.roles.slasher, fx.outsider.address]));
      await expect(fx.staking.connect(fx.outsider).slash(fx.operators[0].address, 1n, ethers.id("e"))).to.emit(
        fx.staking,
        "Slashed",
      );
    });
  });

  // ---------------------------------------------------------------- pause

  describe("pause", function () {
    itRequiresRole("pauser", deployStakingFixture, {
      pause: (fx, caller) => fx.staking.connect(caller).pause(),
    });

    it("is paused by the pauser and unpaused only through governance", async function () {
      const fx = await loadFixture(deployStakingFixture);
      await expect(fx.staking.connect(fx.pauser).pause()).to.emit(fx.staking, "Paused").withArgs(fx.pauser.address);
      expect(await fx.staking.paused()).to.equal(true);
      await expectPaused(fx.staking.connect(fx.pauser).pause(), fx.staking);
      await expectMissingRole(fx.staking.connect(fx.pauser).unpause(), fx.staking, fx.pauser, fx.roles.admin);
      await expect(governanceCall(fx.gov, await encodeCall(fx.staking, "unpause")))
        .to.emit(fx.staking, "Unpaused")
        .withArgs(await fx.gov.timelock.getAddress());
      expect(await fx.staking.paused()).to.equal(false);
      await expect(governanceCall(fx.gov, await encodeCall(fx.staking, "unpause"))).to.be.revertedWithCustomError(
        fx.staking,
        "ExpectedPause",
      );
    });

    it("never traps stakers: unbond and withdraw keep working through a pause", async function () {
      const fx = await loadFixture(delegatedFixture);
      const [op] = fx.operators;
      const [alice] = fx.delegators;
      await (await fx.staking.connect(fx.pauser).pause()).wait();
      const all = await fx.staking.stakeOf(op.address, alice.address);
      await (await fx.staking.connect(alice).unbond(op.address, all)).wait();
      await time.increase(PARAMETERS.unbondingPeriod);
      await expect(fx.staking.connect(alice).withdraw(op.address, 0n)).to.changeTokenBalance(
        ethers,
        fx.token,
        alice,
        all,
      );
      expect(await fx.token.balanceOf(alice.address)).to.equal(FUNDING);
      await expectTokensConserved(fx);
    });
  });

  // ---------------------------------------------------------------- invariants

  describe("token conservation", function () {
    it("holds after a long mixed sequence on several nodes", async function () {
      const fx = await loadFixture(nodesFixture);
      const [opA, opB, opC] = fx.operators;
      const [alice, bob, carol] = fx.delegators;
      const s = fx.staking;
      const steps: [string, () => Promise<ContractTransactionResponse>][] = [
        ["B self-stakes", () => s.connect(opB).stake(opB.address, tokens(2_500))],
        ["C registers", () => s.connect(opC).registerNode("c", ethers.ZeroHash, 0)],
        ["C self-stakes", () => s.connect(opC).stake(opC.address, tokens(1_000) + 3n)],
        ["alice delegates to A", () => s.connect(alice).stake(opA.address, tokens(4_000) + 7n)],
        ["bob delegates to A", () => s.connect(bob).stake(opA.address, 999_999_999n)],
        ["carol delegates to B", () => s.connect(carol).stake(opB.address, tokens(12_345))],
        ["rewards on A", () => s.connect(fx.rewarder).addRewards(opA.address, tokens(77) + 1n)],
        ["alice unbonds from A", () => s.connect(alice).unbond(opA.address, tokens(1_000) + 11n)],
        ["alice unbonds again", () => s.connect(alice).unbond(opA.address, 13n)],
        ["carol unbonds from B", () => s.connect(carol).unbond(opB.address, tokens(345))],
        ["slash A", () => s.connect(fx.slasher).slash(opA.address, tokens(333) + 1n, ethers.id("a1"))],
        ["rewards on B", () => s.connect(fx.rewarder).addRewards(opB.address, 12_345_678_901n)],
        ["slash B", () => s.connect(fx.slasher).slash(opB.address, tokens(10) + 5n, ethers.id("b1"))],
        ["alice rebonds lock 1", () => s.connect(alice).rebond(opA.address, 1n)],
        [
          "bob unbonds everything",
          async () => s.connect(bob).unbond(opA.address, await s.stakeOf(opA.address, bob.address)),
        ],
        ["release slashed stake", () => s.releaseSlashedStake()],
        ["slash A again", () => s.connect(fx.slasher).slash(opA.address, 17n, ethers.id("a2"))],
        ["rewards on C", () => s.connect(fx.rewarder).addRewards(opC.address, 1n)],
      ];
      for (const [label, step] of steps) {
        await (await step()).wait();
        await expectTokensConserved(fx).catch((error: unknown) => {
          throw new Error(`after "${label}": ${String(error)}`);
        });
      }
      await time.increase(PARAMETERS.unbondingPeriod);
      await (await s.connect(alice).withdraw(opA.address, 0n)).wait();
      await (await s.connect(carol).withdraw(opB.address, 0n)).wait();
      await (await s.connect(bob).withdraw(opA.address, 0n)).wait();
      await expectTokensConserved(fx);
      // Everyone leaves: only rounding dust and owed slashes stay behind.
      for (const node of [opA, opB, opC]) {
        for (const who of [node, alice, bob, carol]) {
          const have = await s.stakeOf(node.address, who.address);
          if (have > 0n) await (await s.connect(who).unbond(node.address, have)).wait();
        }
      }
      await time.increase(PARAMETERS.unbondingPeriod);
      for (const node of [opA, opB, opC]) {
        for (const who of [node, alice, bob, carol]) {
          const count = await s.lockCount(node.address, who.address);
          for (let id = 0n; id < count; id++) {
            if ((await s.unbondingLock(node.address, who.address, id)).shares > 0n) {
              await (await s.connect(who).withdraw(node.address, id)).wait();
            }
          }
        }
      }
      await (await s.releaseSlashedStake()).wait();
      await expectTokensConserved(fx);
      expect(await fx.token.balanceOf(fx.stakingAddress)).to.be.lessThan(100n);
    });
  });
});

// Predicates for event arguments whose exact value is covered elsewhere.
function anyShares(value: bigint): boolean {
  return typeof value === "bigint" && value > 0n;
}
function anyTimestamp(value: bigint): boolean {
  return typeof value === "bigint" && value > 0n;
}

import { expect } from "chai";

import {
  PARAMETERS,
  TIER_THRESHOLDS,
  TIMELOCK_DELAY,
  type Parameters,
  deployStakingFixture,
  encodeCall,
  ethers,
  executeScheduled,
  governanceCall,
  loadFixture,
  scheduleCall,
  time,
} from "./fixtures.ts";
import { expectMissingRole } from "./behaviours.ts";

/** TimelockController's bitmap of expected operation states (1 << state). */
const READY_STATE = ethers.toBeHex(1n << 2n, 32);

describe("Governance", function () {
  describe("production wiring", function () {
    it("gives DEFAULT_ADMIN_ROLE of NodeStaking to the timelock only", async function () {
      const fx = await loadFixture(deployStakingFixture);
      const timelock = await fx.gov.timelock.getAddress();
      expect(await fx.staking.hasRole(fx.roles.admin, timelock)).to.equal(true);
      for (const account of [fx.deployer, fx.governor, fx.slasher, fx.rewarder, fx.pauser]) {
        expect(await fx.staking.hasRole(fx.roles.admin, account.address)).to.equal(false);
      }
      // Every protocol role is administered by DEFAULT_ADMIN_ROLE, i.e. by the timelock.
      for (const role of Object.values(fx.roles)) {
        expect(await fx.staking.getRoleAdmin(role)).to.equal(fx.roles.admin);
      }
    });

    it("leaves the deployer with no role at all", async function () {
      const fx = await loadFixture(deployStakingFixture);
      for (const role of Object.values(fx.roles)) {
        expect(await fx.staking.hasRole(role, fx.deployer.address)).to.equal(false);
      }
      await expectMissingRole(
        fx.staking.connect(fx.deployer).grantRole(fx.roles.admin, fx.deployer.address),
        fx.staking,
        fx.deployer,
        fx.roles.admin,
      );
    });

    it("makes the timelock its own admin, with the governor as sole proposer and open execution", async function () {
      const fx = await loadFixture(deployStakingFixture);
      const { timelock } = fx.gov;
      const self = await timelock.getAddress();
      const [admin, proposer, executor, canceller] = await Promise.all([
        timelock.DEFAULT_ADMIN_ROLE(),
        timelock.PROPOSER_ROLE(),
        timelock.EXECUTOR_ROLE(),
        timelock.CANCELLER_ROLE(),
      ]);
      expect(await timelock.getMinDelay()).to.equal(TIMELOCK_DELAY);
      expect(await timelock.hasRole(admin, self)).to.equal(true);
      expect(await timelock.hasRole(admin, fx.deployer.address)).to.equal(false);
      expect(await timelock.hasRole(admin, fx.governor.address)).to.equal(false);
      expect(await timelock.hasRole(proposer, fx.governor.address)).to.equal(true);
      expect(await timelock.hasRole(canceller, fx.governor.address)).to.equal(true);
      expect(await timelock.hasRole(proposer, fx.deployer.address)).to.equal(false);
      expect(await timelock.hasRole(executor, ethers.ZeroAddress)).to.equal(true);
    });
  });

  describe("timelock", function () {
    const newParameters: Parameters = {
      ...PARAMETERS,
      minSelfStake: PARAMETERS.minSelfStake * 2n,
    };

    it("executes a scheduled call after the delay, by anyone", async function () {
      const fx = await loadFixture(deployStakingFixture);
      const { call, id } = await scheduleCall(fx.gov, await encodeCall(fx.staking, "setParameters", [newParameters]));
      expect(await fx.gov.timelock.isOperationPending(id)).to.equal(true);
      const readyAt = await fx.gov.timelock.getTimestamp(id);
      await time.setNextBlockTimestamp(readyAt);
      await expect(executeScheduled(fx.gov, call, fx.outsider))
        .to.emit(fx.staking, "ParametersSet")
        .and.to.emit(fx.gov.timelock, "CallExecuted");
      expect(await fx.gov.timelock.isOperationDone(id)).to.equal(true);
      expect((await fx.staking.parameters()).minSelfStake).to.equal(newParameters.minSelfStake);
    });

    it("reverts with TimelockUnexpectedOperationState before the delay has passed", async function () {
      const fx = await loadFixture(deployStakingFixture);
      const { call, id } = await scheduleCall(fx.gov, await encodeCall(fx.staking, "setParameters", [newParameters]));
      await expect(executeScheduled(fx.gov, call))
        .to.be.revertedWithCustomError(fx.gov.timelock, "TimelockUnexpectedOperationState")
        .withArgs(id, READY_STATE);
      const readyAt = await fx.gov.timelock.getTimestamp(id);
      await time.setNextBlockTimestamp(readyAt - 1n);
      await expect(executeScheduled(fx.gov, call))
        .to.be.revertedWithCustomError(fx.gov.timelock, "TimelockUnexpectedOperationState")
        .withArgs(id, READY_STATE);
      expect((await fx.staking.parameters()).minSelfStake).to.equal(PARAMETERS.minSelfStake);
    });

    it("reverts for a call never scheduled, and for a second execution", async function () {
      const fx = await loadFixture(deployStakingFixture);
      const unscheduled = {
        ...(await encodeCall(fx.staking, "unpause")),
        value: 0n,
        predecessor: ethers.ZeroHash,
        salt: ethers.id("never"),
      };
      const unscheduledId = await fx.gov.timelock.hashOperation(
        unscheduled.target,
        0n,
        unscheduled.data,
        ethers.ZeroHash,
        unscheduled.salt,
      );
      await expect(executeScheduled(fx.gov, unscheduled))
        .to.be.revertedWithCustomError(fx.gov.timelock, "TimelockUnexpectedOperationState")
        .withArgs(unscheduledId, READY_STATE);

      const { call, id } = await scheduleCall(fx.gov, await encodeCall(fx.staking, "setTierThresholds", [[1n]]));
      await time.increase(TIMELOCK_DELAY);
      await (await executeScheduled(fx.gov, call)).wait();
      await expect(executeScheduled(fx.gov, call))
        .to.be.revertedWithCustomError(fx.gov.timelock, "TimelockUnexpectedOperationState")
        .withArgs(id, READY_STATE);
    });

    it("refuses proposals from anyone but the proposer", async function () {
      const fx = await loadFixture(deployStakingFixture);
      const proposerRole = await fx.gov.timelock.PROPOSER_ROLE();
      const call = await encodeCall(fx.staking, "unpause");
      for (const caller of [fx.deployer, fx.outsider, fx.pauser]) {
        await expectMissingRole(
          fx.gov.timelock
            .connect(caller)
            .schedule(call.target, 0n, call.data, ethers.ZeroHash, ethers.ZeroHash, TIMELOCK_DELAY),
          fx.gov.timelock,
          caller,
          proposerRole,
        );
      }
    });

    it("refuses a delay shorter than the minimum", async function () {
      const fx = await loadFixture(deployStakingFixture);
      const call = await encodeCall(fx.staking, "unpause");
      await expect(
        fx.gov.timelock
          .connect(fx.governor)
          .schedule(call.target, 0n, call.data, ethers.ZeroHash, ethers.ZeroHash, TIMELOCK_DELAY - 1n),
      )
        .to.be.revertedWithCustomError(fx.gov.timelock, "TimelockInsufficientDelay")
        .withArgs(TIMELOCK_DELAY - 1n, TIMELOCK_DELAY);
    });

    it("lets the proposer cancel a pending call", async function () {
      const fx = await loadFixture(deployStakingFixture);
      const { call, id } = await scheduleCall(fx.gov, await encodeCall(fx.staking, "setParameters", [newParameters]));
      await expect(fx.gov.timelock.connect(fx.governor).cancel(id)).to.emit(fx.gov.timelock, "Cancelled").withArgs(id);
      await time.increase(TIMELOCK_DELAY);
      await expect(executeScheduled(fx.gov, call)).to.be.revertedWithCustomError(
        fx.gov.timelock,
        "TimelockUnexpectedOperationState",
      );
    });

    it("changes its own delay only through itself", async function () {
      const fx = await loadFixture(deployStakingFixture);
      await expect(fx.gov.timelock.connect(fx.governor).updateDelay(1n))
        .to.be.revertedWithCustomError(fx.gov.timelock, "TimelockUnauthorizedCaller")
        .withArgs(fx.governor.address);
      await expect(governanceCall(fx.gov, await encodeCall(fx.gov.timelock, "updateDelay", [2n * TIMELOCK_DELAY])))
        .to.emit(fx.gov.timelock, "MinDelayChange")
        .withArgs(TIMELOCK_DELAY, 2n * TIMELOCK_DELAY);
    });

    it("bubbles the target's custom error up through execute", async function () {
      const fx = await loadFixture(deployStakingFixture);
      await expect(
        governanceCall(fx.gov, await encodeCall(fx.staking, "setParameters", [{ ...PARAMETERS, maxSlashBps: 0 }])),
      )
        .to.be.revertedWithCustomError(fx.staking, "InvalidParameter")
        .withArgs("maxSlashBps", 0n);
    });
  });

  describe("NodeStaking constructor", function () {
    async function deployArgs() {
      const [deployer, recipient] = await ethers.getSigners();
      const token = await ethers.deployContract("InframeshToken", [deployer!.address, 1n]);
      return {
        token: await token.getAddress(),
        admin: deployer!.address,
        recipient: recipient!.address,
      };
    }

    it("emits the initial settings and grants the admin role", async function () {
      const { token, admin, recipient } = await deployArgs();
      const staking = await ethers.deployContract("NodeStaking", [
        token,
        admin,
        PARAMETERS,
        TIER_THRESHOLDS,
        recipient,
      ]);
      const deployment = staking.deploymentTransaction();
      await expect(deployment).to.emit(staking, "RoleGranted").withArgs(ethers.ZeroHash, admin, admin);
      await expect(deployment)
        .to.emit(staking, "ParametersSet")
        .withArgs([
          PARAMETERS.minSelfStake,
          PARAMETERS.unbondingPeriod,
          PARAMETERS.jailPeriod,
          PARAMETERS.maxSlashBps,
          PARAMETERS.burnBps,
        ]);
      await expect(deployment).to.emit(staking, "TierThresholdsSet").withArgs(TIER_THRESHOLDS);
      await expect(deployment).to.emit(staking, "RedistributionRecipientSet").withArgs(recipient);
    });

    it("reverts with ZeroAddress for the token, the admin and the recipient", async function () {
      const factory = await ethers.getContractFactory("NodeStaking");
      const { token, admin, recipient } = await deployArgs();
      const cases: [string, string, string, string][] = [
        ["token", ethers.ZeroAddress, admin, recipient],
        ["admin", token, ethers.ZeroAddress, recipient],
        ["redistributionRecipient", token, admin, ethers.ZeroAddress],
      ];
      for (const [name, t, a, r] of cases) {
        await expect(factory.deploy(t, a, PARAMETERS, TIER_THRESHOLDS, r))
          .to.be.revertedWithCustomError(factory, "ZeroAddress")
          .withArgs(name);
      }
    });

    it("reverts with InvalidParameter for out-of-range parameters", async function () {
      const factory = await ethers.getContractFactory("NodeStaking");
      const { token, admin, recipient } = await deployArgs();
      const cases: [Partial<Parameters>, string, bigint][] = [
        [{ minSelfStake: 0n }, "minSelfStake", 0n],
        [{ unbondingPeriod: 0n }, "unbondingPeriod", 0n],
        [{ jailPeriod: 366n * 86_400n }, "jailPeriod", 366n * 86_400n],
        [{ maxSlashBps: 5_001 }, "maxSlashBps", 5_001n],
        [{ burnBps: 20_000 }, "burnBps", 20_000n],
      ];
      for (const [change, name, value] of cases) {
        await expect(factory.deploy(token, admin, { ...PARAMETERS, ...change }, TIER_THRESHOLDS, recipient))
          .to.be.revertedWithCustomError(factory, "InvalidParameter")
          .withArgs(name, value);
      }
    });

    it("reverts for bad initial tier thresholds", async function () {
      const factory = await ethers.getContractFactory("NodeStaking");
      const { token, admin, recipient } = await deployArgs();
      await expect(factory.deploy(token, admin, PARAMETERS, [5n, 4n], recipient))
        .to.be.revertedWithCustomError(factory, "TierThresholdsNotAscending")
        .withArgs(1n, 5n, 4n);
      await expect(
        factory.deploy(
          token,
          admin,
          PARAMETERS,
          Array.from({ length: 17 }, (_, i) => BigInt(i)),
          recipient,
        ),
      )
        .to.be.revertedWithCustomError(factory, "InvalidParameter")
        .withArgs("tierCount", 17n);
    });
  });
});

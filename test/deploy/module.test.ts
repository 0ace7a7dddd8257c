// The Ignition module on the in-process network: what it deploys and how it wires the roles,
// for the dev token and for an existing ERC-20.
import { expect } from "chai";
import { network } from "hardhat";

import { buildInframeshModule } from "../../ignition/modules/Inframesh.ts";
import {
  resolveParameters,
  stakeTokenSource,
  toIgnitionParameters,
  treasurySource,
} from "../../scripts/deploy/parameters.ts";
import { SETTLEMENT_ROLE } from "../../sdk/earnings.ts";
import { DEFAULT_ADMIN_ROLE, PAUSER_ROLE, REWARDER_ROLE, SLASHER_ROLE } from "../../sdk/staking.ts";

const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";

describe("Inframesh Ignition module", function () {
  this.timeout(60_000);

  it("deploys the dev token, the timelock, NodeStaking, the ModelRegistry and settlement, and hands governance to the timelock", async function () {
    const { ethers, ignition } = await network.create();
    const [deployer, holder, proposer, slasher, pauser, rewarder, treasury, oracleA, oracleB, oracleC] =
      await ethers.getSigners();
    const parameters = resolveParameters(
      {
        Inframesh: {
          tokenHolder: holder!.address,
          initialSupply: 1_000n,
          minDelay: 3_600,
          proposers: [proposer!.address],
          minSelfStake: 10n,
          unbondingPeriod: 100,
          jailPeriod: 50,
          maxSlashBps: 2_000,
          burnBps: 2_500,
          tierThresholds: [100, 1_000],
          slasher: slasher!.address,
          pauser: pauser!.address,
          rewarder: rewarder!.address,
          oracles: [oracleA!.address, oracleB!.address, oracleC!.address],
          oracleThreshold: 2,
          challengeWindow: 7_200,
          withdrawalDelay: 172_800,
          treasury: treasury!.address,
          protocolFeeBps: 300,
          royaltyBps: 700,
          zkChallenger: oracleA!.address,
          zkResponseWindow: 7_200,
        },
      },
      deployer!.address,
    );
    const {
      stakeToken,
      timelock,
      nodeStaking,
      modelRegistry,
      paymentEscrow,
      epochSettlement,
      rewardClaims,
      simplenetVerifier,
      zkChallenge,
    } = await ignition.deploy(buildInframeshModule(stakeTokenSource(parameters), treasurySource(parameters)), {
      parameters: toIgnitionParameters(parameters),
    });
    const timelockAddress = await timelock.getAddress();

    expect(await stakeToken.getFunction("balanceOf")(holder!.address)).to.equal(1_000n);
    expect(await nodeStaking.getFunction("STAKE_TOKEN")()).to.equal(await stakeToken.getAddress());

    const p = await nodeStaking.getFunction("parameters")();
    expect([p.minSelfStake, p.unbondingPeriod, p.jailPeriod, p.maxSlashBps, p.burnBps]).to.deep.equal([
      10n,
      100n,
      50n,
      2_000n,
      2_500n,
    ]);
    expect(await nodeStaking.getFunction("tierThresholds")()).to.deep.equal([100n, 1_000n]);
    // Slashed stake to redistribute goes to RewardClaims, which funds it through settlements.
    expect(await nodeStaking.getFunction("redistributionRecipient")()).to.equal(await rewardClaims.getAddress());

    const hasRole = nodeStaking.getFunction("hasRole");
    expect(await hasRole(DEFAULT_ADMIN_ROLE, timelockAddress)).to.equal(true);
    expect(await hasRole(DEFAULT_ADMIN_ROLE, deployer!.address)).to.equal(false);
    expect(await hasRole(SLASHER_ROLE, slasher!.address)).to.equal(true);
    expect(await hasRole(PAUSER_ROLE, pauser!.address)).to.equal(true);
    expect(await hasRole(REWARDER_ROLE, rewarder!.address)).to.equal(true);
    for (const role of [SLASHER_ROLE, PAUSER_ROLE, REWARDER_ROLE]) {
      expect(await hasRole(role, deployer!.address)).to.equal(false);
    }

    const timelockHasRole = timelock.getFunction("hasRole");
    expect(await timelock.getFunction("getMinDelay")()).to.equal(3_600n);
    expect(await timelockHasRole(await timelock.getFunction("PROPOSER_ROLE")(), proposer!.address)).to.equal(true);
    expect(await timelockHasRole(await timelock.getFunction("EXECUTOR_ROLE")(), ZERO_ADDRESS)).to.equal(true);
    expect(await timelockHasRole(DEFAULT_ADMIN_ROLE, timelockAddress)).to.equal(true);
    expect(await timelockHasRole(DEFAULT_ADMIN_ROLE, deployer!.address)).to.equal(false);

    // Settlement: RewardClaims debits the escrow and rewards through staking; the timelock
    // administers the escrow and the settlement; the deployer holds no role on either.
    const tokenAddress = await stakeToken.getAddress();
    const claimsAddress = await rewardClaims.getAddress();
    expect(await paymentEscrow.getFunction("PAYMENT_TOKEN")()).to.equal(tokenAddress);
    expect(await paymentEscrow.getFunction("withdrawalDelay")()).to.equal(172_800n);
    expect(await epochSettlement.getFunction("oracles")()).to.deep.equal([
      oracleA!.address,
      oracleB!.address,
      oracleC!.address,
    ]);
    expect(await epochSettlement.getFunction("threshold")()).to.equal(2n);
    expect(await epochSettlement.getFunction("challengeWindow")()).to.equal(7_200n);
    expect([...(await epochSettlement.getFunction("feeSchedule")())]).to.deep.equal([treasury!.address, 300n, 700n]);
    expect(await rewardClaims.getFunction("SETTLEMENT")()).to.equal(await epochSettlement.getAddress());
    expect(await rewardClaims.getFunction("ESCROW")()).to.equal(await paymentEscrow.getAddress());
    expect(await rewardClaims.getFunction("STAKING")()).to.equal(await nodeStaking.getAddress());
    expect(await rewardClaims.getFunction("TOKEN")()).to.equal(tokenAddress);

    expect(await hasRole(REWARDER_ROLE, claimsAddress)).to.equal(false);
    expect(await nodeStaking.getFunction("redistributionRecipient")()).to.equal(claimsAddress);
    const escrowHasRole = paymentEscrow.getFunction("hasRole");
    expect(await escrowHasRole(SETTLEMENT_ROLE, claimsAddress)).to.equal(true);
    expect(await escrowHasRole(SETTLEMENT_ROLE, deployer!.address)).to.equal(false);
    expect(await escrowHasRole(DEFAULT_ADMIN_ROLE, timelockAddress)).to.equal(true);
    expect(await escrowHasRole(DEFAULT_ADMIN_ROLE, deployer!.address)).to.equal(false);
    const settlementHasRole = epochSettlement.getFunction("hasRole");
    expect(await settlementHasRole(DEFAULT_ADMIN_ROLE, timelockAddress)).to.equal(true);
    expect(await settlementHasRole(DEFAULT_ADMIN_ROLE, deployer!.address)).to.equal(false);

    // zkML: ZkChallenge slashes through staking, opens on the challenger's word, answers to the
    // timelock; the circuit's verifier is deployed for versions to wrap.
    const zkAddress = await zkChallenge.getAddress();
    expect(await hasRole(SLASHER_ROLE, zkAddress)).to.equal(true);
    const zkHasRole = zkChallenge.getFunction("hasRole");
    expect(await zkHasRole(await zkChallenge.getFunction("CHALLENGER_ROLE")(), oracleA!.address)).to.equal(true);
    expect(await zkHasRole(DEFAULT_ADMIN_ROLE, timelockAddress)).to.equal(true);
    expect(await zkHasRole(DEFAULT_ADMIN_ROLE, deployer!.address)).to.equal(false);
    expect(await zkChallenge.getFunction("responseWindow")()).to.equal(7_200n);
    expect(await zkChallenge.getFunction("STAKING")()).to.equal(await nodeStaking.getAddress());
    expect(await zkChallenge.getFunction("MODELS")()).to.equal(await modelRegistry.getAddress());
    expect(await ethers.provider.getCode(await simplenetVerifier.getAddress())).to.not.equal("0x");

    // The registry is permissionless: no models yet, anyone registers and publishes.
    expect(await modelRegistry.getFunction("modelCount")()).to.equal(0n);
    expect(await ethers.provider.getCode(await modelRegistry.getAddress())).to.not.equal("0x");
  });

  it("stakes an existing ERC-20 when stakeToken is set, deploying no dev token", async function () {
    const { ethers, ignition } = await network.create();
    const [deployer] = await ethers.getSigners();
    const existing = await ethers.deployContract("InframeshToken", [deployer!.address, 5n]);
    const existingAddress = await existing.getAddress();
    const nonceBefore = await ethers.provider.getTransactionCount(deployer!.address);

    const parameters = resolveParameters({ Inframesh: { stakeToken: existingAddress } }, deployer!.address);
    const { stakeToken, timelock, nodeStaking, paymentEscrow, epochSettlement, rewardClaims } = await ignition.deploy(
      buildInframeshModule(stakeTokenSource(parameters)),
      { parameters: toIgnitionParameters(parameters) },
    );

    expect(await stakeToken.getAddress()).to.equal(existingAddress);
    expect(await nodeStaking.getFunction("STAKE_TOKEN")()).to.equal(existingAddress);
    expect(await paymentEscrow.getFunction("PAYMENT_TOKEN")()).to.equal(existingAddress);
    expect(await rewardClaims.getFunction("TOKEN")()).to.equal(existingAddress);
    // Defaults: the deployer alone is the committee, threshold 1.
    expect(await epochSettlement.getFunction("oracles")()).to.deep.equal([deployer!.address]);
    expect(await epochSettlement.getFunction("threshold")()).to.equal(1n);
    // Default fee schedule: protocol fees to the timelock, 5% fee, 10% royalty.
    expect([...(await epochSettlement.getFunction("feeSchedule")())]).to.deep.equal([
      await timelock.getAddress(),
      500n,
      1_000n,
    ]);
    expect(await nodeStaking.getFunction("redistributionRecipient")()).to.equal(await rewardClaims.getAddress());
    // timelock, NodeStaking, five grants (one to ZkChallenge), the redistribution recipient and the
    // renounce, the ModelRegistry, PaymentEscrow, EpochSettlement, RewardClaims, two escrow grants
    // and the escrow renounce, SimplenetVerifier, ZkChallenge, its two grants and its renounce:
    // no token deployment.
    expect((await ethers.provider.getTransactionCount(deployer!.address)) - nonceBefore).to.equal(21);
  });
});

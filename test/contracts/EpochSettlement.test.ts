import { anyValue } from "@nomicfoundation/hardhat-ethers-chai-matchers/withArgs";
import { expect } from "chai";
import { Wallet } from "ethers";
import { type Address, type Hex, parseSignature, serializeSignature, toHex } from "viem";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";

import { type Settlement, hashSettlement, inframeshDomain, signSettlement } from "../../sdk/eip712.ts";
import type { EpochSettlement } from "../../types/ethers-contracts/index.js";
import { expectMissingRole } from "./behaviours.ts";
import {
  DAY,
  type Governance,
  type Signer,
  deployTimelock,
  encodeCall,
  ethers,
  governanceCall,
  loadFixture,
  time,
} from "./fixtures.ts";

// ------------------------------------------------------------------ fixtures

const CHALLENGE_WINDOW = 2n * DAY;
const MIN_CHALLENGE_WINDOW = 3600n;
const MAX_CHALLENGE_WINDOW = 30n * DAY;
const THRESHOLD = 2n;
const TREASURY = ethers.getAddress("0x00000000000000000000000000000000007ea5b7");
const FEE_SCHEDULE = { treasury: TREASURY, protocolFeeBps: 500, royaltyBps: 1_000 };
const MAX_FEE_BPS = 5_000;
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** A committee member: a viem account that signs and an ethers wallet (same key, funded) that sends. */
type Oracle = { account: PrivateKeyAccount; wallet: Wallet; address: Address };

type SettlementFixture = {
  settlement: EpochSettlement;
  settlementAddress: Address;
  chainId: bigint;
  gov: Governance;
  deployer: Signer;
  outsider: Signer;
  /** Three oracles sorted by ascending address; the committee needs 2 of them. */
  oracles: [Oracle, Oracle, Oracle];
  roles: { admin: string };
};

async function makeOracle(funder: Signer): Promise<Oracle> {
  const key = generatePrivateKey();
  const account = privateKeyToAccount(key);
  const wallet = new Wallet(key, ethers.provider);
  await (await funder.sendTransaction({ to: account.address, value: ethers.parseEther("10") })).wait();
  return { account, wallet, address: account.address };
}

const byAddress = (a: { address: string }, b: { address: string }) => (BigInt(a.address) < BigInt(b.address) ? -1 : 1);

async function deploySettlementFixture(): Promise<SettlementFixture> {
  const [deployer, governor, outsider] = await ethers.getSigners();
  if (!deployer || !governor || !outsider) throw new Error("not enough signers");
  const made = [await makeOracle(deployer), await makeOracle(deployer), await makeOracle(deployer)].sort(byAddress);
  const oracles = made as [Oracle, Oracle, Oracle];
  const gov = await deployTimelock(governor);
  const settlement = await ethers.deployContract("EpochSettlement", [
    deployer.address,
    oracles.map((o) => o.address),
    THRESHOLD,
    CHALLENGE_WINDOW,
    FEE_SCHEDULE,
  ]);
  const roles = { admin: await settlement.DEFAULT_ADMIN_ROLE() };
  await (await settlement.grantRole(roles.admin, await gov.timelock.getAddress())).wait();
  await (await settlement.renounceRole(roles.admin, deployer.address)).wait();
  const { chainId } = await ethers.provider.getNetwork();
  const settlementAddress = (await settlement.getAddress()) as Address;
  return { settlement, settlementAddress, chainId, gov, deployer, outsider, oracles, roles };
}

function settlementFor(epoch: bigint, overrides: Partial<Settlement> = {}): Settlement {
  return {
    epoch,
    earningsRoot: toHex(ethers.randomBytes(32)),
    totalDebits: 1_000n * 10n ** 18n,
    fees: 50n * 10n ** 18n,
    royalties: 100n * 10n ** 18n,
    redistributedSlash: 5n * 10n ** 18n,
    receiptCount: 1_000n,
    batchSha256: toHex(ethers.randomBytes(32)),
    ...overrides,
  };
}

/** Signatures of `settlement` by `signers`, in the order given, under the fixture's domain (or `verifyingContract`). */
function sign(
  fx: SettlementFixture,
  settlement: Settlement,
  signers: readonly Oracle[],
  options: { chainId?: bigint; verifyingContract?: Address } = {},
): Promise<Hex[]> {
  const domain = inframeshDomain(options.chainId ?? fx.chainId, options.verifyingContract ?? fx.settlementAddress);
  return Promise.all(signers.map((o) => signSettlement(o.account, domain, settlement)));
}

async function post(fx: SettlementFixture, settlement: Settlement, signers: readonly Oracle[] = fx.oracles) {
  return fx.settlement.post(settlement, await sign(fx, settlement, signers));
}

/** Epoch 0 posted with two signatures, its challenge window open. */
async function postedFixture(): Promise<SettlementFixture & { posted: Settlement }> {
  const fx = await deploySettlementFixture();
  const posted = settlementFor(0n);
  await (await post(fx, posted, fx.oracles.slice(0, 2))).wait();
  return { ...fx, posted };
}

const Status = { None: 0n, Posted: 1n, Voided: 2n, Finalised: 3n };

const callGov = (fx: SettlementFixture, fn: string, args: readonly unknown[]) =>
  encodeCall(fx.settlement, fn, args).then((call) => governanceCall(fx.gov, call));

// ------------------------------------------------------------------ tests

describe("EpochSettlement", function () {
  describe("deployment", function () {
    it("stores the committee, threshold and challenge window; epoch 0 is next", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      expect(await fx.settlement.oracles()).to.deep.equal(fx.oracles.map((o) => o.address));
      for (const o of fx.oracles) expect(await fx.settlement.isOracle(o.address)).to.equal(true);
      expect(await fx.settlement.isOracle(fx.outsider.address)).to.equal(false);
      expect(await fx.settlement.threshold()).to.equal(THRESHOLD);
      expect(await fx.settlement.challengeWindow()).to.equal(CHALLENGE_WINDOW);
      expect(await fx.settlement.nextEpoch()).to.equal(0n);
      expect(await fx.settlement.MAX_ORACLES()).to.equal(32n);
      expect(await fx.settlement.MIN_CHALLENGE_WINDOW()).to.equal(MIN_CHALLENGE_WINDOW);
      expect(await fx.settlement.MAX_CHALLENGE_WINDOW()).to.equal(MAX_CHALLENGE_WINDOW);
      expect(await fx.settlement.hasRole(fx.roles.admin, await fx.gov.timelock.getAddress())).to.equal(true);
      expect(await fx.settlement.hasRole(fx.roles.admin, fx.deployer.address)).to.equal(false);
    });

    it("is the verifying contract of the Inframesh EIP-712 domain", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      const domain = await fx.settlement.eip712Domain();
      expect(domain.name).to.equal("Inframesh");
      expect(domain.version).to.equal("1");
      expect(domain.verifyingContract).to.equal(fx.settlementAddress);
      const s = settlementFor(3n);
      expect(await fx.settlement.hashSettlement(s)).to.equal(
        hashSettlement(inframeshDomain(fx.chainId, fx.settlementAddress), s),
      );
    });

    it("emits CommitteeSet and ChallengeWindowSet at construction", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      const members = fx.oracles.map((o) => o.address);
      const deployed = await ethers.deployContract("EpochSettlement", [
        fx.deployer.address,
        members,
        1n,
        CHALLENGE_WINDOW,
        FEE_SCHEDULE,
      ]);
      const tx = deployed.deploymentTransaction();
      await expect(tx).to.emit(deployed, "CommitteeSet").withArgs(members, 1n);
      await expect(tx).to.emit(deployed, "ChallengeWindowSet").withArgs(CHALLENGE_WINDOW);
    });

    it("reverts on a zero admin, a bad committee or a bad window", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      const factory = await ethers.getContractFactory("EpochSettlement");
      const admin = fx.deployer.address;
      const [a, b] = [fx.oracles[0].address, fx.oracles[1].address];
      await expect(factory.deploy(ethers.ZeroAddress, [a], 1n, CHALLENGE_WINDOW, FEE_SCHEDULE))
        .to.be.revertedWithCustomError(fx.settlement, "ZeroAddress")
        .withArgs("admin");
      const tooMany = Array.from({ length: 33 }, (_, i) => ethers.toBeHex(i + 1, 20));
      const badCommittees: [string[], bigint][] = [
        [[], 0n],
        [[a], 0n],
        [[a, b], 3n],
        [tooMany, 1n],
      ];
      for (const [members, k] of badCommittees) {
        await expect(factory.deploy(admin, members, k, CHALLENGE_WINDOW, FEE_SCHEDULE))
          .to.be.revertedWithCustomError(fx.settlement, "InvalidCommittee")
          .withArgs(members.length, k);
      }
      await expect(factory.deploy(admin, [a, ethers.ZeroAddress], 1n, CHALLENGE_WINDOW, FEE_SCHEDULE))
        .to.be.revertedWithCustomError(fx.settlement, "InvalidOracle")
        .withArgs(ethers.ZeroAddress);
      await expect(factory.deploy(admin, [a, b, a], 1n, CHALLENGE_WINDOW, FEE_SCHEDULE))
        .to.be.revertedWithCustomError(fx.settlement, "InvalidOracle")
        .withArgs(a);
      for (const window of [MIN_CHALLENGE_WINDOW - 1n, MAX_CHALLENGE_WINDOW + 1n]) {
        await expect(factory.deploy(admin, [a], 1n, window, FEE_SCHEDULE))
          .to.be.revertedWithCustomError(fx.settlement, "InvalidParameter")
          .withArgs("challengeWindow", window);
      }
    });
  });

  // ---------------------------------------------------------------- post

  describe("post", function () {
    it("posts with k of n signatures (submitted by anyone) and records the settlement", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      const s = settlementFor(0n);
      const digest = hashSettlement(inframeshDomain(fx.chainId, fx.settlementAddress), s);
      const signatures = await sign(fx, s, [fx.oracles[0], fx.oracles[2]]);
      expect(await fx.settlement.connect(fx.outsider).post.staticCall(s, signatures)).to.equal(digest);
      const sent = fx.settlement.connect(fx.outsider).post(s, signatures);
      const receipt = await (await sent).wait();
      const block = await ethers.provider.getBlock(receipt!.blockNumber);
      const finalisableAt = BigInt(block!.timestamp) + CHALLENGE_WINDOW;
      await expect(sent).to.emit(fx.settlement, "SettlementPosted").withArgs(0n, digest, anyValue, finalisableAt);
      const record = await fx.settlement.settlementOf(0n);
      expect(record.settlementHash).to.equal(digest);
      expect(record.finalisableAt).to.equal(finalisableAt);
      expect(record.status).to.equal(Status.Posted);
      expect(await fx.settlement.nextEpoch()).to.equal(0n);
    });

    it("the posted event carries every field of the settlement", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      const s = settlementFor(0n);
      const receipt = await (await post(fx, s)).wait();
      const parsed = receipt!.logs.map((log) => fx.settlement.interface.parseLog(log)).find((l) => l !== null);
      const emitted = parsed!.args.settlement;
      expect(emitted.epoch).to.equal(s.epoch);
      expect(emitted.earningsRoot).to.equal(s.earningsRoot);
      expect(emitted.totalDebits).to.equal(s.totalDebits);
      expect(emitted.fees).to.equal(s.fees);
      expect(emitted.royalties).to.equal(s.royalties);
      expect(emitted.redistributedSlash).to.equal(s.redistributedSlash);
      expect(emitted.receiptCount).to.equal(s.receiptCount);
      expect(emitted.batchSha256).to.equal(s.batchSha256);
    });

    it("accepts all n signatures", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      await expect(post(fx, settlementFor(0n), fx.oracles)).to.emit(fx.settlement, "SettlementPosted");
    });

    it("reverts with InsufficientSignatures below the threshold", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      await expect(post(fx, settlementFor(0n), [fx.oracles[1]]))
        .to.be.revertedWithCustomError(fx.settlement, "InsufficientSignatures")
        .withArgs(1, THRESHOLD);
    });

    it("reverts with NotAnOracle for a signature by someone outside the committee", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      const s = settlementFor(0n);
      const stranger = privateKeyToAccount(generatePrivateKey());
      const signatures = await sign(fx, s, [fx.oracles[0]]);
      signatures.push(await signSettlement(stranger, inframeshDomain(fx.chainId, fx.settlementAddress), s));
      await expect(fx.settlement.post(s, signatures))
        .to.be.revertedWithCustomError(fx.settlement, "NotAnOracle")
        .withArgs(1, stranger.address);
    });

    it("refuses signatures made for another chain id", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      const s = settlementFor(0n);
      const signatures = await sign(fx, s, fx.oracles.slice(0, 2), { chainId: fx.chainId + 1n });
      await expect(fx.settlement.post(s, signatures))
        .to.be.revertedWithCustomError(fx.settlement, "NotAnOracle")
        .withArgs(0, anyValue);
    });

    it("refuses signatures made for another settlement contract (same committee)", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      const twin = await ethers.deployContract("EpochSettlement", [
        fx.deployer.address,
        fx.oracles.map((o) => o.address),
        THRESHOLD,
        CHALLENGE_WINDOW,
        FEE_SCHEDULE,
      ]);
      const s = settlementFor(0n);
      const forTwin = await sign(fx, s, fx.oracles.slice(0, 2), {
        verifyingContract: (await twin.getAddress()) as Address,
      });
      await expect(twin.post(s, forTwin)).to.emit(twin, "SettlementPosted");
      await expect(fx.settlement.post(s, forTwin))
        .to.be.revertedWithCustomError(fx.settlement, "NotAnOracle")
        .withArgs(0, anyValue);
    });

    it("refuses signatures of a different settlement (total debits changed by 1 wei)", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      const s = settlementFor(0n);
      const signatures = await sign(fx, s, fx.oracles.slice(0, 2));
      await expect(fx.settlement.post({ ...s, totalDebits: s.totalDebits + 1n }, signatures))
        .to.be.revertedWithCustomError(fx.settlement, "NotAnOracle")
        .withArgs(0, anyValue);
    });

    it("reverts with SignersNotAscending when one oracle signs twice or the order is wrong", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      const s = settlementFor(0n);
      const [a, b] = fx.oracles;
      const [sigA, sigB] = await sign(fx, s, [a, b]);
      await expect(fx.settlement.post(s, [sigA!, sigA!]))
        .to.be.revertedWithCustomError(fx.settlement, "SignersNotAscending")
        .withArgs(1, a.address, a.address);
      await expect(fx.settlement.post(s, [sigB!, sigA!]))
        .to.be.revertedWithCustomError(fx.settlement, "SignersNotAscending")
        .withArgs(1, a.address, b.address);
    });

    it("reverts with InvalidSignature for a malformed or high-s signature", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      const s = settlementFor(0n);
      const [sigA, sigB] = await sign(fx, s, fx.oracles.slice(0, 2));
      const { r, s: sValue, yParity } = parseSignature(sigB!);
      const twin = serializeSignature({
        r,
        s: toHex(SECP256K1_N - BigInt(sValue), { size: 32 }),
        yParity: yParity === 0 ? 1 : 0,
      });
      for (const bad of [sigB!.slice(0, 130) as Hex, "0x" as Hex, twin]) {
        await expect(fx.settlement.post(s, [sigA!, bad]))
          .to.be.revertedWithCustomError(fx.settlement, "InvalidSignature")
          .withArgs(1);
      }
    });

    it("reverts with UnexpectedEpoch for any epoch but the next", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      await expect(post(fx, settlementFor(1n)))
        .to.be.revertedWithCustomError(fx.settlement, "UnexpectedEpoch")
        .withArgs(1n, 0n);
    });

    it("cannot be applied twice: a pending epoch reverts with UnexpectedStatus, a final one with UnexpectedEpoch", async function () {
      const fx = await loadFixture(postedFixture);
      await expect(post(fx, fx.posted))
        .to.be.revertedWithCustomError(fx.settlement, "UnexpectedStatus")
        .withArgs(0n, Status.Posted);
      await expect(post(fx, settlementFor(0n)))
        .to.be.revertedWithCustomError(fx.settlement, "UnexpectedStatus")
        .withArgs(0n, Status.Posted);
      await time.increase(CHALLENGE_WINDOW);
      await (await fx.settlement.finalise(0n)).wait();
      await expect(post(fx, fx.posted))
        .to.be.revertedWithCustomError(fx.settlement, "UnexpectedEpoch")
        .withArgs(0n, 1n);
    });
  });

  // ---------------------------------------------------------------- void

  describe("voidSettlement", function () {
    it("an oracle voids during the window with a reason; the epoch can then be posted again", async function () {
      const fx = await loadFixture(postedFixture);
      const { settlementHash } = await fx.settlement.settlementOf(0n);
      const oracle = fx.oracles[2];
      await expect(fx.settlement.connect(oracle.wallet).voidSettlement(0n, "earnings root mismatch"))
        .to.emit(fx.settlement, "SettlementVoided")
        .withArgs(0n, settlementHash, oracle.address, "earnings root mismatch");
      expect((await fx.settlement.settlementOf(0n)).status).to.equal(Status.Voided);
      expect(await fx.settlement.nextEpoch()).to.equal(0n);
      const corrected = settlementFor(0n);
      await expect(post(fx, corrected)).to.emit(fx.settlement, "SettlementPosted");
      expect((await fx.settlement.settlementOf(0n)).status).to.equal(Status.Posted);
    });

    it("governance voids through the timelock", async function () {
      const fx = await loadFixture(postedFixture);
      await expect(callGov(fx, "voidSettlement", [0n, "governance"]))
        .to.emit(fx.settlement, "SettlementVoided")
        .withArgs(0n, anyValue, await fx.gov.timelock.getAddress(), "governance");
    });

    it("reverts with NotOracleOrGovernance for anyone else", async function () {
      const fx = await loadFixture(postedFixture);
      for (const caller of [fx.outsider, fx.deployer]) {
        await expect(fx.settlement.connect(caller).voidSettlement(0n, "no"))
          .to.be.revertedWithCustomError(fx.settlement, "NotOracleOrGovernance")
          .withArgs(caller.address);
      }
    });

    it("reverts with ChallengeWindowClosed from finalisableAt on", async function () {
      const fx = await loadFixture(postedFixture);
      const { finalisableAt } = await fx.settlement.settlementOf(0n);
      await time.setNextBlockTimestamp(finalisableAt);
      await expect(fx.settlement.connect(fx.oracles[0].wallet).voidSettlement(0n, "late"))
        .to.be.revertedWithCustomError(fx.settlement, "ChallengeWindowClosed")
        .withArgs(0n, finalisableAt, finalisableAt);
    });

    it("reverts with UnexpectedStatus for a final epoch", async function () {
      const fx = await loadFixture(postedFixture);
      await time.increase(CHALLENGE_WINDOW);
      await (await fx.settlement.finalise(0n)).wait();
      await expect(fx.settlement.connect(fx.oracles[0].wallet).voidSettlement(0n, "too late"))
        .to.be.revertedWithCustomError(fx.settlement, "UnexpectedStatus")
        .withArgs(0n, Status.Finalised);
    });

    it("reverts with UnexpectedStatus for an epoch not posted or already voided", async function () {
      const fx = await loadFixture(postedFixture);
      const oracle = fx.oracles[0].wallet;
      await expect(fx.settlement.connect(oracle).voidSettlement(1n, "none"))
        .to.be.revertedWithCustomError(fx.settlement, "UnexpectedStatus")
        .withArgs(1n, Status.None);
      await (await fx.settlement.connect(oracle).voidSettlement(0n, "first")).wait();
      await expect(fx.settlement.connect(oracle).voidSettlement(0n, "again"))
        .to.be.revertedWithCustomError(fx.settlement, "UnexpectedStatus")
        .withArgs(0n, Status.Voided);
    });
  });

  // ---------------------------------------------------------------- finalise

  describe("finalise", function () {
    it("reverts with ChallengeWindowOpen one second before finalisableAt", async function () {
      const fx = await loadFixture(postedFixture);
      const { finalisableAt } = await fx.settlement.settlementOf(0n);
      await time.setNextBlockTimestamp(finalisableAt - 1n);
      await expect(fx.settlement.finalise(0n))
        .to.be.revertedWithCustomError(fx.settlement, "ChallengeWindowOpen")
        .withArgs(0n, finalisableAt, finalisableAt - 1n);
    });

    it("anyone finalises at finalisableAt; the next epoch opens", async function () {
      const fx = await loadFixture(postedFixture);
      const { finalisableAt, settlementHash } = await fx.settlement.settlementOf(0n);
      await time.setNextBlockTimestamp(finalisableAt);
      await expect(fx.settlement.connect(fx.outsider).finalise(0n))
        .to.emit(fx.settlement, "SettlementFinalised")
        .withArgs(0n, settlementHash);
      expect((await fx.settlement.settlementOf(0n)).status).to.equal(Status.Finalised);
      expect(await fx.settlement.nextEpoch()).to.equal(1n);
      await expect(post(fx, settlementFor(1n))).to.emit(fx.settlement, "SettlementPosted");
    });

    it("reverts with UnexpectedStatus for an epoch not posted, voided or already final", async function () {
      const fx = await loadFixture(postedFixture);
      await time.increase(CHALLENGE_WINDOW);
      await expect(fx.settlement.finalise(1n))
        .to.be.revertedWithCustomError(fx.settlement, "UnexpectedStatus")
        .withArgs(1n, Status.None);
      await (await fx.settlement.finalise(0n)).wait();
      await expect(fx.settlement.finalise(0n))
        .to.be.revertedWithCustomError(fx.settlement, "UnexpectedStatus")
        .withArgs(0n, Status.Finalised);
    });

    it("a voided settlement cannot be finalised", async function () {
      const fx = await loadFixture(postedFixture);
      await (await fx.settlement.connect(fx.oracles[1].wallet).voidSettlement(0n, "bad batch")).wait();
      await time.increase(CHALLENGE_WINDOW);
      await expect(fx.settlement.finalise(0n))
        .to.be.revertedWithCustomError(fx.settlement, "UnexpectedStatus")
        .withArgs(0n, Status.Voided);
    });
  });

  // ---------------------------------------------------------------- governance

  describe("setCommittee", function () {
    it("replaces the committee through the timelock; former members' signatures are refused", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      const [a, b, c] = fx.oracles;
      const fresh = await makeOracle(fx.deployer);
      const members = [c.address, fresh.address];
      await expect(callGov(fx, "setCommittee", [members, 1n]))
        .to.emit(fx.settlement, "CommitteeSet")
        .withArgs(members, 1n);
      expect(await fx.settlement.oracles()).to.deep.equal(members);
      expect(await fx.settlement.threshold()).to.equal(1n);
      expect(await fx.settlement.isOracle(a.address)).to.equal(false);
      expect(await fx.settlement.isOracle(b.address)).to.equal(false);
      expect(await fx.settlement.isOracle(fresh.address)).to.equal(true);
      const s = settlementFor(0n);
      await expect(post(fx, s, [a]))
        .to.be.revertedWithCustomError(fx.settlement, "NotAnOracle")
        .withArgs(0, a.address);
      await expect(post(fx, s, [fresh])).to.emit(fx.settlement, "SettlementPosted");
      await expect(fx.settlement.connect(a.wallet).voidSettlement(0n, "former member"))
        .to.be.revertedWithCustomError(fx.settlement, "NotOracleOrGovernance")
        .withArgs(a.address);
    });

    it("reverts with InvalidCommittee or InvalidOracle for a bad committee", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      const a = fx.oracles[0].address;
      await expect(callGov(fx, "setCommittee", [[a], 2n]))
        .to.be.revertedWithCustomError(fx.settlement, "InvalidCommittee")
        .withArgs(1, 2n);
      await expect(callGov(fx, "setCommittee", [[a, a], 1n]))
        .to.be.revertedWithCustomError(fx.settlement, "InvalidOracle")
        .withArgs(a);
    });

    it("requires DEFAULT_ADMIN_ROLE (the timelock)", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      for (const caller of [fx.outsider, fx.deployer]) {
        await expectMissingRole(
          fx.settlement.connect(caller).setCommittee([caller.address], 1n),
          fx.settlement,
          caller,
          fx.roles.admin,
        );
      }
      const oracle = fx.oracles[0].wallet;
      await expectMissingRole(
        fx.settlement.connect(oracle).setCommittee([oracle.address], 1n),
        fx.settlement,
        oracle,
        fx.roles.admin,
      );
    });
  });

  describe("setChallengeWindow", function () {
    it("sets the window through the timelock for settlements posted from then on", async function () {
      const fx = await loadFixture(postedFixture);
      const { finalisableAt } = await fx.settlement.settlementOf(0n);
      await expect(callGov(fx, "setChallengeWindow", [MAX_CHALLENGE_WINDOW]))
        .to.emit(fx.settlement, "ChallengeWindowSet")
        .withArgs(MAX_CHALLENGE_WINDOW);
      expect(await fx.settlement.challengeWindow()).to.equal(MAX_CHALLENGE_WINDOW);
      expect((await fx.settlement.settlementOf(0n)).finalisableAt).to.equal(finalisableAt);
    });

    it("accepts exactly MIN (MAX is set above) and reverts with InvalidParameter outside [MIN, MAX]", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      await callGov(fx, "setChallengeWindow", [MIN_CHALLENGE_WINDOW]);
      expect(await fx.settlement.challengeWindow()).to.equal(MIN_CHALLENGE_WINDOW);
      for (const window of [MIN_CHALLENGE_WINDOW - 1n, MAX_CHALLENGE_WINDOW + 1n]) {
        await expect(callGov(fx, "setChallengeWindow", [window]))
          .to.be.revertedWithCustomError(fx.settlement, "InvalidParameter")
          .withArgs("challengeWindow", window);
      }
    });

    it("requires DEFAULT_ADMIN_ROLE (the timelock)", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      await expectMissingRole(
        fx.settlement.connect(fx.outsider).setChallengeWindow(MIN_CHALLENGE_WINDOW),
        fx.settlement,
        fx.outsider,
        fx.roles.admin,
      );
    });
  });

  describe("fee schedule", function () {
    const feeScheduleOf = async (fx: SettlementFixture) => {
      const { treasury, protocolFeeBps, royaltyBps } = await fx.settlement.feeSchedule();
      return { treasury, protocolFeeBps: Number(protocolFeeBps), royaltyBps: Number(royaltyBps) };
    };

    it("is set at construction (FeeScheduleSet emitted) and readable", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      expect(await feeScheduleOf(fx)).to.deep.equal(FEE_SCHEDULE);
      expect(await fx.settlement.MAX_FEE_BPS()).to.equal(BigInt(MAX_FEE_BPS));
      const deployed = await ethers.deployContract("EpochSettlement", [
        fx.deployer.address,
        [fx.oracles[0].address],
        1n,
        CHALLENGE_WINDOW,
        { treasury: fx.outsider.address, protocolFeeBps: 0, royaltyBps: MAX_FEE_BPS },
      ]);
      await expect(deployed.deploymentTransaction())
        .to.emit(deployed, "FeeScheduleSet")
        .withArgs(fx.outsider.address, 0, MAX_FEE_BPS);
    });

    it("refuses at construction a zero treasury or fees above MAX_FEE_BPS", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      const factory = await ethers.getContractFactory("EpochSettlement");
      const bad = [
        { treasury: ethers.ZeroAddress, protocolFeeBps: 500, royaltyBps: 1_000 },
        { treasury: TREASURY, protocolFeeBps: 2_501, royaltyBps: 2_500 },
        { treasury: TREASURY, protocolFeeBps: MAX_FEE_BPS + 1, royaltyBps: 0 },
        { treasury: TREASURY, protocolFeeBps: 65_535, royaltyBps: 65_535 },
      ];
      for (const schedule of bad) {
        await expect(factory.deploy(fx.deployer.address, [fx.oracles[0].address], 1n, CHALLENGE_WINDOW, schedule))
          .to.be.revertedWithCustomError(fx.settlement, "InvalidFeeSchedule")
          .withArgs(schedule.treasury, schedule.protocolFeeBps, schedule.royaltyBps);
      }
    });

    it("governance sets it through the timelock; MAX_FEE_BPS in all is accepted", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      const next = { treasury: fx.outsider.address, protocolFeeBps: 2_000, royaltyBps: 3_000 };
      await expect(callGov(fx, "setFeeSchedule", [next]))
        .to.emit(fx.settlement, "FeeScheduleSet")
        .withArgs(next.treasury, next.protocolFeeBps, next.royaltyBps);
      expect(await feeScheduleOf(fx)).to.deep.equal(next);
      const none = { treasury: TREASURY, protocolFeeBps: 0, royaltyBps: 0 };
      await callGov(fx, "setFeeSchedule", [none]);
      expect(await feeScheduleOf(fx)).to.deep.equal(none);
    });

    it("governance cannot set a zero treasury or fees above MAX_FEE_BPS; the schedule is unchanged", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      for (const schedule of [
        { treasury: ethers.ZeroAddress, protocolFeeBps: 0, royaltyBps: 0 },
        { treasury: TREASURY, protocolFeeBps: 1, royaltyBps: MAX_FEE_BPS },
      ]) {
        await expect(callGov(fx, "setFeeSchedule", [schedule]))
          .to.be.revertedWithCustomError(fx.settlement, "InvalidFeeSchedule")
          .withArgs(schedule.treasury, schedule.protocolFeeBps, schedule.royaltyBps);
      }
      expect(await feeScheduleOf(fx)).to.deep.equal(FEE_SCHEDULE);
    });

    it("requires DEFAULT_ADMIN_ROLE (the timelock): not an oracle, not the deployer", async function () {
      const fx = await loadFixture(deploySettlementFixture);
      for (const caller of [fx.outsider, fx.deployer, fx.oracles[0].wallet]) {
        await expectMissingRole(
          fx.settlement.connect(caller).setFeeSchedule(FEE_SCHEDULE),
          fx.settlement,
          caller,
          fx.roles.admin,
        );
      }
    });
  });
});

// On chain: the generated SimplenetVerifier, a version's ZkInferenceVerifier recorded in the model
// registry, and ZkChallenge slashing through NodeStaking — with real proofs on the Hardhat EVM.
import { expect } from "chai";

import {
  type InferenceProof,
  loadSetup,
  prove,
  releaseZkResources,
  solidityCallData,
  type ZkProofJson,
} from "../../circuits/prover.ts";
import { loadQuantisedSimplenet } from "../../circuits/simplenet/model.ts";
import { FIELD_PRIME, quantiseInput } from "../../circuits/simplenet/quantised.ts";
import { verifyingKeyHashOf } from "../../circuits/zk-verifier.ts";
import {
  deployStakingFixture,
  encodeCall,
  ethers,
  governanceCall,
  loadFixture,
  PARAMETERS,
  registerAndStake,
  time,
} from "../contracts/fixtures.ts";

const HOUR = 3600n;
const RESPONSE_WINDOW = 6n * HOUR;
const JOB = ethers.id("job-1");
const INPUT_A = [0.5, -1, 2, 0.25, 1, 1, 1, 1, -3, 0, 0, 0, 1.5, 1, 1, 1];
const INPUT_B = INPUT_A.map((v, i) => (i === 3 ? -v : v));

const asStruct = (zk: ZkProofJson) => {
  const { a, b, c } = solidityCallData(zk);
  return { a, b, c };
};

let proofA: InferenceProof;
let proofB: InferenceProof;
let proofOtherVersion: InferenceProof;
let verifyingKeyHash: string;

async function deployZkFixture() {
  const fx = await deployStakingFixture();
  const [node] = fx.operators;
  await registerAndStake(fx, node, PARAMETERS.minSelfStake * 10n);

  const groth16 = await ethers.deployContract("SimplenetVerifier");
  const versionVerifier = await ethers.deployContract("ZkInferenceVerifier", [
    await groth16.getAddress(),
    proofA.expected.weightsCommitment,
    verifyingKeyHash,
  ]);
  const models = await ethers.deployContract("ModelRegistry");
  const publisher = fx.deployer;
  await (await models.connect(publisher).registerModel("simplenet")).wait();
  const version = (overrides: { version: string; zkVerifier: string; verifyingKeyHash: string }) => ({
    descriptorHash: ethers.id("model.yaml"),
    manifestHash: ethers.id(overrides.version).slice(2),
    shardRoot: ethers.id("root"),
    shardCount: 1,
    price: 1_000n,
    access: { kind: 0, token: ethers.ZeroAddress, threshold: 0n },
    ...overrides,
  });
  // Version 0 requires zk proofs; version 1 does not.
  await (
    await models.publishVersion(
      1n,
      version({ version: "1.0.0-zk", zkVerifier: await versionVerifier.getAddress(), verifyingKeyHash }),
    )
  ).wait();
  await (
    await models.publishVersion(
      1n,
      version({ version: "1.0.0", zkVerifier: ethers.ZeroAddress, verifyingKeyHash: ethers.ZeroHash }),
    )
  ).wait();

  const challenge = await ethers.deployContract("ZkChallenge", [
    fx.stakingAddress,
    await models.getAddress(),
    await fx.gov.timelock.getAddress(),
    RESPONSE_WINDOW,
  ]);
  // Wiring: the timelock grants ZkChallenge the slasher role and the keeper the challenger role.
  await governanceCall(
    fx.gov,
    await encodeCall(fx.staking, "grantRole", [fx.roles.slasher, await challenge.getAddress()]),
  );
  const keeper = fx.slasher;
  await governanceCall(
    fx.gov,
    await encodeCall(challenge, "grantRole", [await challenge.CHALLENGER_ROLE(), keeper.address]),
  );
  return { ...fx, node, keeper, groth16, versionVerifier, models, challenge };
}

describe("zk on chain", function () {
  this.timeout(180_000);

  before(async function () {
    const setup = await loadSetup();
    const { weights } = await loadQuantisedSimplenet();
    const other = Int8Array.from(weights);
    other[7] = (other[7] as number) - 1;
    proofA = await prove(setup, weights, quantiseInput(INPUT_A));
    proofB = await prove(setup, weights, quantiseInput(INPUT_B));
    proofOtherVersion = await prove(setup, other, quantiseInput(INPUT_A));
    verifyingKeyHash = await verifyingKeyHashOf();
  });

  after(releaseZkResources);

  describe("SimplenetVerifier and ZkInferenceVerifier", function () {
    it("accept a real proof and refuse other signals, a swapped order and tampered points", async function () {
      const { groth16, versionVerifier } = await loadFixture(deployZkFixture);
      const call = solidityCallData(proofA.zkProof);
      const [commitment, inputHash, outputHash] = call.publicSignals as [bigint, bigint, bigint];
      expect(await groth16.verifyProof(call.a, call.b, call.c, [commitment, inputHash, outputHash])).to.equal(true);
      expect(await groth16.verifyProof(call.a, call.b, call.c, [inputHash, commitment, outputHash])).to.equal(false);
      expect(await groth16.verifyProof(call.a, call.b, call.c, [commitment, inputHash, outputHash + 1n])).to.equal(
        false,
      );
      expect(
        await groth16.verifyProof(call.a, call.b, call.c, [commitment + FIELD_PRIME, inputHash, outputHash]),
      ).to.equal(false);
      expect(await groth16.verifyProof([1n, 3n], call.b, call.c, [commitment, inputHash, outputHash])).to.equal(false);

      const proof = asStruct(proofA.zkProof);
      expect(await versionVerifier.verifyInference(proof, inputHash, outputHash)).to.equal(true);
      expect(await versionVerifier.verifyInference(proof, outputHash, inputHash)).to.equal(false);
      const other = solidityCallData(proofOtherVersion.zkProof);
      expect(
        await versionVerifier.verifyInference(
          asStruct(proofOtherVersion.zkProof),
          other.publicSignals[1] as bigint,
          other.publicSignals[2] as bigint,
        ),
      ).to.equal(false);
      expect(await versionVerifier.weightsCommitment()).to.equal(proofA.expected.weightsCommitment);
      expect(await versionVerifier.verifyingKeyHash()).to.equal(verifyingKeyHash);
      expect(await versionVerifier.groth16Verifier()).to.equal(await groth16.getAddress());
    });

    it("refuse to be built without a verifier, with a commitment outside the field or with no key hash", async function () {
      const { groth16 } = await loadFixture(deployZkFixture);
      const factory = await ethers.getContractFactory("ZkInferenceVerifier");
      const g = await groth16.getAddress();
      await expect(factory.deploy(ethers.ZeroAddress, 1n, verifyingKeyHash))
        .to.be.revertedWithCustomError(factory, "ZeroAddress")
        .withArgs("verifier");
      await expect(factory.deploy(g, FIELD_PRIME, verifyingKeyHash))
        .to.be.revertedWithCustomError(factory, "InvalidFieldElement")
        .withArgs("weightsCommitment", FIELD_PRIME);
      await expect(factory.deploy(g, 0n, verifyingKeyHash)).to.be.revertedWithCustomError(
        factory,
        "InvalidFieldElement",
      );
      await expect(factory.deploy(g, 1n, ethers.ZeroHash))
        .to.be.revertedWithCustomError(factory, "ZeroHash")
        .withArgs("verifyingKeyHash");
    });
  });

  describe("ZkChallenge", function () {
    async function openedFixture() {
      const fx = await deployZkFixture();
      await (
        await fx.challenge
          .connect(fx.keeper)
          .openChallenge(
            JOB,
            fx.node.address,
            1n,
            0n,
            proofA.expected.inputHash,
            proofA.expected.outputHash,
            5n * 10n ** 21n,
          )
      ).wait();
      return fx;
    }

    it("opens a challenge with a deadline and records it", async function () {
      const fx = await loadFixture(deployZkFixture);
      const tx = fx.challenge
        .connect(fx.keeper)
        .openChallenge(JOB, fx.node.address, 1n, 0n, proofA.expected.inputHash, proofA.expected.outputHash, 5n);
      await expect(tx).to.emit(fx.challenge, "ChallengeOpened");
      const record = await fx.challenge.challengeOf(JOB);
      expect(record.status).to.equal(1n);
      expect(record.deadline).to.equal(BigInt(await time.latest()) + RESPONSE_WINDOW);
      expect(record.node).to.equal(fx.node.address);
    });

    it("fails when the node answers with a valid proof", async function () {
      const fx = await loadFixture(openedFixture);
      await expect(fx.challenge.connect(fx.node).answerChallenge(JOB, asStruct(proofA.zkProof)))
        .to.emit(fx.challenge, "ChallengeAnswered")
        .withArgs(JOB, fx.node.address, fx.node.address);
      expect((await fx.challenge.challengeOf(JOB)).status).to.equal(2n);
      await time.increase(RESPONSE_WINDOW + 1n);
      await expect(fx.challenge.executeSlash(JOB))
        .to.be.revertedWithCustomError(fx.challenge, "ChallengeNotOpen")
        .withArgs(JOB, 2n);
      await expect(fx.challenge.answerChallenge(JOB, asStruct(proofA.zkProof))).to.be.revertedWithCustomError(
        fx.challenge,
        "ChallengeNotOpen",
      );
    });

    it("refuses proofs for another input, another version and tampered or malformed points", async function () {
      const fx = await loadFixture(openedFixture);
      const bad = [
        asStruct(proofB.zkProof),
        asStruct(proofOtherVersion.zkProof),
        { ...asStruct(proofA.zkProof), a: [1n, 3n] as [bigint, bigint] },
        { ...asStruct(proofA.zkProof), c: asStruct(proofB.zkProof).c },
        { ...asStruct(proofA.zkProof), a: [FIELD_PRIME * 2n, 0n] as [bigint, bigint] },
      ];
      for (const proof of bad) {
        await expect(fx.challenge.connect(fx.node).answerChallenge(JOB, proof))
          .to.be.revertedWithCustomError(fx.challenge, "InvalidProof")
          .withArgs(JOB);
      }
      expect((await fx.challenge.challengeOf(JOB)).status).to.equal(1n);
    });

    it("refuses an answer after the deadline and then slashes through NodeStaking", async function () {
      const fx = await loadFixture(openedFixture);
      await expect(fx.challenge.executeSlash(JOB)).to.be.revertedWithCustomError(fx.challenge, "ResponseWindowOpen");
      await time.increase(RESPONSE_WINDOW + 1n);
      await expect(fx.challenge.answerChallenge(JOB, asStruct(proofA.zkProof))).to.be.revertedWithCustomError(
        fx.challenge,
        "ResponseDeadlinePassed",
      );
      const cap = await fx.staking.maxSlashOf(fx.node.address);
      const evidence = await fx.challenge.evidenceHashOf(JOB);
      const before = await fx.staking.slashableStake(fx.node.address);
      // The requested 5,000 tokens exceed the 10% cap (1,000 of 10,000): the slash takes the cap instead of reverting.
      await expect(fx.challenge.connect(fx.outsider).executeSlash(JOB))
        .to.emit(fx.challenge, "ChallengeSlashed")
        .withArgs(JOB, fx.node.address, cap, evidence)
        .and.to.emit(fx.staking, "Slashed");
      expect(await fx.staking.slashableStake(fx.node.address)).to.equal(before - cap);
      expect((await fx.challenge.challengeOf(JOB)).status).to.equal(3n);
      await expect(fx.challenge.executeSlash(JOB)).to.be.revertedWithCustomError(fx.challenge, "ChallengeNotOpen");
    });

    it("accepts an answer in the last second of the window", async function () {
      const fx = await loadFixture(openedFixture);
      const { deadline } = await fx.challenge.challengeOf(JOB);
      await time.setNextBlockTimestamp(deadline);
      await expect(fx.challenge.answerChallenge(JOB, asStruct(proofA.zkProof))).to.emit(
        fx.challenge,
        "ChallengeAnswered",
      );
    });

    it("refuses bad challenges, saying why", async function () {
      const fx = await loadFixture(openedFixture);
      const open = (job: string, version: bigint, inputHash = proofA.expected.inputHash, node = fx.node.address) =>
        fx.challenge
          .connect(fx.keeper)
          .openChallenge(job, node, 1n, version, inputHash, proofA.expected.outputHash, 1n);
      await expect(open(JOB, 0n)).to.be.revertedWithCustomError(fx.challenge, "ChallengeExists").withArgs(JOB);
      await expect(open(ethers.id("job-2"), 1n))
        .to.be.revertedWithCustomError(fx.challenge, "ZkNotRequired")
        .withArgs(1n, 1n);
      await expect(open(ethers.id("job-2"), 0n, FIELD_PRIME))
        .to.be.revertedWithCustomError(fx.challenge, "InvalidFieldElement")
        .withArgs("inputHash", FIELD_PRIME);
      await expect(open(ethers.id("job-2"), 0n, 1n, ethers.ZeroAddress)).to.be.revertedWithCustomError(
        fx.challenge,
        "ZeroNode",
      );
      await expect(
        fx.challenge.connect(fx.node).openChallenge(ethers.id("job-3"), fx.node.address, 1n, 0n, 1n, 1n, 1n),
      ).to.be.revertedWithCustomError(fx.challenge, "AccessControlUnauthorizedAccount");
      await expect(fx.challenge.answerChallenge(ethers.id("none"), asStruct(proofA.zkProof)))
        .to.be.revertedWithCustomError(fx.challenge, "ChallengeNotOpen")
        .withArgs(ethers.id("none"), 0n);
    });

    it("refuses a version whose recorded key hash is not its verifier's", async function () {
      const fx = await loadFixture(deployZkFixture);
      await (
        await fx.models.publishVersion(1n, {
          version: "2.0.0-zk",
          descriptorHash: ethers.id("model.yaml"),
          manifestHash: ethers.id("2.0.0-zk").slice(2),
          shardRoot: ethers.id("root"),
          shardCount: 1,
          price: 1n,
          zkVerifier: await fx.versionVerifier.getAddress(),
          verifyingKeyHash: ethers.id("another key"),
          access: { kind: 0, token: ethers.ZeroAddress, threshold: 0n },
        })
      ).wait();
      await expect(
        fx.challenge.connect(fx.keeper).openChallenge(JOB, fx.node.address, 1n, 2n, 1n, 1n, 1n),
      ).to.be.revertedWithCustomError(fx.challenge, "VerifyingKeyMismatch");
    });

    it("lets only governance set the response window, within bounds", async function () {
      const fx = await loadFixture(deployZkFixture);
      await expect(fx.challenge.connect(fx.keeper).setResponseWindow(HOUR)).to.be.revertedWithCustomError(
        fx.challenge,
        "AccessControlUnauthorizedAccount",
      );
      await expect(governanceCall(fx.gov, await encodeCall(fx.challenge, "setResponseWindow", [60n])))
        .to.be.revertedWithCustomError(fx.challenge, "InvalidResponseWindow")
        .withArgs(60n);
      await expect(governanceCall(fx.gov, await encodeCall(fx.challenge, "setResponseWindow", [HOUR])))
        .to.emit(fx.challenge, "ResponseWindowSet")
        .withArgs(HOUR);
      const factory = await ethers.getContractFactory("ZkChallenge");
      await expect(factory.deploy(ethers.ZeroAddress, fx.stakingAddress, fx.deployer.address, HOUR))
        .to.be.revertedWithCustomError(factory, "ZeroAddress")
        .withArgs("staking");
    });
  });
});

// Cross-check of the EIP-712 typed data: every digest computed by sdk/eip712.ts (viem) equals the
// one computed on chain by InframeshTypedData (OpenZeppelin's _hashTypedDataV4) and the one from
// ethers' independent encoder; signatures made in TypeScript verify on chain and only under
// their own chain id and verifying contract.
import { expect } from "chai";
import { TypedDataEncoder } from "ethers";
import {
  type Address,
  type Hex,
  domainSeparator,
  maxUint256,
  parseSignature,
  recoverAddress,
  serializeSignature,
  toHex,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import {
  EIP712_NAME,
  EIP712_VERSION,
  type ProofOfServing,
  type Settlement,
  type WorkUnit,
  hashProofOfServing,
  hashSettlement,
  hashWorkUnit,
  inframeshDomain,
  inframeshTypes,
  payloadHash,
  recoverProofOfServingSigner,
  recoverWorkUnitSigner,
  signProofOfServing,
  signWorkUnit,
} from "../../sdk/eip712.ts";
import type { InframeshTypedData } from "../../types/ethers-contracts/index.js";
import { ethers, loadFixture } from "./fixtures.ts";

const MAX_UINT64 = 2n ** 64n - 1n;
const MAX_UINT32 = 2 ** 32 - 1;
/** Order of secp256k1's group. */
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

// TypedDataHarness is a test contract, which typechain does not type: it is exactly InframeshTypedData.
const deployHarness = async () => (await ethers.deployContract("TypedDataHarness")) as unknown as InframeshTypedData;

async function harnessFixture() {
  const harness = await deployHarness();
  const other = await deployHarness();
  const { chainId } = await ethers.provider.getNetwork();
  const address = (await harness.getAddress()) as Address;
  return {
    harness,
    other,
    chainId,
    domain: inframeshDomain(chainId, address),
    otherDomain: inframeshDomain(chainId, (await other.getAddress()) as Address),
    client: privateKeyToAccount(generatePrivateKey()),
    node: privateKeyToAccount(generatePrivateKey()),
  };
}

function workUnitFor(client: Address, overrides: Partial<WorkUnit> = {}): WorkUnit {
  return {
    jobId: toHex(ethers.randomBytes(32)),
    modelId: 7n,
    modelVersion: 2n,
    inputHash: payloadHash(new TextEncoder().encode('{"prompt":"hello"}')),
    maxFee: 10n ** 15n,
    client,
    expiresAt: 1_900_000_000n,
    ...overrides,
  };
}

function proofFor(node: Address, workUnitHash: Hex, overrides: Partial<ProofOfServing> = {}): ProofOfServing {
  return {
    jobId: toHex(ethers.randomBytes(32)),
    workUnitHash,
    outputHash: payloadHash(new TextEncoder().encode("world")),
    latencyMs: 123,
    node,
    ...overrides,
  };
}

/** ethers' own EIP-712 encoder: a third, independent implementation. */
function ethersDigest(
  domain: ReturnType<typeof inframeshDomain>,
  primaryType: keyof typeof inframeshTypes,
  value: object,
) {
  const types = { [primaryType]: inframeshTypes[primaryType].map((field) => ({ ...field })) };
  return TypedDataEncoder.hash({ ...domain, chainId: domain.chainId ?? 0 }, types, value);
}

describe("EIP-712 typed data (sdk/eip712.ts ↔ InframeshTypedData)", function () {
  describe("domain", function () {
    it("eip712Domain() is name Inframesh, version 1, this chain, the contract", async function () {
      const { harness, chainId, domain } = await loadFixture(harnessFixture);
      const onChain = await harness.eip712Domain();
      expect(onChain.name).to.equal(EIP712_NAME);
      expect(onChain.version).to.equal(EIP712_VERSION);
      expect(onChain.chainId).to.equal(chainId);
      expect(onChain.verifyingContract).to.equal(domain.verifyingContract);
      expect(await harness.EIP712_NAME()).to.equal(EIP712_NAME);
      expect(await harness.EIP712_VERSION()).to.equal(EIP712_VERSION);
    });

    it("DOMAIN_SEPARATOR() equals viem's domainSeparator of inframeshDomain", async function () {
      const { harness, domain } = await loadFixture(harnessFixture);
      expect(await harness.DOMAIN_SEPARATOR()).to.equal(domainSeparator({ domain }));
    });
  });

  describe("digests", function () {
    it("hashWorkUnit: TypeScript, ethers and the chain agree, edge values included", async function () {
      const { harness, domain, client } = await loadFixture(harnessFixture);
      const units: WorkUnit[] = [
        workUnitFor(client.address),
        workUnitFor(client.address, {
          jobId: `0x${"00".repeat(32)}`,
          modelId: 0n,
          modelVersion: 0n,
          inputHash: `0x${"00".repeat(32)}`,
          maxFee: 0n,
          expiresAt: 0n,
        }),
        workUnitFor(client.address, {
          jobId: `0x${"ff".repeat(32)}`,
          modelId: maxUint256,
          modelVersion: maxUint256,
          inputHash: `0x${"ff".repeat(32)}`,
          maxFee: maxUint256,
          expiresAt: MAX_UINT64,
        }),
      ];
      for (const unit of units) {
        const digest = hashWorkUnit(domain, unit);
        expect(await harness.hashWorkUnit(unit)).to.equal(digest);
        expect(ethersDigest(domain, "WorkUnit", unit)).to.equal(digest);
      }
    });

    it("hashProofOfServing: TypeScript, ethers and the chain agree, edge values included", async function () {
      const { harness, domain, node, client } = await loadFixture(harnessFixture);
      const workUnitHash = hashWorkUnit(domain, workUnitFor(client.address));
      const proofs: ProofOfServing[] = [
        proofFor(node.address, workUnitHash),
        proofFor(node.address, workUnitHash, { latencyMs: 0, outputHash: `0x${"00".repeat(32)}` }),
        proofFor(node.address, `0x${"ff".repeat(32)}`, { latencyMs: MAX_UINT32 }),
      ];
      for (const proof of proofs) {
        const digest = hashProofOfServing(domain, proof);
        expect(await harness.hashProofOfServing(proof)).to.equal(digest);
        expect(ethersDigest(domain, "ProofOfServing", proof)).to.equal(digest);
      }
    });

    it("hashSettlement: TypeScript, ethers and the chain agree, edge values included", async function () {
      const { harness, domain } = await loadFixture(harnessFixture);
      const settlements: Settlement[] = [
        {
          epoch: 12n,
          earningsRoot: toHex(ethers.randomBytes(32)),
          totalDebits: 10n ** 21n,
          fees: 5n * 10n ** 19n,
          royalties: 10n ** 20n,
          redistributedSlash: 3n,
          receiptCount: 1_000n,
          batchSha256: payloadHash(new TextEncoder().encode("batch")),
        },
        {
          epoch: MAX_UINT64,
          earningsRoot: `0x${"ff".repeat(32)}`,
          totalDebits: maxUint256,
          fees: maxUint256,
          royalties: maxUint256,
          redistributedSlash: maxUint256,
          receiptCount: MAX_UINT64,
          batchSha256: `0x${"ff".repeat(32)}`,
        },
      ];
      for (const settlement of settlements) {
        const digest = hashSettlement(domain, settlement);
        expect(await harness.hashSettlement(settlement)).to.equal(digest);
        expect(ethersDigest(domain, "Settlement", settlement)).to.equal(digest);
      }
    });

    it("every field is part of the work-unit digest", async function () {
      const { domain, client } = await loadFixture(harnessFixture);
      const unit = workUnitFor(client.address);
      const base = hashWorkUnit(domain, unit);
      const changed: Partial<WorkUnit>[] = [
        { jobId: `0x${"01".repeat(32)}` },
        { modelId: unit.modelId + 1n },
        { modelVersion: unit.modelVersion + 1n },
        { inputHash: `0x${"02".repeat(32)}` },
        { maxFee: unit.maxFee + 1n },
        { client: privateKeyToAccount(generatePrivateKey()).address },
        { expiresAt: unit.expiresAt + 1n },
      ];
      for (const change of changed) expect(hashWorkUnit(domain, { ...unit, ...change })).to.not.equal(base);
    });
  });

  describe("signatures", function () {
    it("a client's work-unit signature made with viem verifies on chain and recovers in TypeScript", async function () {
      const { harness, domain, client } = await loadFixture(harnessFixture);
      const unit = workUnitFor(client.address);
      const signature = await signWorkUnit(client, domain, unit);
      expect(await harness.isValidWorkUnitSignature(unit, signature)).to.equal(true);
      expect(await recoverWorkUnitSigner(domain, unit, signature)).to.equal(client.address);
    });

    it("a node's proof signature over the signed work unit verifies on chain and recovers in TypeScript", async function () {
      const { harness, domain, client, node } = await loadFixture(harnessFixture);
      const unit = workUnitFor(client.address);
      const proof = proofFor(node.address, hashWorkUnit(domain, unit), { jobId: unit.jobId });
      const signature = await signProofOfServing(node, domain, proof);
      expect(await harness.isValidProofOfServingSignature(proof, signature)).to.equal(true);
      expect(await recoverProofOfServingSigner(domain, proof, signature)).to.equal(node.address);
    });

    it("a signature made for another chain id is refused", async function () {
      const { harness, domain, chainId, client, node } = await loadFixture(harnessFixture);
      const foreign = { ...domain, chainId: Number(chainId) + 1 };
      const unit = workUnitFor(client.address);
      expect(await harness.isValidWorkUnitSignature(unit, await signWorkUnit(client, foreign, unit))).to.equal(false);
      const proof = proofFor(node.address, hashWorkUnit(domain, unit));
      const proofSignature = await signProofOfServing(node, foreign, proof);
      expect(await harness.isValidProofOfServingSignature(proof, proofSignature)).to.equal(false);
    });

    it("a signature made for another verifying contract is refused (and vice versa)", async function () {
      const { harness, other, domain, otherDomain, client, node } = await loadFixture(harnessFixture);
      const unit = workUnitFor(client.address);
      const forOther = await signWorkUnit(client, otherDomain, unit);
      expect(await other.isValidWorkUnitSignature(unit, forOther)).to.equal(true);
      expect(await harness.isValidWorkUnitSignature(unit, forOther)).to.equal(false);
      const proof = proofFor(node.address, hashWorkUnit(domain, unit));
      const proofForOther = await signProofOfServing(node, otherDomain, proof);
      expect(await other.isValidProofOfServingSignature(proof, proofForOther)).to.equal(true);
      expect(await harness.isValidProofOfServingSignature(proof, proofForOther)).to.equal(false);
    });

    it("a signature by anyone but the named client or node is refused", async function () {
      const { harness, domain, client, node } = await loadFixture(harnessFixture);
      const unit = workUnitFor(client.address);
      expect(await harness.isValidWorkUnitSignature(unit, await signWorkUnit(node, domain, unit))).to.equal(false);
      const proof = proofFor(node.address, hashWorkUnit(domain, unit));
      const byClient = await signProofOfServing(client, domain, proof);
      expect(await harness.isValidProofOfServingSignature(proof, byClient)).to.equal(false);
    });

    it("a signature of a tampered message (max fee raised by 1 wei) is refused", async function () {
      const { harness, domain, client } = await loadFixture(harnessFixture);
      const unit = workUnitFor(client.address);
      const signature = await signWorkUnit(client, domain, unit);
      expect(await harness.isValidWorkUnitSignature({ ...unit, maxFee: unit.maxFee + 1n }, signature)).to.equal(false);
    });

    it("malformed or high-s signatures and a zero signer give false, never a revert", async function () {
      const { harness, domain, client, node } = await loadFixture(harnessFixture);
      const unit = workUnitFor(client.address);
      const good = await signWorkUnit(client, domain, unit);
      // The malleable twin (s' = n - s, v flipped) recovers the same address with plain ecrecover.
      const { r, s, yParity } = parseSignature(good);
      const highS = toHex(SECP256K1_N - BigInt(s), { size: 32 });
      const twin = serializeSignature({ r, s: highS, yParity: yParity === 0 ? 1 : 0 });
      expect(await recoverAddress({ hash: hashWorkUnit(domain, unit), signature: twin })).to.equal(client.address);
      const malformed: Hex[] = ["0x", `0x${"00".repeat(65)}`, good.slice(0, 130) as Hex, `${good}00`, twin];
      for (const signature of malformed) {
        expect(await harness.isValidWorkUnitSignature(unit, signature)).to.equal(false, signature);
      }
      const zeroClient = workUnitFor(ethers.ZeroAddress as Address);
      expect(await harness.isValidWorkUnitSignature(zeroClient, `0x${"00".repeat(65)}`)).to.equal(false);
      const zeroNode = proofFor(ethers.ZeroAddress as Address, hashWorkUnit(domain, unit));
      expect(await harness.isValidProofOfServingSignature(zeroNode, `0x${"00".repeat(65)}`)).to.equal(false);
      const proof = proofFor(node.address, hashWorkUnit(domain, unit));
      expect(await harness.isValidProofOfServingSignature(proof, "0x")).to.equal(false);
    });
  });
});

import { expect } from "chai";
import { network } from "hardhat";
import { hashToBytes32, hashToHex, sha256 } from "../../sdk/manifest/hash.ts";
import { merkleProof, merkleRoot } from "../../sdk/manifest/merkle.ts";

const { ethers, networkHelpers } = await network.connect();

const AccessKind = { Public: 0, Allowlist: 1, ERC20Holders: 2, ERC721Holders: 3 } as const;
const MAX_UINT96 = 2n ** 96n - 1n;
const MAX_SHARD_COUNT = 2n ** 20n;
const ZERO_HASH = ethers.ZeroHash;
const ZERO_ADDRESS = ethers.ZeroAddress;

const shardHashes = Array.from({ length: 14 }, (_, i) => sha256(Buffer.from(`shard ${i}`)));
const shardRoot = hashToBytes32(merkleRoot(shardHashes));
const manifestA = hashToHex(sha256(Buffer.from("manifest A")));
const manifestB = hashToHex(sha256(Buffer.from("manifest B")));

interface VersionInput {
  version: string;
  descriptorHash: string;
  manifestHash: string;
  shardRoot: string;
  shardCount: number | bigint;
  price: bigint;
  zkVerifier: string;
  verifyingKeyHash: string;
  access: { kind: number; token: string; threshold: bigint };
}

function versionInput(overrides: Partial<VersionInput> = {}): VersionInput {
  return {
    version: "1.0.0",
    descriptorHash: hashToBytes32(sha256(Buffer.from("name: demo\n"))),
    manifestHash: manifestA,
    shardRoot,
    shardCount: 14,
    price: 1_000n,
    zkVerifier: ZERO_ADDRESS,
    verifyingKeyHash: ZERO_HASH,
    access: { kind: AccessKind.Public, token: ZERO_ADDRESS, threshold: 0n },
    ...overrides,
  };
}

async function deployFixture() {
  const [publisher, other, third] = await ethers.getSigners();
  if (!publisher || !other || !third) throw new Error("the network needs three signers");
  const registry = await ethers.deployContract("ModelRegistry");
  await (await registry.connect(publisher).registerModel("llama-tiny")).wait();
  return { registry, publisher, other, third };
}

async function publishedFixture() {
  const fixture = await deployFixture();
  await (await fixture.registry.publishVersion(1n, versionInput())).wait();
  return fixture;
}

describe("ModelRegistry", () => {
  describe("registerModel", () => {
    it("gives ids from 1, owned by the caller, with an event", async () => {
      const { registry, publisher, other } = await networkHelpers.loadFixture(deployFixture);
      await expect(registry.connect(other).registerModel("whisper-small"))
        .to.emit(registry, "ModelRegistered")
        .withArgs(2n, other.address, "whisper-small");
      expect(await registry.modelCount()).to.equal(2n);
      expect(await registry.modelIdOf("llama-tiny")).to.equal(1n);
      expect(await registry.modelIdOf("whisper-small")).to.equal(2n);
      expect(await registry.modelIdOf("nothing")).to.equal(0n);
      expect(await registry.publisherOf(1n)).to.equal(publisher.address);
      const info = await registry.modelInfo(2n);
      expect(info.name).to.equal("whisper-small");
      expect(info.publisher).to.equal(other.address);
      expect(info.pendingPublisher).to.equal(ZERO_ADDRESS);
      expect(info.versionCount).to.equal(0n);
      expect(info.hasServingVersion).to.equal(false);
    });

    it("reverts on an empty, too long or taken name", async () => {
      const { registry } = await networkHelpers.loadFixture(deployFixture);
      await expect(registry.registerModel("")).to.be.revertedWithCustomError(registry, "EmptyName");
      await expect(registry.registerModel("x".repeat(65)))
        .to.be.revertedWithCustomError(registry, "NameTooLong")
        .withArgs(65n, 64n);
      await registry.registerModel("x".repeat(64));
      await expect(registry.registerModel("llama-tiny"))
        .to.be.revertedWithCustomError(registry, "NameTaken")
        .withArgs("llama-tiny", 1n);
    });

    it("reverts reads of an unknown model", async () => {
      const { registry } = await networkHelpers.loadFixture(deployFixture);
      for (const read of [registry.modelInfo(9n), registry.publisherOf(9n), registry.servingVersion(9n)]) {
        await expect(read).to.be.revertedWithCustomError(registry, "UnknownModel").withArgs(9n);
      }
      await expect(registry.versionOfManifest(9n, manifestA))
        .to.be.revertedWithCustomError(registry, "UnknownModel")
        .withArgs(9n);
    });
  });

  describe("publisher role", () => {
    it("moves in two steps with events; the old publisher loses its rights", async () => {
      const { registry, publisher, other } = await networkHelpers.loadFixture(deployFixture);
      await expect(registry.transferPublisher(1n, other.address))
        .to.emit(registry, "PublisherTransferStarted")
        .withArgs(1n, publisher.address, other.address);
      expect((await registry.modelInfo(1n)).pendingPublisher).to.equal(other.address);
      expect(await registry.publisherOf(1n)).to.equal(publisher.address);
      await expect(registry.connect(other).acceptPublisher(1n))
        .to.emit(registry, "PublisherTransferred")
        .withArgs(1n, publisher.address, other.address);
      expect(await registry.publisherOf(1n)).to.equal(other.address);
      expect((await registry.modelInfo(1n)).pendingPublisher).to.equal(ZERO_ADDRESS);
      await expect(registry.publishVersion(1n, versionInput()))
        .to.be.revertedWithCustomError(registry, "NotPublisher")
        .withArgs(1n, publisher.address, other.address);
      await expect(registry.connect(other).publishVersion(1n, versionInput())).to.emit(registry, "VersionPublished");
    });

    it("only the publisher offers it, only the pending publisher accepts it, zero cancels", async () => {
      const { registry, publisher, other, third } = await networkHelpers.loadFixture(deployFixture);
      await expect(registry.connect(other).transferPublisher(1n, other.address))
        .to.be.revertedWithCustomError(registry, "NotPublisher")
        .withArgs(1n, other.address, publisher.address);
      await expect(registry.transferPublisher(7n, other.address))
        .to.be.revertedWithCustomError(registry, "UnknownModel")
        .withArgs(7n);
      await expect(registry.acceptPublisher(7n)).to.be.revertedWithCustomError(registry, "UnknownModel").withArgs(7n);
      await registry.transferPublisher(1n, other.address);
      await expect(registry.connect(third).acceptPublisher(1n))
        .to.be.revertedWithCustomError(registry, "NotPendingPublisher")
        .withArgs(1n, third.address, other.address);
      await registry.transferPublisher(1n, ZERO_ADDRESS);
      await expect(registry.connect(other).acceptPublisher(1n))
        .to.be.revertedWithCustomError(registry, "NotPendingPublisher")
        .withArgs(1n, other.address, ZERO_ADDRESS);
    });
  });

  describe("publishVersion", () => {
    it("records every field and emits the input", async () => {
      const { registry, publisher } = await networkHelpers.loadFixture(deployFixture);
      const token = await ethers.deployContract("InframeshToken", [publisher.address, 1_000n]);
      const input = versionInput({
        zkVerifier: publisher.address,
        verifyingKeyHash: hashToBytes32(sha256(Buffer.from("vk"))),
        access: { kind: AccessKind.ERC20Holders, token: await token.getAddress(), threshold: 5n },
      });
      const tx = registry.publishVersion(1n, input);
      await expect(tx)
        .to.emit(registry, "VersionPublished")
        .withArgs(1n, 0n, `0x${manifestA}`, (emitted: { manifestHash: string; shardCount: bigint }) => {
          return emitted.manifestHash === manifestA && emitted.shardCount === 14n;
        });
      const v = await registry.versionInfo(1n, 0n);
      expect(v.version).to.equal("1.0.0");
      expect(v.descriptorHash).to.equal(input.descriptorHash);
      expect(v.manifestHash).to.equal(`0x${manifestA}`);
      expect(v.shardRoot).to.equal(shardRoot);
      expect(v.shardCount).to.equal(14n);
      expect(v.price).to.equal(1_000n);
      expect(v.zkVerifier).to.equal(publisher.address);
      expect(v.verifyingKeyHash).to.equal(input.verifyingKeyHash);
      expect(v.access.kind).to.equal(BigInt(AccessKind.ERC20Holders));
      expect(v.access.token).to.equal(await token.getAddress());
      expect(v.access.threshold).to.equal(5n);
      expect(await registry.versionOfManifest(1n, manifestA)).to.equal(0n);
      expect((await registry.modelInfo(1n)).versionCount).to.equal(1n);
      await registry.publishVersion(1n, versionInput({ version: "1.0.1", manifestHash: manifestB }));
      expect(await registry.versionOfManifest(1n, manifestB)).to.equal(1n);
    });

    it("reverts for an unknown model or a caller that is not the publisher", async () => {
      const { registry, publisher, other } = await networkHelpers.loadFixture(deployFixture);
      await expect(registry.publishVersion(3n, versionInput()))
        .to.be.revertedWithCustomError(registry, "UnknownModel")
        .withArgs(3n);
      await expect(registry.connect(other).publishVersion(1n, versionInput()))
        .to.be.revertedWithCustomError(registry, "NotPublisher")
        .withArgs(1n, other.address, publisher.address);
    });

    it("reverts on an empty, too long or taken version string and a taken manifest", async () => {
      const { registry } = await networkHelpers.loadFixture(publishedFixture);
      await expect(registry.publishVersion(1n, versionInput({ version: "", manifestHash: manifestB })))
        .to.be.revertedWithCustomError(registry, "EmptyVersion")
        .withArgs();
      await expect(registry.publishVersion(1n, versionInput({ version: "v".repeat(65), manifestHash: manifestB })))
        .to.be.revertedWithCustomError(registry, "VersionTooLong")
        .withArgs(65n, 64n);
      await expect(registry.publishVersion(1n, versionInput({ manifestHash: manifestB })))
        .to.be.revertedWithCustomError(registry, "VersionTaken")
        .withArgs(1n, "1.0.0", 0n);
      await expect(registry.publishVersion(1n, versionInput({ version: "2.0.0" })))
        .to.be.revertedWithCustomError(registry, "ManifestTaken")
        .withArgs(1n, manifestA, 0n);
    });

    it("reverts on a manifest hash that is not 64 lowercase hex characters", async () => {
      const { registry } = await networkHelpers.loadFixture(deployFixture);
      for (const bad of [manifestA.toUpperCase(), `0x${manifestA.slice(2)}`, manifestA.slice(1), `${manifestA}0`, ""]) {
        await expect(registry.publishVersion(1n, versionInput({ manifestHash: bad })))
          .to.be.revertedWithCustomError(registry, "InvalidManifestHash")
          .withArgs(bad);
      }
      const withG = `${manifestA.slice(0, 63)}g`;
      await expect(registry.publishVersion(1n, versionInput({ manifestHash: withG })))
        .to.be.revertedWithCustomError(registry, "InvalidManifestHash")
        .withArgs(withG);
    });

    it("reverts on zero hashes, a bad shard count or a half-set zk verifier", async () => {
      const { registry, other } = await networkHelpers.loadFixture(deployFixture);
      await expect(registry.publishVersion(1n, versionInput({ descriptorHash: ZERO_HASH })))
        .to.be.revertedWithCustomError(registry, "ZeroHash")
        .withArgs("descriptorHash");
      await expect(registry.publishVersion(1n, versionInput({ shardRoot: ZERO_HASH })))
        .to.be.revertedWithCustomError(registry, "ZeroHash")
        .withArgs("shardRoot");
      for (const count of [0n, MAX_SHARD_COUNT + 1n]) {
        await expect(registry.publishVersion(1n, versionInput({ shardCount: count })))
          .to.be.revertedWithCustomError(registry, "InvalidShardCount")
          .withArgs(count, MAX_SHARD_COUNT);
      }
      const vk = hashToBytes32(sha256(Buffer.from("vk")));
      await expect(registry.publishVersion(1n, versionInput({ zkVerifier: other.address })))
        .to.be.revertedWithCustomError(registry, "InvalidZkVerifier")
        .withArgs(other.address, ZERO_HASH);
      await expect(registry.publishVersion(1n, versionInput({ verifyingKeyHash: vk })))
        .to.be.revertedWithCustomError(registry, "InvalidZkVerifier")
        .withArgs(ZERO_ADDRESS, vk);
    });

    it("reverts on an inconsistent access policy and accepts every consistent kind", async () => {
      const { registry, other } = await networkHelpers.loadFixture(deployFixture);
      const token = other.address;
      const bad = [
        { kind: AccessKind.Public, token, threshold: 0n },
        { kind: AccessKind.Public, token: ZERO_ADDRESS, threshold: 1n },
        { kind: AccessKind.Allowlist, token, threshold: 0n },
        { kind: AccessKind.ERC20Holders, token: ZERO_ADDRESS, threshold: 1n },
        { kind: AccessKind.ERC20Holders, token, threshold: 0n },
        { kind: AccessKind.ERC721Holders, token: ZERO_ADDRESS, threshold: 1n },
        { kind: AccessKind.ERC721Holders, token, threshold: 0n },
      ];
      for (const access of bad) {
        await expect(registry.publishVersion(1n, versionInput({ access })))
          .to.be.revertedWithCustomError(registry, "InvalidAccessPolicy")
          .withArgs(BigInt(access.kind), access.token, access.threshold);
      }
      const good = [
        { kind: AccessKind.Public, token: ZERO_ADDRESS, threshold: 0n },
        { kind: AccessKind.Allowlist, token: ZERO_ADDRESS, threshold: 0n },
        { kind: AccessKind.ERC20Holders, token, threshold: 10n ** 18n },
        { kind: AccessKind.ERC721Holders, token, threshold: 1n },
      ];
      for (const [i, access] of good.entries()) {
        const manifestHash = hashToHex(sha256(Buffer.from(`access ${i}`)));
        await registry.publishVersion(1n, versionInput({ version: `a${i}`, manifestHash, access }));
        expect((await registry.versionInfo(1n, BigInt(i))).access.kind).to.equal(BigInt(access.kind));
      }
    });

    it("reverts reads of an unknown version or manifest", async () => {
      const { registry } = await networkHelpers.loadFixture(publishedFixture);
      await expect(registry.versionInfo(1n, 1n))
        .to.be.revertedWithCustomError(registry, "UnknownVersion")
        .withArgs(1n, 1n, 1n);
      await expect(registry.versionInfo(5n, 0n)).to.be.revertedWithCustomError(registry, "UnknownModel").withArgs(5n);
      await expect(registry.versionOfManifest(1n, manifestB))
        .to.be.revertedWithCustomError(registry, "UnknownManifest")
        .withArgs(1n, manifestB);
    });
  });

  describe("setMatureModel", () => {
    it("points the model at a manifest's version, sets its price, and keeps history", async () => {
      const { registry } = await networkHelpers.loadFixture(publishedFixture);
      expect((await registry.servingVersion(1n)).found).to.equal(false);
      await expect(registry.setMatureModel(1n, manifestA, 1_000n))
        .to.emit(registry, "MatureModelSet")
        .withArgs(1n, 0n, `0x${manifestA}`, 1_000n)
        .and.not.to.emit(registry, "VersionPriceSet");
      let serving = await registry.servingVersion(1n);
      expect(serving.found).to.equal(true);
      expect(serving.version).to.equal(0n);
      expect(serving.record.manifestHash).to.equal(`0x${manifestA}`);

      await registry.publishVersion(1n, versionInput({ version: "1.1.0", manifestHash: manifestB, price: 7n }));
      await expect(registry.setMatureModel(1n, manifestB, 2_000n))
        .to.emit(registry, "VersionPriceSet")
        .withArgs(1n, 1n, 7n, 2_000n)
        .and.to.emit(registry, "MatureModelSet")
        .withArgs(1n, 1n, `0x${manifestB}`, 2_000n);
      serving = await registry.servingVersion(1n);
      expect(serving.version).to.equal(1n);
      expect(serving.record.price).to.equal(2_000n);
      const info = await registry.modelInfo(1n);
      expect(info.hasServingVersion).to.equal(true);
      expect(info.servingVersion).to.equal(1n);
      // The older version is still there, and the model can go back to it.
      expect((await registry.versionInfo(1n, 0n)).version).to.equal("1.0.0");
      await expect(registry.setMatureModel(1n, manifestA, 900n))
        .to.emit(registry, "MatureModelSet")
        .withArgs(1n, 0n, `0x${manifestA}`, 900n);
      expect((await registry.servingVersion(1n)).version).to.equal(0n);
      expect((await registry.versionInfo(1n, 1n)).price).to.equal(2_000n);
    });

    it("reverts for an unknown manifest, a price over 96 bits, an unknown model or a non-publisher", async () => {
      const { registry, publisher, other } = await networkHelpers.loadFixture(publishedFixture);
      await expect(registry.setMatureModel(1n, manifestB, 1n))
        .to.be.revertedWithCustomError(registry, "UnknownManifest")
        .withArgs(1n, manifestB);
      await expect(registry.setMatureModel(1n, manifestA, MAX_UINT96 + 1n))
        .to.be.revertedWithCustomError(registry, "PriceTooHigh")
        .withArgs(MAX_UINT96 + 1n, MAX_UINT96);
      await registry.setMatureModel(1n, manifestA, MAX_UINT96);
      await expect(registry.setMatureModel(2n, manifestA, 1n))
        .to.be.revertedWithCustomError(registry, "UnknownModel")
        .withArgs(2n);
      await expect(registry.connect(other).setMatureModel(1n, manifestA, 1n))
        .to.be.revertedWithCustomError(registry, "NotPublisher")
        .withArgs(1n, other.address, publisher.address);
    });
  });

  describe("allowlist", () => {
    it("is set by the publisher with an event per account", async () => {
      const { registry, publisher, other, third } = await networkHelpers.loadFixture(deployFixture);
      await expect(registry.setAllowlisted(1n, [other.address, third.address], true))
        .to.emit(registry, "AllowlistSet")
        .withArgs(1n, other.address, true)
        .and.to.emit(registry, "AllowlistSet")
        .withArgs(1n, third.address, true);
      expect(await registry.isAllowlisted(1n, other.address)).to.equal(true);
      await registry.setAllowlisted(1n, [other.address], false);
      expect(await registry.isAllowlisted(1n, other.address)).to.equal(false);
      expect(await registry.isAllowlisted(1n, third.address)).to.equal(true);
      await expect(registry.setAllowlisted(1n, [ZERO_ADDRESS], true)).to.be.revertedWithCustomError(
        registry,
        "ZeroAddress",
      );
      await expect(registry.connect(other).setAllowlisted(1n, [other.address], true))
        .to.be.revertedWithCustomError(registry, "NotPublisher")
        .withArgs(1n, other.address, publisher.address);
    });
  });

  describe("verifyShard", () => {
    it("accepts every shard of a 14-shard manifest with its TypeScript proof and nothing else", async () => {
      const { registry } = await networkHelpers.loadFixture(publishedFixture);
      for (const [index, hash] of shardHashes.entries()) {
        const proof = merkleProof(shardHashes, index).map(hashToBytes32);
        expect(await registry.verifyShard(1n, 0n, index, hashToBytes32(hash), proof)).to.equal(true);
        const other = shardHashes[(index + 1) % shardHashes.length]!;
        expect(await registry.verifyShard(1n, 0n, index, hashToBytes32(other), proof)).to.equal(false);
        expect(await registry.verifyShard(1n, 0n, index, hashToBytes32(hash), proof.slice(1))).to.equal(false);
      }
    });

    it("reverts for an unknown model, an unknown version or an index out of range", async () => {
      const { registry } = await networkHelpers.loadFixture(publishedFixture);
      const hash = hashToBytes32(shardHashes[0]!);
      const proof = merkleProof(shardHashes, 0).map(hashToBytes32);
      await expect(registry.verifyShard(4n, 0n, 0n, hash, proof))
        .to.be.revertedWithCustomError(registry, "UnknownModel")
        .withArgs(4n);
      await expect(registry.verifyShard(1n, 3n, 0n, hash, proof))
        .to.be.revertedWithCustomError(registry, "UnknownVersion")
        .withArgs(1n, 3n, 1n);
      await expect(registry.verifyShard(1n, 0n, 14n, hash, proof))
        .to.be.revertedWithCustomError(registry, "ShardIndexOutOfRange")
        .withArgs(14n, 14n);
    });
  });
});

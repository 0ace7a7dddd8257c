// Flow 2 on a local chain: weights → shards → manifest → publishVersion → setMatureModel, then
// every shard of the real manifest checked on chain with its TypeScript proof.
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { network } from "hardhat";
import { buildManifest } from "../../sdk/manifest/builder.ts";
import { hashFromHex, hashToBytes32 } from "../../sdk/manifest/hash.ts";
import { merkleProof } from "../../sdk/manifest/merkle.ts";
import { descriptorHash, parseModelYaml } from "../../sdk/manifest/model-yaml.ts";

const { ethers } = await network.connect();

const MODEL_YAML = `name: flow-model
version: "2.0.0"
runtime: onnxruntime
entrypoint: model.onnx
resources: { cpu: 1, memory: 1Gi }
input_schema: { type: object }
output_schema: { type: object }
`;

describe("publishing a sharded model (flow 2)", () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "inframesh-publish-"));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("publishes the manifest of a 10+4 model and verifies each of its shards on chain", async () => {
    const descriptor = parseModelYaml(MODEL_YAML);
    const weightsPath = join(dir, "model.onnx");
    await writeFile(weightsPath, randomBytes(200_000));
    const built = await buildManifest({
      weightsPath,
      outDir: join(dir, "blobs"),
      version: descriptor.version,
      modelKind: "onnx",
    });
    expect(built.manifest.erasure.codec).to.equal("rs");

    const registry = await ethers.deployContract("ModelRegistry");
    await (await registry.registerModel(descriptor.name)).wait();
    const modelId = await registry.modelIdOf(descriptor.name);
    const shardHashes = built.manifest.shards.map((s) => hashFromHex(s.hash));
    await (
      await registry.publishVersion(modelId, {
        version: descriptor.version,
        descriptorHash: `0x${descriptorHash(Buffer.from(MODEL_YAML))}`,
        manifestHash: built.manifestHash,
        shardRoot: `0x${built.manifest.merkle_root}`,
        shardCount: built.manifest.shards.length,
        price: 0n,
        zkVerifier: ethers.ZeroAddress,
        verifyingKeyHash: ethers.ZeroHash,
        access: { kind: 0, token: ethers.ZeroAddress, threshold: 0n },
      })
    ).wait();
    await expect(registry.setMatureModel(modelId, built.manifestHash, 25n))
      .to.emit(registry, "MatureModelSet")
      .withArgs(modelId, 0n, `0x${built.manifestHash}`, 25n);

    // A loader reads the pointer, fetches the manifest blob by that hash, and checks shards against the chain.
    const serving = await registry.servingVersion(modelId);
    expect(serving.record.manifestHash).to.equal(`0x${built.manifestHash}`);
    const manifestBlob = await readFile(join(dir, "blobs", serving.record.manifestHash.slice(2)));
    expect(manifestBlob.equals(built.manifestBytes)).to.equal(true);
    for (const [index, hash] of shardHashes.entries()) {
      const proof = merkleProof(shardHashes, index).map(hashToBytes32);
      expect(await registry.verifyShard(modelId, serving.version, index, hashToBytes32(hash), proof)).to.equal(true);
    }
  });
});

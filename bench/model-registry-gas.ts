// Gas of the model registry's entry points, measured on Hardhat's in-process EVM.
// Prints a table and writes bench/results/model-registry-gas.json as { metric: number }.
// verifyShard is a view: its figure is eth_estimateGas of a call, so it includes the 21,000
// base cost and the calldata, as a contract calling it from a transaction would not pay twice.
import { mkdir, writeFile } from "node:fs/promises";
import { network } from "hardhat";
import { hashToBytes32, hashToHex, sha256 } from "../sdk/manifest/hash.ts";
import { merkleProof, merkleRoot } from "../sdk/manifest/merkle.ts";

const { ethers } = await network.connect();
const registry = await ethers.deployContract("ModelRegistry");

const figures: Record<string, number> = {};
async function measure(metric: string, sent: Promise<{ wait(): Promise<{ gasUsed: bigint } | null> }>) {
  const receipt = await (await sent).wait();
  if (!receipt) throw new Error(`no receipt for ${metric}`);
  figures[metric] = Number(receipt.gasUsed);
}

// 16 shards: every proof is exactly 4 hashes long (depth 4).
const shards = Array.from({ length: 16 }, (_, i) => sha256(Buffer.from(`bench shard ${i}`)));
const manifest = (n: number) => hashToHex(sha256(Buffer.from(`bench manifest ${n}`)));
const input = (n: number, shardCount: number, root: Buffer) => ({
  version: `1.0.${n}`,
  descriptorHash: hashToBytes32(sha256(Buffer.from("model.yaml"))),
  manifestHash: manifest(n),
  shardRoot: hashToBytes32(root),
  shardCount,
  price: 1_000n,
  zkVerifier: ethers.ZeroAddress,
  verifyingKeyHash: ethers.ZeroHash,
  access: { kind: 0, token: ethers.ZeroAddress, threshold: 0n },
});

await measure("register_model", registry.registerModel("bench-model"));
await measure("publish_version_first", registry.publishVersion(1n, input(0, 16, merkleRoot(shards))));
await measure("publish_version", registry.publishVersion(1n, input(1, 16, merkleRoot(shards))));
await measure("set_mature_model_first", registry.setMatureModel(1n, manifest(0), 1_000n));
await measure("set_mature_model_switch", registry.setMatureModel(1n, manifest(1), 1_000n));
await measure("set_mature_model_switch_new_price", registry.setMatureModel(1n, manifest(0), 1_500n));

for (const index of [0, 9, 15]) {
  const proof = merkleProof(shards, index).map(hashToBytes32);
  if (proof.length !== 4) throw new Error(`expected depth 4, got ${proof.length}`);
  const args = [1n, 0n, index, hashToBytes32(shards[index]!), proof] as const;
  if (!(await registry.verifyShard(...args))) throw new Error(`shard ${index} did not verify`);
  figures[`verify_shard_depth4_index${index}_estimate`] = Number(await registry.verifyShard.estimateGas(...args));
}

console.table(Object.entries(figures).map(([metric, gas]) => ({ metric, gas })));
await mkdir(new URL("./results/", import.meta.url), { recursive: true });
await writeFile(new URL("./results/model-registry-gas.json", import.meta.url), JSON.stringify(figures, null, 2) + "\n");

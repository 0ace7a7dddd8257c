// The demo's publisher step (flow 2): a model is sharded 10+4, stored on three blob-store peers,
// registered and pointed at on chain; then a fresh loader on another cache directory, with 4
// shards lost everywhere, rebuilds the weights from the rest and verifies them.
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";

import { startBlobServer, type BlobServer } from "../../sdk/blob/server.ts";
import { placeBlobs, uploadPlaced } from "../../sdk/blob/upload.ts";
import { loadModel } from "../../sdk/manifest/loader.ts";
import { buildRelease } from "../../sdk/manifest/release.ts";
import {
  hexOfBytes32,
  publishVersion,
  readModel,
  registerModel,
  servingPointerReader,
  setMatureModel,
  versionInputOf,
  type ModelContracts,
} from "../../sdk/models.ts";
import type { StakingWallet } from "../../sdk/staking.ts";
import { formatSection, formatTable } from "./table.ts";

const MODEL_BYTES = 4 * 1024 * 1024;
const PEERS = 3;
const COPIES = 2;
/** Data shards lost on every peer: the loader must rebuild them from parity. */
const LOST_SHARDS = [1, 4, 6, 9] as const;
const PRICE = 25n;

const MODEL_YAML = `name: simplenet
version: "0.1.0"
runtime: onnxruntime
entrypoint: model.onnx
resources: { cpu: 1, memory: 256Mi, gpu: 0 }
input_schema: { type: object, properties: { x: { type: array, items: { type: number } } } }
output_schema: { type: object, properties: { y: { type: array, items: { type: number } } } }
`;

/** The model demo could not complete. */
export class ModelDemoError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "ModelDemoError";
  }
}

/** `size` deterministic bytes: sha256 in counter mode over a fixed seed. Pure. */
export function standInWeights(size: number, seed = "inframesh-demo-simplenet"): Buffer {
  const out = Buffer.alloc(size);
  for (let offset = 0, counter = 0; offset < size; counter++) {
    const block = createHash("sha256").update(`${seed}:${counter}`).digest();
    offset += block.copy(out, offset);
  }
  return out;
}

function say(text: string): void {
  console.log(`\n> ${text}`);
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
}

/**
 * Runs the step in `workDir`; `cleanups` receives the blob peers' shutdown so they stop with
 * the chain even when the step fails.
 */
export async function runModelScenario(
  contracts: ModelContracts,
  publisher: StakingWallet,
  workDir: string,
  cleanups: (() => Promise<unknown>)[],
): Promise<void> {
  say("A publisher writes a model release: model.yaml and the weights it names");
  const releaseDir = path.join(workDir, "release");
  await mkdir(releaseDir, { recursive: true });
  const weights = standInWeights(MODEL_BYTES);
  await writeFile(path.join(releaseDir, "model.yaml"), MODEL_YAML);
  await writeFile(path.join(releaseDir, "model.onnx"), weights);
  const weightsSha256 = createHash("sha256").update(weights).digest("hex");
  console.log(
    `  model.onnx: ${mib(MODEL_BYTES)} of deterministic stand-in bytes (sha256 counter mode), not a real ONNX graph:` +
      "\n  they stand in for the weights until the simplenet ONNX model exists.",
  );
  console.log(`  weights sha256 ${weightsSha256}`);

  say("Building the shard manifest: Reed-Solomon 10 data + 4 parity, sha256 per shard, Merkle root");
  const release = await buildRelease(releaseDir, path.join(workDir, "publisher-blobs"));
  const { manifest, manifestHash } = release.built;
  console.log(
    `  ${manifest.shards.length} shards of ${mib(manifest.shard_size)} (${manifest.erasure.data}+${manifest.erasure.parity}, ` +
      `codec ${manifest.erasure.codec}), root ${manifest.merkle_root}`,
  );
  console.log(`  manifest sha256 ${manifestHash} (${release.built.manifestBytes.length} bytes)`);

  say(`Starting ${PEERS} blob-store peers on free loopback ports`);
  const peers: BlobServer[] = [];
  for (let i = 0; i < PEERS; i++) {
    const peer = await startBlobServer({ dir: path.join(workDir, `peer-${i + 1}`), host: "127.0.0.1", port: 0 });
    peers.push(peer);
    cleanups.push(() => peer.close());
    console.log(`  peer-${i + 1} ${peer.url}`);
  }
  const peerUrls = peers.map((p) => p.url);

  say(`Uploading: the manifest to every peer, each shard to ${COPIES} peers (PUT /blob/<sha256>)`);
  const manifestFile = { hash: manifestHash, path: release.built.manifestPath };
  const shardFiles = manifest.shards.map((s) => ({ hash: s.hash, path: release.built.shardPaths[s.index]! }));
  const placement = placeBlobs(peerUrls, manifestFile, shardFiles, COPIES);
  const uploaded = await uploadPlaced(placement, [manifestFile, ...shardFiles]);
  console.log(`  ${uploaded.uploads} uploads, ${mib(uploaded.bytes)} sent; each peer checked every hash`);

  say("The publisher registers the model, publishes the version and points the model at it (setMatureModel)");
  const registered = await registerModel(contracts, publisher, release.descriptor.name);
  const modelId = registered.modelId;
  console.log(`  registerModel("${release.descriptor.name}") → model id ${modelId} (gas ${registered.gasUsed})`);
  const published = await publishVersion(
    contracts,
    publisher,
    modelId,
    versionInputOf(manifest, manifestHash, release.descriptorHash, PRICE),
  );
  console.log(`  publishVersion("${manifest.version}") → version ${published.version} (gas ${published.gasUsed})`);
  const matured = await setMatureModel(contracts, publisher, modelId, manifestHash, PRICE);
  console.log(`  setMatureModel(${modelId}, ${manifestHash.slice(0, 12)}…, ${PRICE}) (gas ${matured.gasUsed})`);

  say(`Shards ${LOST_SHARDS.join(", ")} (data shards) are lost on every peer`);
  for (const index of LOST_SHARDS) {
    const hash = manifest.shards[index]!.hash;
    for (let i = 0; i < PEERS; i++) await rm(path.join(workDir, `peer-${i + 1}`, hash), { force: true });
  }
  console.log(`  ${manifest.shards.length - LOST_SHARDS.length} of ${manifest.shards.length} shards remain reachable`);

  say("A fresh loader with its own cache reads the chain pointer, fetches, rebuilds and verifies the weights");
  const cacheDir = path.join(workDir, "loader-cache");
  const started = performance.now();
  const loaded = await loadModel({
    modelId,
    readPointer: servingPointerReader(contracts),
    peers: peerUrls,
    cacheDir,
    rounds: 1,
    timeoutMs: 10_000,
  });
  const loadMs = performance.now() - started;
  const installedSha256 = createHash("sha256")
    .update(await readFile(loaded.weightsPath))
    .digest("hex");
  if (installedSha256 !== weightsSha256) {
    throw new ModelDemoError(`the loaded weights hash to ${installedSha256}, not ${weightsSha256}`);
  }
  console.log(`  installed ${path.relative(workDir, loaded.weightsPath)}: sha256 ${installedSha256} (matches)`);

  const status = await readModel(contracts, modelId);
  const serving = status.serving;
  if (serving === undefined) throw new ModelDemoError(`model ${modelId} has no serving version`);
  if (hexOfBytes32(serving.record.manifestHash) !== manifestHash) {
    throw new ModelDemoError("the chain serves another manifest than the one published");
  }
  console.log(
    `\n${formatSection(
      "Models (flow 2: chain pointer → manifest → shards → verified weights)",
      formatTable(
        [
          { header: "model id", align: "right" },
          { header: "name" },
          { header: "version" },
          { header: "manifest hash" },
          { header: "shard root" },
          { header: "shards", align: "right" },
          { header: "bytes", align: "right" },
          { header: "price", align: "right" },
          { header: "load time", align: "right" },
        ],
        [
          [
            String(modelId),
            status.name,
            `${serving.record.version} (#${serving.version})`,
            `${manifestHash.slice(0, 16)}…`,
            `${manifest.merkle_root.slice(0, 16)}…`,
            `${manifest.shards.length} (${LOST_SHARDS.length} lost)`,
            manifest.total_size.toLocaleString("en-US"),
            String(serving.record.price),
            `${loadMs.toFixed(0)} ms`,
          ],
        ],
      ),
    )}`,
  );
  console.log(`Weights verified: rebuilt from ${manifest.erasure.data} of ${manifest.shards.length} shards.`);

  say("Stopping the blob-store peers");
  for (const peer of peers) await peer.close();
}

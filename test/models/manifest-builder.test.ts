import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { buildManifest, rebuildWeights, type BuildResult } from "../../sdk/manifest/builder.ts";
import { ManifestError, type ManifestErrorCode } from "../../sdk/manifest/errors.ts";
import { sha256 } from "../../sdk/manifest/hash.ts";
import { parseManifest, serializeManifest, validateManifest, type Manifest } from "../../sdk/manifest/manifest.ts";

async function expectCode(promise: Promise<unknown> | (() => unknown), code: ManifestErrorCode, text?: string) {
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (error) {
    expect(error, String(error)).to.be.instanceOf(ManifestError);
    expect((error as ManifestError).code).to.equal(code);
    if (text !== undefined) expect((error as ManifestError).message).to.include(text);
    return;
  }
  expect.fail(`expected a ManifestError ${code}`);
}

/** Every way to choose `size` of `items`, in lexicographic order. */
function combinations(items: number[], size: number): number[][] {
  if (size === 0) return [[]];
  return items.flatMap((first, i) => combinations(items.slice(i + 1), size - 1).map((rest) => [first, ...rest]));
}

function fileSha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("end", () => resolve(hash.digest("hex")))
      .on("error", reject);
  });
}

describe("manifest builder (sdk/manifest/builder.ts)", function () {
  this.timeout(120_000);
  let dir: string;
  let weights: Buffer;
  let weightsPath: string;
  let built: BuildResult;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "inframesh-manifest-"));
    // 627 bytes: 10 data shards of 64 bytes (63 rounded up to 8), the last one mostly padding.
    weights = randomBytes(627);
    weightsPath = join(dir, "model.onnx");
    await writeFile(weightsPath, weights);
    built = await buildManifest({
      weightsPath,
      outDir: join(dir, "out"),
      version: "1.0.0",
      modelKind: "onnx",
      codec: "rs",
      stripeSize: 16,
    });
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes 10 data + 4 parity shards named by their sha256 and a manifest named by its hash", async () => {
    const m = built.manifest;
    expect(m.erasure).to.deep.equal({ data: 10, parity: 4, codec: "rs", stripe_size: 16 });
    expect(m.total_size).to.equal(627);
    expect(m.shard_size).to.equal(64);
    expect(m.shards).to.have.length(14);
    expect(m.shards.map((s) => s.is_parity)).to.deep.equal([...Array(10).fill(false), ...Array(4).fill(true)]);
    for (const shard of m.shards) {
      const bytes = await readFile(built.shardPaths[shard.index]!);
      expect(bytes.length).to.equal(64);
      expect(sha256(bytes).toString("hex")).to.equal(shard.hash);
    }
    // Data shards are the weights, in order, zero-padded.
    const dataShards = await Promise.all(built.shardPaths.slice(0, 10).map((p) => readFile(p)));
    const joined = Buffer.concat(dataShards);
    expect(joined.subarray(0, 627).equals(weights)).to.equal(true);
    expect(joined.subarray(627).every((b) => b === 0)).to.equal(true);
    const manifestBytes = await readFile(built.manifestPath);
    expect(manifestBytes.equals(built.manifestBytes)).to.equal(true);
    expect(sha256(manifestBytes).toString("hex")).to.equal(built.manifestHash);
    expect(parseManifest(manifestBytes)).to.deep.equal(m);
    expect((await readdir(join(dir, "out"))).filter((n) => n.endsWith(".partial"))).to.deep.equal([]);
  });

  it("keeps data shards whatever the stripe size; parity depends on it, so the manifest records it", async () => {
    const again = await buildManifest({
      weightsPath,
      outDir: join(dir, "again"),
      version: "1.0.0",
      modelKind: "onnx",
      codec: "rs",
      stripeSize: 1024,
    });
    expect(built.manifest.erasure).to.deep.include({ codec: "rs", stripe_size: 16 });
    expect(again.manifest.erasure).to.deep.include({ codec: "rs", stripe_size: 64 }); // capped at the shard size
    const hashes = (r: BuildResult) => r.manifest.shards.map((s) => s.hash);
    expect(hashes(again).slice(0, 10)).to.deep.equal(hashes(built).slice(0, 10));
    expect(hashes(again).slice(10)).to.not.deep.equal(hashes(built).slice(10));
    // Each manifest rebuilds from parity with its own stripe size.
    for (const result of [built, again]) {
      const outPath = join(dir, "stripe-check.onnx");
      const shardPaths = result.shardPaths.map((p, i) => (i < 4 ? null : p));
      await rebuildWeights({ manifest: result.manifest, shardPaths, outPath });
      expect((await readFile(outPath)).equals(weights)).to.equal(true);
    }
  });

  it("rebuilds the weights after every one of the 1001 ways to lose 4 of the 14 shards", async () => {
    const all = Array.from({ length: 14 }, (_, i) => i);
    const losses = combinations(all, 4);
    expect(losses).to.have.length(1001);
    const outPath = join(dir, "rebuilt.onnx");
    for (const lost of losses) {
      const shardPaths = built.shardPaths.map((p, i) => (lost.includes(i) ? null : p));
      await rebuildWeights({ manifest: built.manifest, shardPaths, outPath });
      const rebuilt = await readFile(outPath);
      if (!rebuilt.equals(weights)) expect.fail(`wrong bytes after losing shards ${lost.join(",")}`);
    }
  });

  it("fails clearly with 5 shards missing and leaves no output", async () => {
    const outPath = join(dir, "five-missing.onnx");
    const shardPaths = built.shardPaths.map((p, i) => ([0, 3, 7, 11, 13].includes(i) ? null : p));
    await expectCode(
      rebuildWeights({ manifest: built.manifest, shardPaths, outPath }),
      "TOO_FEW_SHARDS",
      "need 10 of 14 shards to rebuild, have 9 (missing 0, 3, 7, 11, 13)",
    );
    expect(await stat(outPath).catch(() => null)).to.equal(null);
  });

  it("refuses a corrupted or truncated shard and leaves nothing behind", async () => {
    const corrupted = join(dir, "corrupted-shard");
    const bytes = await readFile(built.shardPaths[2]!);
    bytes[5]! ^= 0xff;
    await writeFile(corrupted, bytes);
    const outPath = join(dir, "corrupt-out", "w.onnx");
    await rm(join(dir, "corrupt-out"), { recursive: true, force: true });
    await mkdir(join(dir, "corrupt-out"));
    const shardPaths = built.shardPaths.map((p, i) => (i === 2 ? corrupted : p));
    await expectCode(
      rebuildWeights({ manifest: built.manifest, shardPaths, outPath }),
      "SHARD_HASH_MISMATCH",
      "shard 2",
    );
    const truncated = join(dir, "truncated-shard");
    await writeFile(truncated, await readFile(built.shardPaths[4]!));
    await truncate(truncated, 40);
    await expectCode(
      rebuildWeights({
        manifest: built.manifest,
        shardPaths: built.shardPaths.map((p, i) => (i === 4 ? truncated : p)),
        outPath,
      }),
      "SHARD_HASH_MISMATCH",
      "shard 4 has 40 bytes",
    );
    expect(await readdir(join(dir, "corrupt-out"))).to.deep.equal([]);
  });

  it("rejects forged or inconsistent manifests", async () => {
    const m = built.manifest;
    const forged: Manifest = structuredClone(m);
    forged.shards[3]!.hash = sha256(Buffer.from("evil")).toString("hex");
    await expectCode(() => validateManifest(forged), "ROOT_MISMATCH", "merkle_root");
    await expectCode(
      rebuildWeights({ manifest: forged, shardPaths: built.shardPaths, outPath: join(dir, "x") }),
      "ROOT_MISMATCH",
    );
    const cases: [string, (c: Manifest & Record<string, unknown>) => void, string][] = [
      ["shard_size", (c) => (c.shard_size = 72), "shard_size is 72"],
      ["total_size", (c) => (c.total_size = 0), "manifest field total_size"],
      ["index", (c) => (c.shards[1]!.index = 2), "shards[1].index"],
      ["is_parity", (c) => (c.shards[10]!.is_parity = false), "shards[10].is_parity"],
      ["shard count", (c) => c.shards.pop(), "lists 13 shards"],
      ["hash", (c) => (c.shards[0]!.hash = c.shards[0]!.hash.toUpperCase()), "manifest field shards.0.hash"],
      [
        "codec",
        (c) => ((c.erasure as unknown as Record<string, unknown>).codec = "xor"),
        "manifest field erasure.codec",
      ],
      ["extra field", (c) => (c.extra = 1), "manifest field (manifest)"],
      ["format", (c) => ((c as Record<string, unknown>).format = "v0"), "manifest field format"],
      [
        "stripe_size",
        (c) => ((c.erasure as unknown as Record<string, unknown>).stripe_size = 12),
        "erasure.stripe_size",
      ],
    ];
    for (const [, mutate, text] of cases) {
      const copy = structuredClone(m) as Manifest & Record<string, unknown>;
      mutate(copy);
      await expectCode(() => validateManifest(copy), "INVALID_MANIFEST", text);
    }
    await expectCode(() => parseManifest("{not json"), "INVALID_MANIFEST", "not valid JSON");
    expect(parseManifest(serializeManifest(m))).to.deep.equal(m);
  });

  it("uses the replica codec for tiny models and rebuilds from any one copy", async () => {
    const tinyPath = join(dir, "tiny.bin");
    const tiny = randomBytes(100);
    await writeFile(tinyPath, tiny);
    const result = await buildManifest({
      weightsPath: tinyPath,
      outDir: join(dir, "tiny"),
      version: "0.1",
      modelKind: "onnx",
    });
    expect(result.manifest.erasure).to.deep.equal({ data: 1, parity: 2, codec: "replica" });
    expect(result.manifest.shard_size).to.equal(100);
    expect(new Set(result.manifest.shards.map((s) => s.hash)).size).to.equal(1);
    for (const keep of [0, 1, 2]) {
      const outPath = join(dir, `tiny-${keep}.bin`);
      const shardPaths = result.shardPaths.map((p, i) => (i === keep ? p : null));
      await rebuildWeights({ manifest: result.manifest, shardPaths, outPath });
      expect((await readFile(outPath)).equals(tiny)).to.equal(true);
    }
    await expectCode(
      rebuildWeights({ manifest: result.manifest, shardPaths: [], outPath: join(dir, "none") }),
      "TOO_FEW_SHARDS",
      "need 1 of 3",
    );
  });

  it("rejects bad input: empty or missing weights, bad stripe size, bad shard counts", async () => {
    const empty = join(dir, "empty.bin");
    await writeFile(empty, "");
    const base = { outDir: join(dir, "bad-input"), version: "1", modelKind: "onnx" };
    await expectCode(buildManifest({ ...base, weightsPath: empty }), "EMPTY_WEIGHTS");
    await expectCode(buildManifest({ ...base, weightsPath: join(dir, "nope.bin") }), "IO", "cannot open");
    await expectCode(buildManifest({ ...base, weightsPath, stripeSize: 12 }), "INVALID_OPTIONS", "multiple of 8");
    await expectCode(buildManifest({ ...base, weightsPath, codec: "rs", dataShards: 0 }), "INVALID_OPTIONS");
    await expectCode(buildManifest({ ...base, weightsPath, codec: "rs", parityShards: 7 }), "INVALID_OPTIONS");
    await expectCode(buildManifest({ ...base, weightsPath, codec: "replica", replicas: 0 }), "INVALID_OPTIONS");
    await expectCode(buildManifest({ ...base, weightsPath, version: "" }), "INVALID_OPTIONS");
    const leftovers = await readdir(join(dir, "bad-input")).catch(() => []);
    expect(leftovers.filter((n) => n.endsWith(".partial"))).to.deep.equal([]);
  });

  it("streams: a 64 MiB model shards and rebuilds with 4 shards lost in bounded memory", async () => {
    const bigPath = join(dir, "big.bin");
    const chunk = randomBytes(1024 * 1024);
    const parts: Buffer[] = [];
    for (let i = 0; i < 64; i++) parts.push(Buffer.concat([chunk.subarray(i), chunk.subarray(0, i)]));
    await writeFile(bigPath, Buffer.concat(parts));
    parts.length = 0;
    (globalThis as { gc?: () => void }).gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 2);
    try {
      const result = await buildManifest({
        weightsPath: bigPath,
        outDir: join(dir, "big"),
        version: "1",
        modelKind: "onnx",
      });
      expect(result.manifest.erasure.codec).to.equal("rs");
      const outPath = join(dir, "big-rebuilt.bin");
      const shardPaths = result.shardPaths.map((p, i) => ([1, 4, 8, 12].includes(i) ? null : p));
      await rebuildWeights({ manifest: result.manifest, shardPaths, outPath });
      expect(await fileSha256(outPath)).to.equal(await fileSha256(bigPath));
    } finally {
      clearInterval(sampler);
    }
    // Buffers are (10 + 4) × 1 MiB stripes; the whole model would be 64 MiB more.
    expect(peak - baseline, "RSS growth").to.be.below(48 * 1024 * 1024);
  });
});

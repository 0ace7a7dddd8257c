// Uploads to blob-store peers (sdk/blob/upload.ts) and a release directory's manifest
// (sdk/manifest/release.ts).
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";

import { startBlobServer, type BlobServer } from "../../sdk/blob/server.ts";
import { BlobUploadError, placeBlobs, putBlob, uploadPlaced } from "../../sdk/blob/upload.ts";
import { ManifestError } from "../../sdk/manifest/errors.ts";
import { sha256 } from "../../sdk/manifest/hash.ts";
import { ModelYamlError } from "../../sdk/manifest/model-yaml.ts";
import { buildRelease, modelKindOf } from "../../sdk/manifest/release.ts";

const MODEL_YAML = `name: upload-model
version: "1.0.0"
runtime: onnxruntime
entrypoint: model.onnx
resources: { cpu: 1, memory: 1Gi }
input_schema: { type: object }
output_schema: { type: object }
`;

describe("blob upload and releases", () => {
  let dir: string;
  let servers: BlobServer[];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "inframesh-upload-"));
    servers = [];
    for (let i = 0; i < 3; i++) {
      servers.push(await startBlobServer({ dir: join(dir, `peer-${i}`), maxBlobBytes: 1_000_000 }));
    }
  });

  afterEach(async () => {
    for (const server of servers) await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("puts a blob, reports progress, and is accepted again (idempotent)", async () => {
    const bytes = randomBytes(300_000);
    const hash = sha256(bytes).toString("hex");
    const path = join(dir, "blob");
    await writeFile(path, bytes);
    const progress: number[] = [];
    await putBlob(servers[0]!.url, hash, path, { onProgress: (sent) => progress.push(sent) });
    await putBlob(servers[0]!.url, hash, path);
    expect(progress.at(-1)).to.equal(bytes.length);
    expect((await readFile(join(dir, "peer-0", hash))).equals(bytes)).to.equal(true);
  });

  it("fails clearly on a wrong hash, an oversize blob and an unreachable peer", async () => {
    const path = join(dir, "blob");
    await writeFile(path, randomBytes(1_000));
    const wrong = "ab".repeat(32);
    try {
      await putBlob(servers[0]!.url, wrong, path);
      expect.fail("a wrong hash was accepted");
    } catch (error) {
      expect(error).to.be.instanceOf(BlobUploadError);
      expect((error as Error).message).to.match(new RegExp(`upload of blob ${wrong} to .* failed: HTTP 422`));
    }
    const big = join(dir, "big");
    const bigBytes = randomBytes(1_000_001);
    await writeFile(big, bigBytes);
    const bigUpload = putBlob(servers[0]!.url, sha256(bigBytes).toString("hex"), big);
    await bigUpload.then(
      () => expect.fail("an oversize blob was accepted"),
      (error: unknown) => expect((error as Error).message).to.match(/HTTP 413|EPIPE|ECONNRESET/),
    );
    const closed = servers.pop()!;
    await closed.close();
    const hash = sha256(await readFile(path)).toString("hex");
    await putBlob(closed.url, hash, path).then(
      () => expect.fail("an unreachable peer accepted"),
      (error: unknown) => expect(error).to.be.instanceOf(BlobUploadError),
    );
  });

  it("places the manifest on every peer and each shard on `copies` consecutive peers", () => {
    const peers = ["a", "b", "c"];
    const placement = placeBlobs(
      peers,
      { hash: "m", path: "" },
      ["s0", "s1", "s2", "s3"].map((hash) => ({ hash, path: "" })),
      2,
    );
    expect(Object.fromEntries(placement)).to.deep.equal({
      m: ["a", "b", "c"],
      s0: ["a", "b"],
      s1: ["b", "c"],
      s2: ["c", "a"],
      s3: ["a", "b"],
    });
    expect(placeBlobs(["a"], { hash: "m", path: "" }, [{ hash: "s", path: "" }], 5).get("s")).to.deep.equal(["a"]);
    expect(() => placeBlobs([], { hash: "m", path: "" }, [], 1)).to.throw(/no blob-store peer/);
  });

  it("builds a release from model.yaml and uploads it where it was placed", async () => {
    const release = join(dir, "release");
    await mkdir(release);
    await writeFile(join(release, "model.yaml"), MODEL_YAML);
    await writeFile(join(release, "model.onnx"), randomBytes(200_000));
    const built = await buildRelease(release, join(dir, "out"));
    expect(built.descriptor.name).to.equal("upload-model");
    expect(built.descriptorHash).to.equal(sha256(Buffer.from(MODEL_YAML)).toString("hex"));
    expect(built.built.manifest).to.deep.include({ version: "1.0.0", model_kind: "onnx" });
    expect(built.built.manifest.shards).to.have.length(14);

    const manifest = { hash: built.built.manifestHash, path: built.built.manifestPath };
    const shards = built.built.manifest.shards.map((s) => ({ hash: s.hash, path: built.built.shardPaths[s.index]! }));
    const placement = placeBlobs(
      servers.map((s) => s.url),
      manifest,
      shards,
      2,
    );
    let last = 0;
    const result = await uploadPlaced(placement, [manifest, ...shards], (sent) => (last = sent));
    expect(result.uploads).to.equal(3 + 14 * 2);
    expect(last).to.equal(result.bytes);
    for (let i = 0; i < 3; i++) {
      expect(await readFile(join(dir, `peer-${i}`, manifest.hash))).to.deep.equal(built.built.manifestBytes);
    }
  });

  it("refuses a release without model.yaml, with a bad one, or without its entrypoint", async () => {
    const release = join(dir, "release");
    await mkdir(release);
    await buildRelease(release, join(dir, "out")).then(
      () => expect.fail("built without model.yaml"),
      (error: unknown) => expect((error as Error).message).to.match(/^no model.yaml in /),
    );
    await writeFile(join(release, "model.yaml"), MODEL_YAML.replace('version: "1.0.0"\n', ""));
    await buildRelease(release, join(dir, "out")).then(
      () => expect.fail("built with a bad model.yaml"),
      (error: unknown) => expect(error).to.be.instanceOf(ModelYamlError),
    );
    await writeFile(join(release, "model.yaml"), MODEL_YAML);
    await buildRelease(release, join(dir, "out")).then(
      () => expect.fail("built without weights"),
      (error: unknown) => {
        expect(error).to.be.instanceOf(ManifestError);
        expect((error as Error).message).to.match(/names entrypoint model.onnx, not found in/);
      },
    );
    await writeFile(join(release, "model.yaml"), MODEL_YAML.replace("model.onnx", "../model.onnx"));
    await buildRelease(release, join(dir, "out")).then(
      () => expect.fail("built from outside the directory"),
      (error: unknown) => expect((error as Error).message).to.match(/must be a path inside/),
    );
  });

  it("names the model kind after the entrypoint's extension, else the runtime", () => {
    const base = { runtime: "vllm", entrypoint: "weights" } as Parameters<typeof modelKindOf>[0];
    expect(modelKindOf(base)).to.equal("vllm");
    expect(modelKindOf({ ...base, entrypoint: "m/model.ONNX" })).to.equal("onnx");
  });
});

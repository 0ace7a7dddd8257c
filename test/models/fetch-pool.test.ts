import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { BlobFetchError, BlobSinkError } from "../../sdk/blob/client.ts";
import { BlobFetchPool, sharedFetchPool } from "../../sdk/blob/fetch-pool.ts";
import { startBlobServer, type BlobServer } from "../../sdk/blob/server.ts";

describe("blob fetch workers (sdk/blob/fetch-pool.ts)", function () {
  this.timeout(30_000);
  let root: string;
  let peer: BlobServer;
  let pool: BlobFetchPool;
  const blobs = [randomBytes(300_000), randomBytes(200_000)];
  const hashes = blobs.map((b) => createHash("sha256").update(b).digest("hex"));

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "inframesh-pool-"));
    peer = await startBlobServer({ dir: join(root, "peer") });
    for (const [i, blob] of blobs.entries()) {
      expect((await fetch(`${peer.url}/blob/${hashes[i]}`, { method: "PUT", body: blob })).status).to.equal(201);
    }
    pool = new BlobFetchPool(2);
  });
  after(async () => {
    await pool.close();
    await peer.close();
    await rm(root, { recursive: true, force: true });
  });

  it("fetches blobs on its threads into regions of one file, dropping bytes past the region's limit", async () => {
    const path = join(root, "weights");
    await writeFile(path, "");
    const limit = blobs[0]!.length + 150_000; // the second blob's last 50,000 bytes are padding
    await Promise.all([
      pool.fetchToFile(hashes[0]!, blobs[0]!.length, { path, offset: 0, limit }, { peers: [peer.url] }),
      pool.fetchToFile(hashes[1]!, blobs[1]!.length, { path, offset: blobs[0]!.length, limit }, { peers: [peer.url] }),
    ]);
    const expected = Buffer.concat([blobs[0]!, blobs[1]!.subarray(0, 150_000)]);
    expect((await readFile(path)).equals(expected)).to.equal(true);
  });

  it("rejects with a BlobFetchError naming each failed attempt when no peer has the blob", async () => {
    const path = join(root, "none");
    await writeFile(path, "");
    const error = await pool
      .fetchToFile(
        "ab".repeat(32),
        10,
        { path, offset: 0, limit: 10 },
        { peers: [peer.url], rounds: 2, retryDelayMs: 1 },
      )
      .catch((e) => e);
    expect(error).to.be.instanceOf(BlobFetchError);
    expect((error as BlobFetchError).failures.map((f) => f.reason)).to.deep.equal([
      "AttemptError: HTTP 404",
      "AttemptError: HTTP 404",
    ]);
  });

  it("rejects with a BlobSinkError when the file cannot be written, without asking peers", async () => {
    const error = await pool
      .fetchToFile(
        hashes[0]!,
        blobs[0]!.length,
        { path: join(root, "no", "such", "dir"), offset: 0, limit: 1 },
        {
          peers: [peer.url],
        },
      )
      .catch((e) => e);
    expect(error).to.be.instanceOf(BlobSinkError);
    expect(((error as BlobSinkError).cause as Error).message).to.include("ENOENT");
  });

  it("refuses work once closed, and the shared pool starts again after a closed one", async () => {
    const own = new BlobFetchPool(1);
    await own.close();
    const error = await own
      .fetchToFile(hashes[0]!, 1, { path: "x", offset: 0, limit: 1 }, { peers: [] })
      .catch((e) => e);
    expect((error as Error).message).to.include("closed");
    const shared = sharedFetchPool();
    expect(sharedFetchPool()).to.equal(shared);
    await shared.close();
    expect(sharedFetchPool()).to.not.equal(shared);
    expect(sharedFetchPool().usable).to.equal(true);
  });
});

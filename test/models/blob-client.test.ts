import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import {
  BlobFetchError,
  BlobSinkError,
  fetchBlob,
  fetchBlobs,
  fetchBlobTo,
  type BlobSink,
} from "../../sdk/blob/client.ts";
import { startBlobServer, type BlobServer } from "../../sdk/blob/server.ts";
import { sha256 } from "../../sdk/manifest/hash.ts";

const hex = (b: Buffer) => sha256(b).toString("hex");

/** A plain HTTP server answering every request with `handler`; for peers that misbehave. */
async function rogue(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** A sink keeping the bytes in memory, as the loader keeps parity shards. */
function memorySink(): BlobSink & { bytes(): Buffer; restarts: number } {
  let chunks: Buffer[] = [];
  const sink = {
    restarts: 0,
    write: async (more: readonly Buffer[], position: number) => {
      expect(position).to.equal(Buffer.concat(chunks).length);
      chunks.push(...more.map((chunk) => Buffer.from(chunk))); // the client reuses its buffers
    },
    restart: () => {
      chunks = [];
      sink.restarts++;
    },
    bytes: () => Buffer.concat(chunks),
  };
  return sink;
}

async function closeServer(server: Server) {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
}

describe("multi-peer blob client (sdk/blob/client.ts)", function () {
  this.timeout(30_000);
  let root: string;
  let peers: BlobServer[];
  const blobs = Array.from({ length: 14 }, (_, i) => randomBytes(20_000 + i));
  const hashes = blobs.map(hex);

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "inframesh-client-"));
    peers = [];
    for (let p = 0; p < 3; p++) {
      const peer = await startBlobServer({ dir: join(root, `peer-${p}`) });
      peers.push(peer);
      // Each peer holds the blobs whose index is not p (mod 3): every blob is on two peers.
      for (const [i, blob] of blobs.entries()) {
        if (i % 3 !== p) await fetch(`${peer.url}/blob/${hashes[i]}`, { method: "PUT", body: blob });
      }
    }
  });

  after(async () => {
    for (const peer of peers) await peer.close();
    await rm(root, { recursive: true, force: true });
  });

  it("fetches every blob from peers that each miss some, with bounded parallelism", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const count = (_req: unknown, res: { on(event: "close", listener: () => void): unknown }) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      res.on("close", () => inFlight--);
    };
    for (const peer of peers) peer.server.on("request", count);
    const dir = join(root, "fetched");
    const paths = await fetchBlobs(hashes, { peers: peers.map((p) => p.url), dir, concurrency: 2 });
    for (const [i, path] of paths.entries()) expect((await readFile(path)).equals(blobs[i]!)).to.equal(true);
    expect(maxInFlight).to.be.at.most(2);
    expect((await readdir(dir)).filter((n) => n.endsWith(".partial"))).to.deep.equal([]);
    for (const peer of peers) peer.server.off("request", count);
  });

  it("skips a dead peer, a peer serving wrong bytes and a peer that hangs; the first valid copy wins", async () => {
    const liar = await rogue((_req, res) => res.end(randomBytes(100)));
    const hang = await rogue(() => {});
    try {
      const dead = "http://127.0.0.1:1";
      const good = peers[1]!.url; // holds blob 0
      const dir = join(root, "failover");
      const path = await fetchBlob(hashes[0]!, { peers: [dead, liar.url, hang.url, good], dir, timeoutMs: 300 });
      expect((await readFile(path)).equals(blobs[0]!)).to.equal(true);
      expect((await readdir(dir)).filter((n) => n.endsWith(".partial"))).to.deep.equal([]);
    } finally {
      await closeServer(liar.server);
      await closeServer(hang.server);
    }
  });

  it("resumes a partial download with a Range request", async () => {
    const dir = join(root, "resume");
    const blob = blobs[1]!;
    const ranges: (string | undefined)[] = [];
    const peer = peers[0]!; // holds blob 1
    const record = (req: { headers: { range?: string } }) => ranges.push(req.headers.range);
    peer.server.on("request", record);
    try {
      await fetchBlob(hashes[0]!, { peers: [peers[1]!.url], dir }); // creates dir
      await writeFile(join(dir, `.${hashes[1]}.partial`), blob.subarray(0, 12_345));
      const path = await fetchBlob(hashes[1]!, { peers: [peer.url], dir });
      expect((await readFile(path)).equals(blob)).to.equal(true);
      expect(ranges).to.deep.equal(["bytes=12345-"]);
    } finally {
      peer.server.off("request", record);
    }
  });

  it("keeps the bytes of a failed download and resumes from them on the next call", async () => {
    const blob = blobs[2]!;
    const dropper = await rogue((_req, res) => {
      res.writeHead(200, { "content-length": blob.length });
      res.write(blob.subarray(0, 7_000), () => setTimeout(() => res.destroy(), 50));
    });
    const dir = join(root, "resume-after-failure");
    const ranges: (string | undefined)[] = [];
    const record = (req: { headers: { range?: string } }) => ranges.push(req.headers.range);
    peers[0]!.server.on("request", record); // holds blob 2
    try {
      const failed = await fetchBlob(hashes[2]!, { peers: [dropper.url], dir, rounds: 1 }).catch((e: unknown) => e);
      expect(failed).to.be.instanceOf(BlobFetchError);
      expect((await readFile(join(dir, `.${hashes[2]}.partial`))).equals(blob.subarray(0, 7_000))).to.equal(true);
      const path = await fetchBlob(hashes[2]!, { peers: [peers[0]!.url], dir });
      expect((await readFile(path)).equals(blob)).to.equal(true);
      expect(ranges).to.deep.equal(["bytes=7000-"]);
      expect(await readdir(dir)).to.deep.equal([hashes[2]]);
    } finally {
      peers[0]!.server.off("request", record);
      await closeServer(dropper.server);
    }
  });

  it("restarts when a resumed partial turns out corrupt", async () => {
    const dir = join(root, "corrupt-partial");
    await fetchBlob(hashes[0]!, { peers: [peers[1]!.url], dir });
    const corrupt = Buffer.from(blobs[1]!.subarray(0, 5_000));
    corrupt[10]! ^= 0xff;
    await writeFile(join(dir, `.${hashes[1]}.partial`), corrupt);
    const path = await fetchBlob(hashes[1]!, { peers: [peers[0]!.url], dir, retryDelayMs: 10 });
    expect((await readFile(path)).equals(blobs[1]!)).to.equal(true);
  });

  it("fails clearly, naming each peer's failure, when no peer has a valid copy", async () => {
    const absent = hex(Buffer.from("nobody has this"));
    try {
      await fetchBlob(absent, {
        peers: peers.map((p) => p.url),
        dir: join(root, "absent"),
        rounds: 2,
        retryDelayMs: 1,
      });
      expect.fail("expected a BlobFetchError");
    } catch (error) {
      expect(error).to.be.instanceOf(BlobFetchError);
      const e = error as BlobFetchError;
      expect(e.hash).to.equal(absent);
      expect(e.failures).to.have.length(6);
      expect(e.failures.map((f) => f.reason)).to.deep.equal(Array(6).fill("AttemptError: HTTP 404"));
    }
  });

  it("refuses a blob above maxBytes and keeps no partial", async () => {
    const dir = join(root, "max");
    try {
      await fetchBlob(hashes[2]!, { peers: [peers[0]!.url], dir, maxBytes: 1000, rounds: 1 });
      expect.fail("expected a BlobFetchError");
    } catch (error) {
      expect((error as BlobFetchError).failures[0]!.reason).to.include("exceeds 1000 bytes");
    }
    expect(await readdir(dir)).to.deep.equal([]);
  });

  describe("fetchBlobTo (into a caller's sink)", () => {
    it("fetches a blob into the sink, failing over past dead, lying and hanging peers", async () => {
      const liar = await rogue((_req, res) => res.end(randomBytes(100)));
      const hang = await rogue(() => {});
      try {
        const sink = memorySink();
        const urls = ["http://127.0.0.1:1", liar.url, hang.url, peers[1]!.url];
        await fetchBlobTo(hashes[0]!, blobs[0]!.length, sink, { peers: urls, timeoutMs: 300 });
        expect(sink.bytes().equals(blobs[0]!)).to.equal(true);
      } finally {
        await closeServer(liar.server);
        await closeServer(hang.server);
      }
    });

    it("resumes with a Range request after a peer drops the connection halfway", async () => {
      const blob = blobs[2]!;
      const dropper = await rogue((_req, res) => {
        res.writeHead(200, { "content-length": blob.length });
        res.write(blob.subarray(0, 7_000), () => setTimeout(() => res.destroy(), 50));
      });
      const ranges: (string | undefined)[] = [];
      const record = (req: { headers: { range?: string } }) => ranges.push(req.headers.range);
      peers[0]!.server.on("request", record); // holds blob 2
      try {
        const sink = memorySink();
        await fetchBlobTo(hashes[2]!, blob.length, sink, { peers: [dropper.url, peers[0]!.url] });
        expect(sink.bytes().equals(blob)).to.equal(true);
        expect(ranges).to.deep.equal(["bytes=7000-"]);
      } finally {
        peers[0]!.server.off("request", record);
        await closeServer(dropper.server);
      }
    });

    it("starts over when a resumed blob does not hash right", async () => {
      const blob = blobs[2]!;
      const corrupt = Buffer.from(blob.subarray(0, 7_000));
      corrupt[10]! ^= 0xff;
      let served = 0;
      const dropper = await rogue((_req, res) => {
        if (served++ > 0) return res.writeHead(404).end();
        res.writeHead(200, { "content-length": blob.length });
        res.write(corrupt, () => setTimeout(() => res.destroy(), 50));
      });
      try {
        const sink = memorySink();
        const options = { peers: [dropper.url, peers[0]!.url], retryDelayMs: 1 };
        await fetchBlobTo(hashes[2]!, blob.length, sink, options);
        expect(sink.bytes().equals(blob)).to.equal(true);
        expect(sink.restarts).to.be.at.least(2); // the first try and the restart after the bad resume
      } finally {
        await closeServer(dropper.server);
      }
    });

    it("refuses a body longer than the expected size, and a shorter blob with the right hash", async () => {
      const sink = memorySink();
      const options = { peers: [peers[1]!.url], rounds: 1 };
      const refused = (error: BlobFetchError) => error.failures.map((f) => f.reason);
      await fetchBlobTo(hashes[0]!, blobs[0]!.length - 1, sink, options).then(
        () => expect.fail("expected a BlobFetchError"),
        (error: BlobFetchError) =>
          expect(refused(error)).to.deep.equal([`AttemptError: blob exceeds ${blobs[0]!.length - 1} bytes`]),
      );
      await fetchBlobTo(hashes[0]!, blobs[0]!.length + 8, sink, options).then(
        () => expect.fail("expected a BlobFetchError"),
        (error: BlobFetchError) =>
          expect(refused(error)).to.deep.equal([
            `AttemptError: blob has ${blobs[0]!.length} bytes, expected ${blobs[0]!.length + 8}`,
          ]),
      );
    });

    it("stops at once, without trying other peers, when the sink fails", async () => {
      const failing: BlobSink = { write: () => Promise.reject(new Error("disk full")), restart: () => {} };
      const urls = [peers[1]!.url, peers[2]!.url]; // both hold blob 0
      let requests = 0;
      const count = () => requests++;
      for (const peer of peers) peer.server.on("request", count);
      try {
        await fetchBlobTo(hashes[0]!, blobs[0]!.length, failing, { peers: urls }).then(
          () => expect.fail("expected a BlobSinkError"),
          (error: unknown) => {
            expect(error).to.be.instanceOf(BlobSinkError);
            expect(((error as BlobSinkError).cause as Error).message).to.equal("disk full");
          },
        );
        expect(requests).to.equal(1);
      } finally {
        for (const peer of peers) peer.server.off("request", count);
      }
    });
  });
});

import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { parseRange, startBlobServer, type BlobServer } from "../../sdk/blob/server.ts";
import { sha256 } from "../../sdk/manifest/hash.ts";

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A raw HTTP request; `chunks` are written one by one without a content-length (chunked). */
function request(
  method: string,
  url: string,
  options: { headers?: Record<string, string>; body?: Buffer; chunks?: Buffer[] } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers: options.headers }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on("error", reject);
    });
    // The server may answer and close before the whole body is sent (413): the reply still counts.
    req.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE" && error.code !== "ECONNRESET") reject(error);
    });
    if (options.body) req.end(options.body);
    else if (options.chunks) {
      void (async () => {
        for (const chunk of options.chunks!) {
          if (req.destroyed) return;
          if (!req.write(chunk)) await new Promise((r) => req.once("drain", r));
        }
        req.end();
      })();
    } else req.end();
  });
}

const hex = (b: Buffer) => sha256(b).toString("hex");

describe("blob server (sdk/blob/server.ts)", () => {
  let dir: string;
  let server: BlobServer;
  const blob = randomBytes(10_000);
  const blobHash = hex(blob);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "inframesh-blobs-"));
    server = await startBlobServer({ dir, maxBlobBytes: 64 * 1024 });
  });

  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const url = (hash: string) => `${server.url}/blob/${hash}`;
  const visibleFiles = async () => (await readdir(dir)).filter((n) => n !== ".incoming");

  it("listens on 127.0.0.1 and stores a blob under its hash, then serves it", async () => {
    expect(server.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    const put = await request("PUT", url(blobHash), { body: blob });
    expect(put.status).to.equal(201);
    expect(JSON.parse(put.body.toString())).to.deep.equal({ hash: blobHash, size: blob.length });
    expect((await request("PUT", url(blobHash), { body: blob })).status).to.equal(200);
    const get = await request("GET", url(blobHash));
    expect(get.status).to.equal(200);
    expect(get.headers["content-length"]).to.equal(String(blob.length));
    expect(get.headers["accept-ranges"]).to.equal("bytes");
    expect(get.body.equals(blob)).to.equal(true);
    const head = await request("HEAD", url(blobHash));
    expect(head.status).to.equal(200);
    expect(head.headers["content-length"]).to.equal(String(blob.length));
    expect(head.body.length).to.equal(0);
  });

  it("serves single byte ranges and refuses unsatisfiable ones", async () => {
    await request("PUT", url(blobHash), { body: blob });
    const cases: [string, number, number][] = [
      ["bytes=0-99", 0, 99],
      ["bytes=9990-", 9990, 9999],
      ["bytes=-10", 9990, 9999],
      ["bytes=5000-20000", 5000, 9999],
    ];
    for (const [range, start, end] of cases) {
      const reply = await request("GET", url(blobHash), { headers: { range } });
      expect(reply.status, range).to.equal(206);
      expect(reply.headers["content-range"]).to.equal(`bytes ${start}-${end}/10000`);
      expect(reply.body.equals(blob.subarray(start, end + 1)), range).to.equal(true);
    }
    const unsatisfiable = await request("GET", url(blobHash), { headers: { range: "bytes=10000-" } });
    expect(unsatisfiable.status).to.equal(416);
    expect(unsatisfiable.headers["content-range"]).to.equal("bytes */10000");
    // Several ranges or a malformed header: the whole blob.
    for (const range of ["bytes=0-1,5-6", "items=0-1", "bytes=9-3"]) {
      expect((await request("GET", url(blobHash), { headers: { range } })).status, range).to.equal(200);
    }
  });

  it("parses ranges as RFC 9110 reads them", () => {
    expect(parseRange(undefined, 10)).to.equal(null);
    expect(parseRange("bytes=0-0", 10)).to.deep.equal({ start: 0, end: 0 });
    expect(parseRange("bytes=-0", 10)).to.equal("unsatisfiable");
    expect(parseRange("bytes=-20", 10)).to.deep.equal({ start: 0, end: 9 });
    expect(parseRange("bytes=0-", 0)).to.equal("unsatisfiable");
    expect(parseRange("bytes=-", 10)).to.equal(null);
  });

  it("refuses bytes whose hash differs and leaves nothing behind", async () => {
    const other = randomBytes(1000);
    const wrongName = hex(randomBytes(8));
    const reply = await request("PUT", url(wrongName), { body: other });
    expect(reply.status).to.equal(422);
    expect(JSON.parse(reply.body.toString()).error).to.include(`not ${wrongName}`);
    expect((await request("GET", url(wrongName))).status).to.equal(404);
    expect(await visibleFiles()).to.not.include(wrongName);
    expect(await readdir(join(dir, ".incoming"))).to.deep.equal([]);
  });

  it("refuses oversize uploads, declared or streamed, with 413 and keeps nothing", async () => {
    const big = randomBytes(64 * 1024 + 1);
    const declared = await request("PUT", url(hex(big)), { body: big });
    expect(declared.status).to.equal(413);
    const chunks = Array.from({ length: 20 }, () => randomBytes(16 * 1024));
    const streamed = await request("PUT", url(hex(Buffer.concat(chunks))), { chunks });
    expect(streamed.status).to.equal(413);
    expect(await visibleFiles()).to.not.include(hex(big));
    expect(await readdir(join(dir, ".incoming"))).to.deep.equal([]);
  });

  it("answers malformed requests with 4xx, never 5xx", async () => {
    expect((await request("GET", url("abc"))).status).to.equal(400);
    expect((await request("GET", url(blobHash.toUpperCase()))).status).to.equal(400);
    expect((await request("GET", `${server.url}/blob/${blobHash}/x`)).status).to.equal(404);
    expect((await request("GET", `${server.url}/other`)).status).to.equal(404);
    expect((await request("DELETE", url(blobHash))).status).to.equal(405);
    expect((await request("GET", url(hex(Buffer.from("absent"))))).status).to.equal(404);
  });

  it("accepts the same blob uploaded concurrently", async () => {
    const shared = randomBytes(30_000);
    const replies = await Promise.all([1, 2, 3].map(() => request("PUT", url(hex(shared)), { body: shared })));
    for (const r of replies) expect([200, 201]).to.include(r.status);
    expect((await request("GET", url(hex(shared)))).body.equals(shared)).to.equal(true);
  });

  it("clears half-written uploads left by a crash when it starts, never serving them", async () => {
    const crashDir = await mkdtemp(join(tmpdir(), "inframesh-blobs-crash-"));
    await mkdir(join(crashDir, ".incoming"));
    const half = blob.subarray(0, 5000);
    await writeFile(join(crashDir, ".incoming", `${blobHash}.dead`), half);
    const restarted = await startBlobServer({ dir: crashDir });
    try {
      expect(await readdir(join(crashDir, ".incoming"))).to.deep.equal([]);
      expect((await request("GET", `${restarted.url}/blob/${blobHash}`)).status).to.equal(404);
    } finally {
      await restarted.close();
      await rm(crashDir, { recursive: true, force: true });
    }
  });
});

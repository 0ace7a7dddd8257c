import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import {
  BATCH_BYTES,
  BlobResponseError,
  BlobStoreError,
  MAX_HEAD_BYTES,
  parseResponseHead,
  PENDING_BYTES,
  receiveBlob,
  type BlobBodyHandler,
} from "../../sdk/blob/receive.ts";
import { startBlobServer, type BlobServer } from "../../sdk/blob/server.ts";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A TCP server that answers every connection with `answer` (raw bytes), for peers that misbehave. */
async function rawPeer(answer: (socket: Socket) => void): Promise<{ url: URL; server: Server }> {
  const server = createServer((socket) => {
    socket.once("data", () => answer(socket));
    socket.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/blob/x`), server };
}

/** Collects what receiveBlob hands over; stores copy (the buffers are reused). */
function collector(wantBody = true): BlobBodyHandler & { stored: Buffer[]; seen: number; status?: number } {
  const handler = {
    stored: [] as Buffer[],
    seen: 0,
    status: undefined as number | undefined,
    head: ({ status }: { status: number }) => {
      handler.status = status;
      return wantBody;
    },
    received: (bytes: Buffer) => {
      handler.seen += bytes.length;
    },
    store: async (batch: Buffer) => {
      handler.stored.push(Buffer.from(batch));
    },
  };
  return handler;
}

const never = () => new AbortController().signal;

describe("blob response reader (sdk/blob/receive.ts)", function () {
  this.timeout(20_000);
  let root: string;
  let peer: BlobServer;
  const blob = randomBytes(3 * BATCH_BYTES + 12_345);
  const hash = createHash("sha256").update(blob).digest("hex");

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "inframesh-receive-"));
    peer = await startBlobServer({ dir: root });
    const reply = await fetch(`${peer.url}/blob/${hash}`, { method: "PUT", body: blob });
    expect(reply.status).to.equal(201);
  });
  after(async () => {
    await peer.close();
    await rm(root, { recursive: true, force: true });
  });

  it("receives a blob larger than a batch into batches that hold every byte once, in order", async () => {
    const handler = collector();
    await receiveBlob(new URL(`${peer.url}/blob/${hash}`), {}, never(), handler);
    expect(handler.status).to.equal(200);
    expect(handler.seen).to.equal(blob.length);
    expect(Buffer.concat(handler.stored).equals(blob)).to.equal(true);
    expect(handler.stored.length).to.be.at.least(4);
  });

  it("pauses reading once the stores in flight hold PENDING_BYTES, and loses nothing", async () => {
    const large = randomBytes(PENDING_BYTES + 5 * BATCH_BYTES + 777);
    const largeHash = createHash("sha256").update(large).digest("hex");
    expect((await fetch(`${peer.url}/blob/${largeHash}`, { method: "PUT", body: large })).status).to.equal(201);
    const handler = collector();
    let inFlight = 0;
    let most = 0;
    handler.store = async (batch) => {
      inFlight += batch.length;
      most = Math.max(most, inFlight);
      const copy = Buffer.from(batch);
      await new Promise((resolve) => setTimeout(resolve, 15));
      handler.stored.push(copy);
      inFlight -= batch.length;
    };
    await receiveBlob(new URL(`${peer.url}/blob/${largeHash}`), {}, never(), handler);
    expect(Buffer.concat(handler.stored).equals(large)).to.equal(true);
    // Reading stops once a submitted batch brings the stores in flight to PENDING_BYTES or more: the
    // batch that crosses it (it started below) is the most it can overshoot.
    expect(most).to.be.at.most(PENDING_BYTES + BATCH_BYTES);
    expect(most).to.be.at.least(2 * BATCH_BYTES); // stores did overlap
  });

  it("sends the caller's headers (a Range request gets the rest of the blob)", async () => {
    const handler = collector();
    await receiveBlob(new URL(`${peer.url}/blob/${hash}`), { range: "bytes=1000-" }, never(), handler);
    expect(handler.status).to.equal(206);
    expect(Buffer.concat(handler.stored).equals(blob.subarray(1000))).to.equal(true);
  });

  it("stops after the head when the handler wants no body", async () => {
    const handler = collector(false);
    await receiveBlob(new URL(`${peer.url}/blob/${"0".repeat(64)}`), {}, never(), handler);
    expect(handler.status).to.equal(404);
    expect(handler.stored).to.deep.equal([]);
  });

  it("refuses bytes the handler refuses, after storing the ones before them", async () => {
    let seen = 0;
    const handler = collector();
    handler.received = (bytes) => {
      if (seen + bytes.length > BATCH_BYTES + 10) throw new Error("too much");
      seen += bytes.length;
    };
    const error = await receiveBlob(new URL(`${peer.url}/blob/${hash}`), {}, never(), handler).catch((e) => e);
    expect((error as Error).message).to.equal("too much");
    expect(Buffer.concat(handler.stored).equals(blob.subarray(0, seen))).to.equal(true);
  });

  it("reports a failing store as a BlobStoreError with its cause", async () => {
    const handler = collector();
    handler.store = () => Promise.reject(new Error("disk full"));
    const error = await receiveBlob(new URL(`${peer.url}/blob/${hash}`), {}, never(), handler).catch((e) => e);
    expect(error).to.be.instanceOf(BlobStoreError);
    expect(((error as BlobStoreError).cause as Error).message).to.equal("disk full");
  });

  it("times out on the caller's signal", async () => {
    const hang = await rawPeer(() => {});
    try {
      const error = await receiveBlob(hang.url, {}, AbortSignal.timeout(100), collector()).catch((e) => e);
      expect((error as Error).name).to.equal("TimeoutError");
    } finally {
      hang.server.close();
    }
  });

  const refusals: [string, string, string][] = [
    [
      "a chunked body",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "transfer-encoding",
    ],
    ["a 200 without content-length", "HTTP/1.1 200 OK\r\n\r\nhello", "without a content-length"],
    ["a body longer than announced", "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nhello", "more than the 3 bytes"],
    ["a body cut short", "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello", "after 5 of 10 body bytes"],
    ["something other than HTTP", "SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP/1.1 status line"],
    ["a malformed header", "HTTP/1.1 200 OK\r\nno colon here\r\n\r\nbody bytes", "malformed header line"],
    [
      "two different content-lengths",
      "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
      "bad content-length",
    ],
    [
      "a head that never ends",
      `HTTP/1.1 200 OK\r\nx: ${"a".repeat(MAX_HEAD_BYTES)}`,
      `exceeds ${MAX_HEAD_BYTES} bytes`,
    ],
    ["a closed connection", "", "before a response head"],
  ];
  for (const [what, answer, message] of refusals) {
    it(`refuses ${what} with a BlobResponseError, storing only body bytes it accepted`, async () => {
      const rogue = await rawPeer((socket) => socket.end(answer));
      try {
        const handler = collector();
        const error = await receiveBlob(rogue.url, {}, never(), handler).catch((e) => e);
        expect(error).to.be.instanceOf(BlobResponseError);
        expect((error as Error).message).to.include(message);
        const body = answer.includes("\r\n\r\n") ? answer.slice(answer.indexOf("\r\n\r\n") + 4) : "";
        const kept = Buffer.concat(handler.stored).toString("latin1");
        expect(kept).to.equal(what === "a body cut short" ? body : "");
      } finally {
        rogue.server.close();
      }
    });
  }

  it("refuses a peer URL that is not http:", async () => {
    const error = await receiveBlob(new URL("https://127.0.0.1/blob/x"), {}, never(), collector()).catch((e) => e);
    expect(error).to.be.instanceOf(BlobResponseError);
  });

  it("parses the heads blob peers send", () => {
    expect(
      parseResponseHead("HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\nContent-Range: bytes 5-9/10"),
    ).to.deep.equal({ status: 206, contentLength: 5, contentRange: "bytes 5-9/10" });
    expect(parseResponseHead("HTTP/1.1 404 Not Found")).to.deep.equal({
      status: 404,
      contentLength: 0,
      contentRange: undefined,
    });
  });
});

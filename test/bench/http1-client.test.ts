// bench/http1-client.ts against scripted node:net servers: every framing a node may answer with,
// the answers it refuses, timeouts, connection errors, socket reuse and the stale-socket mark that
// forward.ts retries on; and against a node:http server, as node agents answer.
import { once } from "node:events";
import { createServer as createHttpServer } from "node:http";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";

import { expect } from "chai";

import { Http1Pool, Http1ProtocolError } from "../../bench/http1-client.ts";
import { postJson } from "../../gateway/forward.ts";

/** A server that answers each request (head + Content-Length body) with `answer(n)`, raw. */
async function scripted(answer: (n: number, socket: Socket) => string | Buffer | undefined): Promise<Server> {
  let n = 0;
  const server = createServer((socket) => {
    let pending = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const end = pending.indexOf("\r\n\r\n");
        if (end < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(pending.toString("latin1", 0, end))?.[1] ?? 0);
        if (pending.length < end + 4 + length) return;
        pending = pending.subarray(end + 4 + length);
        const out = answer(n++, socket);
        if (out !== undefined) socket.write(out);
      }
    });
    socket.on("error", () => undefined);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return server;
}

const targetOf = (server: Server) => {
  const port = (server.address() as AddressInfo).port;
  return { hostname: "127.0.0.1", port, host: `127.0.0.1:${port}` };
};

describe("bench/http1-client", function () {
  const servers: Server[] = [];
  const pool = new Http1Pool();
  const start = async (answer: Parameters<typeof scripted>[0]) => {
    const server = await scripted(answer);
    servers.push(server);
    return targetOf(server);
  };

  after(function () {
    pool.close();
    for (const s of servers) s.close();
  });

  it("reads Content-Length, chunked (extensions, trailers, split anywhere) and close-delimited answers", async function () {
    const json = '{"ok":true}';
    const cl = await start(() => `HTTP/1.1 200 OK\r\nContent-Length: ${json.length}\r\n\r\n${json}`);
    expect(await pool.post(cl, "/v1/jobs", "{}", 1_000, 1_000)).to.deep.equal({ status: 200, body: Buffer.from(json) });
    const chunked = await start((_, socket) => {
      const text = `HTTP/1.1 500 Internal\r\ntransfer-encoding: chunked\r\n\r\n4;x=y\r\n{"ok\r\n7\r\n":true}\r\n0\r\nx-trailer: 1\r\n\r\n`;
      // One byte per write: every parser state meets a split.
      for (const c of text) socket.write(c);
      return undefined;
    });
    expect(await pool.post(chunked, "/", "{}", 2_000, 1_000)).to.deep.equal({ status: 500, body: Buffer.from(json) });
    const closing = await start((_, socket) => {
      socket.end(`HTTP/1.1 200 OK\r\n\r\n${json}`);
      return undefined;
    });
    expect(await pool.post(closing, "/", "{}", 1_000, 1_000)).to.deep.equal({ status: 200, body: Buffer.from(json) });
    const interim = await start(() => `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n`);
    expect(await pool.post(interim, "/", "{}", 1_000, 1_000)).to.deep.equal({ status: 204, body: Buffer.alloc(0) });
  });

  it("keeps a socket alive across requests, and not after Connection: close", async function () {
    const seen: Socket[] = [];
    const target = await start((n, socket) => {
      seen.push(socket);
      return `HTTP/1.1 200 OK\r\nContent-Length: 1\r\n${n === 1 ? "Connection: close\r\n" : ""}\r\n${n}`;
    });
    for (let i = 0; i < 3; i++)
      expect((await pool.post(target, "/", "{}", 1_000, 100)).body.toString()).to.equal(String(i));
    expect(seen[0]).to.equal(seen[1]);
    expect(seen[2]).to.not.equal(seen[1]);
  });

  it("refuses malformed, oversized and overlong answers, and bytes after the answer", async function () {
    for (const bad of [
      "HTTP/1.1 2x0 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabEXTRA",
    ]) {
      const target = await start(() => bad);
      const error = await pool.post(target, "/", "{}", 1_000, 100).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, bad).to.be.instanceOf(Http1ProtocolError);
    }
  });

  it("times out, and keeps connection error codes", async function () {
    const silent = await start(() => undefined);
    const started = Date.now();
    const timeout = await pool.post(silent, "/", "{}", 150, 100).catch((e: Error) => e);
    expect((timeout as Error).message).to.equal("no answer within 150 ms");
    expect(Date.now() - started).to.be.within(140, 1_000);
    const closed = createServer();
    closed.listen(0, "127.0.0.1");
    await once(closed, "listening");
    const dead = targetOf(closed);
    closed.close();
    const refused = await pool.post(dead, "/", "{}", 1_000, 100).catch((e: Error & { code?: string }) => e);
    expect((refused as { code?: string }).code).to.equal("ECONNREFUSED");
    const hangUp = await start((_, socket) => {
      socket.destroy();
      return undefined;
    });
    const dropped = await pool.post(hangUp, "/", "{}", 1_000, 100).catch((e: Error & { code?: string }) => e);
    expect((dropped as { code?: string; staleSocket?: boolean }).code).to.equal("ECONNRESET");
    expect((dropped as { staleSocket?: boolean }).staleSocket, "a fresh socket is never stale").to.equal(undefined);
  });

  it("forward.ts sends a job again, once, on a kept-alive socket the node closed while idle", async function () {
    const node = createHttpServer((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end('{"served":true}'));
    });
    node.keepAliveTimeout = 100;
    node.listen(0, "127.0.0.1");
    await once(node, "listening");
    try {
      const url = `http://127.0.0.1:${(node.address() as AddressInfo).port}/v1/jobs`;
      expect((await postJson(url, "{}", 1_000)).status).to.equal(200);
      await new Promise((r) => setTimeout(r, 300)); // the node closes the idle socket
      const answer = await postJson(url, "{}", 1_000);
      expect({ status: answer.status, body: answer.body.toString() }).to.deep.equal({
        status: 200,
        body: '{"served":true}',
      });
    } finally {
      node.close();
    }
  });
});

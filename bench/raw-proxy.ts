// RawProxy: an HTTP/1.1 proxy in Node.js without node:http, for the gateway benchmark only. It
// reads requests off node:net sockets with a minimal parser of its own (request line, headers, a
// Content-Length body), forwards each body to one upstream with the gateway's forwarding client
// (bench/http1-client.ts, node:net too) and writes the answer back in one write. No checks,
// no state: the floor of an HTTP proxy in Node.js once llhttp and the node:http streams are out of
// the way (between bench/node-proxy.ts and the byte-copying bench/tcp-proxy.ts). Not hardened for
// untrusted clients (no limits, no smuggling defences). Usage:
// node bench/raw-proxy.ts <port> <upstream base URL>
import { STATUS_CODES } from "node:http";
import { createServer } from "node:net";

import { Http1Pool } from "./http1-client.ts";

const [portArg, upstreamArg] = process.argv.slice(2);
const upstream = new URL(upstreamArg!);
const HEAD_END = Buffer.from("\r\n\r\n");

/** A parsed message head: the first line and the framing headers. */
interface Head {
  line: string;
  length: number | undefined;
  chunked: boolean;
  bodyStart: number;
}

function parseHead(buf: Buffer): Head | undefined {
  const end = buf.indexOf(HEAD_END);
  if (end < 0) return undefined;
  const lines = buf.toString("latin1", 0, end).split("\r\n");
  let length: number | undefined;
  let chunked = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name === "content-length") length = Number(line.slice(colon + 1).trim());
    else if (name === "transfer-encoding")
      chunked = line
        .slice(colon + 1)
        .toLowerCase()
        .includes("chunked");
  }
  return { line: lines[0]!, length, chunked, bodyStart: end + 4 };
}

const target = { hostname: upstream.hostname, port: Number(upstream.port), host: upstream.host };
const pool = new Http1Pool();

function forward(path: string, body: Buffer, done: (status: string, body: Buffer) => void): void {
  pool.post(target, path, body.toString("utf8"), 30_000, 16 * 1024 * 1024).then(
    (answer) => done(`${answer.status} ${STATUS_CODES[answer.status] ?? "Unknown"}`, answer.body),
    () => done("502 Bad Gateway", Buffer.alloc(0)),
  );
}

const server = createServer({ noDelay: true }, (client) => {
  let pending: Buffer = Buffer.alloc(0);
  let busy = false;
  const next = (): void => {
    if (busy) return;
    const head = parseHead(pending);
    if (head === undefined) return;
    const end = head.bodyStart + (head.length ?? 0);
    if (pending.length < end) return;
    const [method, path] = head.line.split(" ");
    const body = pending.subarray(head.bodyStart, end);
    pending = pending.subarray(end);
    busy = true;
    const answer = (status: string, out: Buffer) => {
      client.write(
        Buffer.concat([
          Buffer.from(
            `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${out.length}\r\nkeep-alive: timeout=65\r\n\r\n`,
            "latin1",
          ),
          out,
        ]),
      );
      busy = false;
      next();
    };
    if (method === "GET") answer("200 OK", Buffer.from('{"status":"ready"}'));
    else forward(path!, body, answer);
  };
  client.on("data", (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    next();
  });
  client.on("error", () => client.destroy());
});
server.listen(Number(portArg), "127.0.0.1");
// A clean exit on SIGTERM, so that --cpu-prof writes its profile.
process.on("SIGTERM", () => process.exit(0));

// RawProxy: an HTTP/1.1 proxy in Node.js without node:http, for the gateway benchmark only. It
// reads requests off node:net sockets with a minimal codec of its own (request line, headers,
// a Content-Length body; the upstream's answer framed by Content-Length or chunked), forwards each
// body to one upstream over kept-alive sockets and writes the answer back in one write. No checks,
// no state: the floor of an HTTP proxy in Node.js once llhttp and the node:http streams are out of
// the way (between bench/node-proxy.ts and the byte-copying bench/tcp-proxy.ts). Not hardened for
// untrusted clients (no limits, no smuggling defences). Usage:
// node bench/raw-proxy.ts <port> <upstream base URL>
import { connect, createServer, type Socket } from "node:net";

const [portArg, upstreamArg] = process.argv.slice(2);
const upstream = new URL(upstreamArg!);
const HEAD_END = Buffer.from("\r\n\r\n");
const CRLF = Buffer.from("\r\n");

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

/** A chunked body starting at `from`: its bytes and where the message ends, or undefined if incomplete. */
function parseChunked(buf: Buffer, from: number): { body: Buffer; end: number } | undefined {
  const parts: Buffer[] = [];
  let at = from;
  for (;;) {
    const lineEnd = buf.indexOf(CRLF, at);
    if (lineEnd < 0) return undefined;
    const size = parseInt(buf.toString("latin1", at, lineEnd), 16);
    at = lineEnd + 2;
    if (size === 0) {
      // No trailers expected: the last chunk is followed by an empty line.
      if (buf.length < at + 2) return undefined;
      return { body: parts.length === 1 ? parts[0]! : Buffer.concat(parts), end: at + 2 };
    }
    if (buf.length < at + size + 2) return undefined;
    parts.push(buf.subarray(at, at + size));
    at += size + 2;
  }
}

/** One kept-alive upstream connection answering one request at a time. */
interface Upstream {
  socket: Socket;
  pending: Buffer;
  done: ((status: string, body: Buffer) => void) | undefined;
}

const idle: Upstream[] = [];

function openUpstream(): Upstream {
  const socket = connect({ host: upstream.hostname, port: Number(upstream.port), noDelay: true });
  const u: Upstream = { socket, pending: Buffer.alloc(0), done: undefined };
  socket.on("data", (chunk: Buffer) => {
    u.pending = u.pending.length === 0 ? chunk : Buffer.concat([u.pending, chunk]);
    const head = parseHead(u.pending);
    if (head === undefined || u.done === undefined) return;
    let body: Buffer;
    let end: number;
    if (head.chunked) {
      const parsed = parseChunked(u.pending, head.bodyStart);
      if (parsed === undefined) return;
      ({ body, end } = parsed);
    } else {
      end = head.bodyStart + (head.length ?? 0);
      if (u.pending.length < end) return;
      body = u.pending.subarray(head.bodyStart, end);
    }
    u.pending = u.pending.subarray(end);
    const done = u.done;
    u.done = undefined;
    idle.push(u);
    done(head.line.slice(9), body);
  });
  socket.on("error", () => socket.destroy());
  socket.on("close", () => {
    const i = idle.indexOf(u);
    if (i >= 0) idle.splice(i, 1);
    u.done?.("502 Bad Gateway", Buffer.alloc(0));
  });
  return u;
}

function forward(path: string, body: Buffer, done: (status: string, body: Buffer) => void): void {
  const u = idle.pop() ?? openUpstream();
  u.done = done;
  u.socket.write(
    Buffer.concat([
      Buffer.from(
        `POST ${path} HTTP/1.1\r\nhost: ${upstream.host}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`,
        "latin1",
      ),
      body,
    ]),
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

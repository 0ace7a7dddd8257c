// HybridProxy: bench/node-proxy.ts's node:http server in front of bench/raw-proxy.ts's upstream
// client (HTTP/1.1 on node:net with a minimal codec), for the gateway benchmark only: with
// node-proxy and raw-proxy it splits what node:http costs a proxy between its server and its
// client. Not hardened (no limits, no timeouts). Usage: node bench/hybrid-proxy.ts <port> <upstream base URL>
import { createServer } from "node:http";
import { connect, type Socket } from "node:net";
const [portArg, upstreamArg] = process.argv.slice(2);
const upstream = new URL(upstreamArg!);
const HEAD_END = Buffer.from("\r\n\r\n");
const CRLF = Buffer.from("\r\n");
function parseHead(buf: Buffer) {
  const end = buf.indexOf(HEAD_END);
  if (end < 0) return undefined;
  const lines = buf.toString("latin1", 0, end).split("\r\n");
  let length: number | undefined;
  let chunked = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const c = line.indexOf(":");
    const n = line.slice(0, c).trim().toLowerCase();
    if (n === "content-length") length = Number(line.slice(c + 1).trim());
    else if (n === "transfer-encoding")
      chunked = line
        .slice(c + 1)
        .toLowerCase()
        .includes("chunked");
  }
  return { line: lines[0]!, length, chunked, bodyStart: end + 4 };
}
function parseChunked(buf: Buffer, from: number) {
  const parts: Buffer[] = [];
  let at = from;
  for (;;) {
    const le = buf.indexOf(CRLF, at);
    if (le < 0) return undefined;
    const size = parseInt(buf.toString("latin1", at, le), 16);
    at = le + 2;
    if (size === 0) {
      if (buf.length < at + 2) return undefined;
      return { body: parts.length === 1 ? parts[0]! : Buffer.concat(parts), end: at + 2 };
    }
    if (buf.length < at + size + 2) return undefined;
    parts.push(buf.subarray(at, at + size));
    at += size + 2;
  }
}
interface Up {
  socket: Socket;
  pending: Buffer;
  done: ((s: number, b: Buffer) => void) | undefined;
}
const idle: Up[] = [];
function open(): Up {
  const socket = connect({ host: upstream.hostname, port: Number(upstream.port), noDelay: true });
  const u: Up = { socket, pending: Buffer.alloc(0), done: undefined };
  socket.on("data", (chunk: Buffer) => {
    u.pending = u.pending.length === 0 ? chunk : Buffer.concat([u.pending, chunk]);
    const head = parseHead(u.pending);
    if (!head || !u.done) return;
    let body: Buffer, end: number;
    if (head.chunked) {
      const p = parseChunked(u.pending, head.bodyStart);
      if (!p) return;
      body = p.body;
      end = p.end;
    } else {
      end = head.bodyStart + (head.length ?? 0);
      if (u.pending.length < end) return;
      body = u.pending.subarray(head.bodyStart, end);
    }
    u.pending = u.pending.subarray(end);
    const d = u.done;
    u.done = undefined;
    idle.push(u);
    d(Number(head.line.slice(9, 12)), body);
  });
  socket.on("error", () => socket.destroy());
  return u;
}
const server = createServer((req, res) => {
  if (req.method === "GET") {
    res.writeHead(200).end('{"status":"ready"}');
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const u = idle.pop() ?? open();
    u.done = (status, out) =>
      res.writeHead(status, { "content-type": "application/json", "content-length": out.length }).end(out);
    u.socket.write(
      Buffer.concat([
        Buffer.from(
          `POST ${req.url} HTTP/1.1\r\nhost: ${upstream.host}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`,
          "latin1",
        ),
        body,
      ]),
    );
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(portArg), "127.0.0.1");
// A clean exit on SIGTERM, so that --cpu-prof writes its profile.
process.on("SIGTERM", () => process.exit(0));

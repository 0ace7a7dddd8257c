// UndiciProxy: NodeProxy (bench/node-proxy.ts) with undici's Pool as the upstream client instead
// of node:http's request: the same node:http server in front, no parsing, checks or state. For
// the gateway benchmark only, beside the node:http floor. Usage:
// node bench/undici-proxy.ts <port> <upstream base URL>
import { createServer } from "node:http";

import { Pool } from "undici";

const [portArg, upstreamArg] = process.argv.slice(2);
const pool = new Pool(upstreamArg!, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    pool
      .request({
        path: req.url ?? "/",
        method: (req.method ?? "GET") as "POST",
        headers: { "content-type": "application/json" },
        body,
      })
      .then(async (answer) => {
        const out = Buffer.from(await answer.body.arrayBuffer());
        res.writeHead(answer.statusCode, { "content-type": "application/json", "content-length": out.length }).end(out);
      })
      .catch(() => res.writeHead(502).end());
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(portArg), "127.0.0.1");
// A clean exit on SIGTERM, so that --cpu-prof writes its profile.
process.on("SIGTERM", () => process.exit(0));

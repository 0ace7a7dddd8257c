// HybridProxy: bench/node-proxy.ts's node:http server in front of the gateway's forwarding client
// (bench/http1-client.ts: HTTP/1.1 on node:net), for the gateway benchmark only: the gateway's
// own server/client combination with no logic; beside node-proxy and raw-proxy it splits what
// node:http costs a proxy between its server and its client. Usage:
// node bench/hybrid-proxy.ts <port> <upstream base URL>
import { createServer } from "node:http";

import { Http1Pool } from "./http1-client.ts";

const [portArg, upstreamArg] = process.argv.slice(2);
const upstream = new URL(upstreamArg!);
const target = { hostname: upstream.hostname, port: Number(upstream.port), host: upstream.host };
const pool = new Http1Pool();

const server = createServer((req, res) => {
  if (req.method === "GET") {
    res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ready"}');
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString("utf8");
    pool.post(target, req.url ?? "/", body, 30_000, 16 * 1024 * 1024).then(
      (answer) =>
        res
          .writeHead(answer.status, { "content-type": "application/json", "content-length": answer.body.length })
          .end(answer.body),
      () => res.writeHead(502).end(),
    );
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(portArg), "127.0.0.1");
// A clean exit on SIGTERM, so that --cpu-prof writes its profile.
process.on("SIGTERM", () => process.exit(0));

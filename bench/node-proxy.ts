// NodeProxy: the least a Node.js HTTP proxy can do, for the gateway benchmark only. It forwards
// each request's body to one upstream over keep-alive connections and pipes the answer back,
// with no parsing, checks or state: the floor under any gateway written on node:http, measured
// beside the gateway and nginx. Usage: node bench/node-proxy.ts <port> <upstream base URL>
import { Agent, createServer, request } from "node:http";

const [portArg, upstreamArg] = process.argv.slice(2);
const upstream = new URL(upstreamArg!);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        agent,
        headers: { "content-type": "application/json", "content-length": body.length },
      },
      (answer) => {
        const parts: Buffer[] = [];
        answer.on("data", (c: Buffer) => parts.push(c));
        answer.on("end", () => {
          const out = Buffer.concat(parts);
          res
            .writeHead(answer.statusCode ?? 502, { "content-type": "application/json", "content-length": out.length })
            .end(out);
        });
      },
    );
    forward.on("error", () => res.writeHead(502).end());
    forward.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(portArg), "127.0.0.1");
// A clean exit on SIGTERM, so that --cpu-prof writes its profile.
process.on("SIGTERM", () => process.exit(0));

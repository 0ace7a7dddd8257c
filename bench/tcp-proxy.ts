// TcpProxy: a Node.js process in the path doing nothing but copying bytes (each client
// connection piped to its own upstream connection, no HTTP parsing at all): the absolute floor of
// any hop through a Node.js event loop, for the gateway benchmark only. Not an HTTP proxy (nginx
// and the others parse every request); it bounds what an HTTP proxy in Node.js could ever reach.
// Usage: node bench/tcp-proxy.ts <port> <upstream base URL>
import { connect, createServer } from "node:net";

const [portArg, upstreamArg] = process.argv.slice(2);
const upstream = new URL(upstreamArg!);

const server = createServer({ noDelay: true }, (client) => {
  const up = connect({ host: upstream.hostname, port: Number(upstream.port), noDelay: true });
  client.pipe(up);
  up.pipe(client);
  client.on("error", () => up.destroy());
  up.on("error", () => client.destroy());
  client.on("close", () => up.destroy());
  up.on("close", () => client.destroy());
});
server.listen(Number(portArg), "127.0.0.1");
// A clean exit on SIGTERM, so that --cpu-prof writes its profile.
process.on("SIGTERM", () => process.exit(0));

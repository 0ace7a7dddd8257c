// Starts blob peers in their own process (as real peers are): one per directory given on the
// command line; prints their URLs as one JSON line, then serves until killed.
import { startBlobServer } from "../sdk/blob/server.ts";

const dirs = process.argv.slice(2);
const servers = await Promise.all(dirs.map((dir) => startBlobServer({ dir })));
console.log(JSON.stringify(servers.map((s) => s.url)));
process.on("SIGTERM", () => {
  void Promise.all(servers.map((s) => s.close())).then(() => process.exit(0));
});

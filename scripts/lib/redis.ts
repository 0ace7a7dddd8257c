// A private Redis for the tests, the benchmarks and the demo: `redis-server` on a free loopback
// port, nothing kept on disk, stopped with its process group. A machine without the binary gets
// one clear message saying what to install or which variable to set instead.
import { spawnSync } from "node:child_process";
import { createConnection } from "node:net";

import { LocalChainError, freePort, spawnGroup, type ProcessGroup } from "./local-chain.ts";

/** The binary started when REDIS_URL is not set. */
export const REDIS_SERVER_BIN = process.env.REDIS_SERVER_BIN ?? "redis-server";

export interface LocalRedis {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGTERM, then SIGKILL). Data is gone: nothing is persisted. */
  stop(): Promise<void>;
  /** Stops the server and starts a new one on the same port (an outage of the queue). */
  restart(): Promise<void>;
}

/** True when `redis-server` can be started on this machine. */
export function hasRedisServer(): boolean {
  return spawnSync(REDIS_SERVER_BIN, ["--version"], { stdio: "ignore" }).status === 0;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: "127.0.0.1", port }, () => {
        socket.end();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline)
      throw new LocalChainError(`redis-server did not listen on port ${port} in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function launch(port: number): ProcessGroup {
  return spawnGroup(REDIS_SERVER_BIN, [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--protected-mode",
    "yes",
  ]);
}

/** Starts a private `redis-server` on a free loopback port. */
export async function startRedis(options: { timeoutMs?: number } = {}): Promise<LocalRedis> {
  if (!hasRedisServer()) {
    throw new LocalChainError(
      `cannot start Redis: '${REDIS_SERVER_BIN}' is not installed. Install it (Debian: apt-get install redis-server) ` +
        "or point REDIS_URL at a running Redis.",
    );
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  const port = await freePort();
  let group = launch(port);
  await waitForPort(port, timeoutMs);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      await group.stop();
    },
    async restart() {
      await group.stop();
      group = launch(port);
      await waitForPort(port, timeoutMs);
    },
  };
}

/** REDIS_URL when set, else a private server (stopped by `stop`). */
export async function redisForRun(): Promise<{ url: string; stop(): Promise<void> }> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv) return { url: fromEnv, stop: async () => {} };
  return startRedis();
}

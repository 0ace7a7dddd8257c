#!/usr/bin/env node
// The keeper: `node keeper/main.ts`. Configuration from the environment (docs/keeper.md). Without
// REDIS_URL it starts a private redis-server, for development only: production sets REDIS_URL.
import { pino } from "pino";

import { redisForRun } from "../scripts/lib/redis.ts";
import { keeperConfig } from "./config.ts";
import { startKeeper } from "./service.ts";

const logger = pino({ name: "keeper", level: process.env.INFRAMESH_LOG_LEVEL ?? "info" });

let redis: { url: string; stop(): Promise<void> } | undefined;
try {
  const config = keeperConfig(process.env);
  if (config.redisUrl === undefined) redis = await redisForRun();
  const keeper = await startKeeper({ ...config, redisUrl: config.redisUrl ?? redis?.url }, logger);
  process.stdout.write(`${JSON.stringify({ msg: "listening", url: keeper.url })}\n`);
  await new Promise<void>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => resolve());
  });
  await keeper.stop();
} catch (error) {
  logger.error({ err: error }, (error as Error).message);
  process.exitCode = 1;
} finally {
  await redis?.stop();
}

// The services of a local network (oracle, node agents, gateway, keeper) as child processes for
// the demo and the cross-component tests: each runs `node <entry>.ts` in its own process group,
// is ready when its readiness URL answers 200, and can be killed (SIGKILL, as a crash) or
// stopped (SIGTERM) on purpose.
import { LocalChainError, PROJECT_ROOT, spawnGroup, type ProcessGroup } from "./local-chain.ts";

export interface ServiceOptions {
  /** A name for messages ("oracle", "agent-2"). */
  name: string;
  /** The entry point, relative to the project root (e.g. "oracle/main.ts"). */
  entry: string;
  args?: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** Polled until it answers 200. */
  readyUrl: string;
  timeoutMs?: number;
}

export interface Service {
  readonly name: string;
  readonly group: ProcessGroup;
  /** SIGKILL: a crash, nothing flushed. */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL after the grace period. */
  stop(): Promise<void>;
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** Starts a service and waits until it is ready; a service that exits first fails with its output. */
export async function startService(options: ServiceOptions): Promise<Service> {
  const group = spawnGroup(process.execPath, [options.entry, ...(options.args ?? [])], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...options.env },
  });
  let exited = false;
  void group.exited.then(() => {
    exited = true;
  });
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  while (!(await answers(options.readyUrl))) {
    if (exited) {
      throw new LocalChainError(`${options.name} exited before it was ready:\n${group.output().slice(-4_000)}`);
    }
    if (Date.now() > deadline) {
      await group.stop(1_000);
      throw new LocalChainError(
        `${options.name} was not ready at ${options.readyUrl} in time:\n${group.output().slice(-4_000)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    name: options.name,
    group,
    async kill() {
      try {
        process.kill(-group.pid, "SIGKILL");
      } catch {
        // already gone
      }
      await group.exited;
    },
    stop: () => group.stop(),
  };
}

// A private Docker engine for the tests, CI and a developer's machine: `dockerd` from Debian's
// docker.io with its own data root, exec root, pidfile and unix socket in a temp dir, started the
// way TOOLCHAIN.md found to work here (vfs storage, no iptables, no bridge: containers run with
// --network none). Stopped with its process group; a leftover nsfs mount under the exec root is
// unmounted. DOCKER_HOST (unix://…) uses an engine that is already running instead.
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import Docker from "dockerode";

import { LocalChainError, spawnGroup, type ProcessGroup } from "./local-chain.ts";

export const DOCKERD_BIN = process.env.DOCKERD_BIN ?? "dockerd";
const START_TIMEOUT_MS = 30_000;

export interface DockerEngine {
  /** unix://… for DOCKER_HOST. */
  readonly host: string;
  readonly socketPath: string;
  readonly docker: Docker;
  /** True when this helper started the engine (and `stop` stops it). */
  readonly owned: boolean;
  stop(): Promise<void>;
}

/** True when dockerd can be started here (the binary exists and we are root). */
export function hasDockerd(): boolean {
  return (
    spawnSync(DOCKERD_BIN, ["--version"], { stdio: "ignore" }).status === 0 &&
    typeof process.getuid === "function" &&
    process.getuid() === 0
  );
}

async function waitForPing(docker: Docker, group: ProcessGroup | null): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    try {
      await docker.ping();
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new LocalChainError(`dockerd did not answer within ${START_TIMEOUT_MS} ms\n${group?.output() ?? ""}`, {
          cause: error,
        });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Uses DOCKER_HOST when set, else starts a private dockerd. */
export async function startDockerEngine(): Promise<DockerEngine> {
  const existing = process.env.DOCKER_HOST;
  if (existing !== undefined && existing.startsWith("unix://")) {
    const socketPath = existing.slice("unix://".length);
    const docker = new Docker({ socketPath });
    await waitForPing(docker, null);
    return { host: existing, socketPath, docker, owned: false, stop: async () => undefined };
  }
  if (!hasDockerd()) {
    throw new LocalChainError(
      `cannot start a Docker engine: ${DOCKERD_BIN} is missing or this is not root (apt-get install -y docker.io, or set DOCKER_HOST=unix://…)`,
    );
  }
  // Short base path: a unix socket path must stay under 108 bytes.
  const dir = await mkdtemp(path.join(tmpdir(), "imd-"));
  const socketPath = path.join(dir, "docker.sock");
  const execRoot = path.join(dir, "exec");
  const group = spawnGroup(DOCKERD_BIN, [
    "--storage-driver=vfs",
    "--iptables=false",
    "--ip6tables=false",
    "--ip-masq=false",
    "--bridge=none",
    `--data-root=${path.join(dir, "data")}`,
    `--exec-root=${execRoot}`,
    `--pidfile=${path.join(dir, "docker.pid")}`,
    `--host=unix://${socketPath}`,
  ]);
  const docker = new Docker({ socketPath });
  try {
    await waitForPing(docker, group);
  } catch (error) {
    await group.stop(2_000);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    host: `unix://${socketPath}`,
    socketPath,
    docker,
    owned: true,
    async stop() {
      await group.stop(10_000);
      // dockerd can leave its netns mount behind; unmount whatever is still mounted under our dirs.
      const mounts = spawnSync("sh", ["-c", `grep -o ' ${dir}[^ ]*' /proc/self/mounts`], { encoding: "utf8" });
      for (const mount of (mounts.stdout ?? "")
        .split("\n")
        .map((m) => m.trim())
        .filter(Boolean)
        .reverse()) {
        spawnSync("umount", ["-l", mount], { stdio: "ignore" });
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

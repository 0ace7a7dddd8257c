// The Docker runtime: each model in its own container, built from the model bundle (see
// docker-image.ts), with model.yaml's resources as limits (memory, CPUs, GPUs when asked), no
// network at all (--network none), a read-only root, all capabilities dropped, an unprivileged
// user and a pids limit. The agent reaches the server through a unix socket in a host directory
// bind-mounted at /run/inframesh — the only way in or out. The agent supervises it: a container
// that exits (crash, OOM kill) is replaced with backoff; one that hangs past a job's deadline is
// killed and replaced, since a hung model cannot be trusted with the next job.
import { chmod, mkdtemp, rm, stat } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";

import type Docker from "dockerode";
import type { Logger } from "pino";

import { ensureModelImage, IMAGE_MODEL_PATH, IMAGE_SOCKET_DIR } from "./docker-image.ts";
import { ModelRuntimeError, restartDelayMs, type InferResponse, type ModelRuntime } from "./process-runtime.ts";

const STARTUP_TIMEOUT_MS = 60_000;
const PIDS_LIMIT = 64;
const NOBODY = "65534:65534";
const NANO_CPUS_PER_CPU = 1e9;

export interface DockerModelSpec {
  name: string;
  weightsPath: string;
  memoryBytes: number;
  cpus: number;
  gpus: number;
  /** A model server program to run instead of the ONNX server (tests of misbehaving servers). */
  server?: string;
}

/** The container's create options. Pure. */
export function containerOptions(spec: DockerModelSpec, image: string, socketDir: string, name: string) {
  const cmd = ["/usr/local/bin/node", `--max-old-space-size=${Math.max(32, Math.floor(spec.memoryBytes / 2 ** 20))}`];
  cmd.push(spec.server === undefined ? "/app/models/simplenet/server.ts" : "/app/custom-server.ts");
  cmd.push("--model", IMAGE_MODEL_PATH);
  return {
    name,
    Image: image,
    Cmd: cmd,
    User: NOBODY,
    WorkingDir: "/app",
    Env: [`INFRAMESH_MODEL_SOCKET=${IMAGE_SOCKET_DIR}/model.sock`, "INFRAMESH_MODEL_PATH=" + IMAGE_MODEL_PATH],
    NetworkDisabled: true,
    HostConfig: {
      NetworkMode: "none",
      ReadonlyRootfs: true,
      Memory: spec.memoryBytes,
      MemorySwap: spec.memoryBytes, // no swap: the limit is the limit
      NanoCpus: Math.round(spec.cpus * NANO_CPUS_PER_CPU),
      PidsLimit: PIDS_LIMIT,
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      Binds: [`${socketDir}:${IMAGE_SOCKET_DIR}`],
      Tmpfs: { "/tmp": "rw,noexec,nosuid,size=16m" },
      ...(spec.gpus > 0 ? { DeviceRequests: [{ Driver: "nvidia", Count: spec.gpus, Capabilities: [["gpu"]] }] } : {}),
    },
  };
}

/** One HTTP request to a server on a unix socket. */
export function requestOverSocket(
  socketPath: string,
  method: string,
  urlPath: string,
  body: Uint8Array | undefined,
  timeoutMs: number,
): Promise<InferResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method,
        path: urlPath,
        headers: body === undefined ? {} : { "content-type": "application/json", "content-length": body.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.setTimeout(timeoutMs, () => {
      req.destroy(new ModelRuntimeError("TIMEOUT", `no answer within ${timeoutMs} ms`));
    });
    req.on("error", (error) =>
      reject(
        error instanceof ModelRuntimeError
          ? error
          : new ModelRuntimeError("MODEL_FAILED", `model container failed: ${error.message}`, { cause: error }),
      ),
    );
    req.end(body === undefined ? undefined : Buffer.from(body));
  });
}

export class DockerModel implements ModelRuntime {
  readonly spec: DockerModelSpec;
  #docker: Docker;
  #log: Logger;
  #image: string | null = null;
  #socketDir: string | null = null;
  #container: Docker.Container | null = null;
  #ready = false;
  #stopping = false;
  #restarts = 0;
  #failures = 0;
  #restartTimer: NodeJS.Timeout | null = null;
  #generation = 0;
  /** How the last container ended: its exit status and whether the kernel's OOM killer ended it. */
  lastExit: { status: number | null; oomKilled: boolean } | null = null;

  constructor(spec: DockerModelSpec, docker: Docker, log: Logger) {
    this.spec = spec;
    this.#docker = docker;
    this.#log = log.child({ model: spec.name, runtime: "docker" });
  }

  get restarts(): number {
    return this.#restarts;
  }

  get containerId(): string | undefined {
    return this.#container?.id;
  }

  get #socket(): string {
    return path.join(this.#socketDir!, "model.sock");
  }

  async start(): Promise<void> {
    this.#stopping = false;
    this.#image = await ensureModelImage(this.#docker, this.spec.weightsPath, this.spec.server);
    // Short path: unix socket paths are limited to 108 bytes.
    this.#socketDir = await mkdtemp(path.join(tmpdir(), "ims-"));
    await chmod(this.#socketDir, 0o777); // the container's unprivileged user creates the socket
    await this.#run();
  }

  async #run(): Promise<void> {
    const generation = ++this.#generation;
    await rm(this.#socket, { force: true });
    const name = `inframesh-${this.spec.name}-${process.pid}-${generation}-${Date.now().toString(36)}`;
    const container = await this.#docker.createContainer(
      containerOptions(this.spec, this.#image!, this.#socketDir!, name),
    );
    this.#container = container;
    await container.start();
    void container.wait().then(
      (result: { StatusCode?: number }) => this.#onExit(container, generation, result.StatusCode ?? null),
      () => this.#onExit(container, generation, null),
    );
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    for (;;) {
      if (this.#container !== container)
        throw new ModelRuntimeError("START_FAILED", `${this.spec.name} exited at start`);
      if (await stat(this.#socket).catch(() => null)) {
        const health = await requestOverSocket(this.#socket, "GET", "/health", undefined, 2_000).catch(() => null);
        if (health?.status === 200) break;
      }
      if (Date.now() > deadline) {
        throw new ModelRuntimeError("START_FAILED", `${this.spec.name}: container not healthy within 60 s`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    this.#ready = true;
    this.#failures = 0;
    this.#log.info({ container: container.id.slice(0, 12), image: this.#image }, "model container ready");
  }

  async #onExit(container: Docker.Container, generation: number, status: number | null): Promise<void> {
    if (generation !== this.#generation) return;
    this.#ready = false;
    this.#container = null;
    const inspect = await container.inspect().catch(() => null);
    await container.remove({ force: true }).catch(() => undefined);
    this.lastExit = { status, oomKilled: inspect?.State?.OOMKilled === true };
    if (this.#stopping) return;
    this.#log.warn({ status, oom_killed: inspect?.State?.OOMKilled ?? null }, "model container exited; replacing it");
    this.#failures += 1;
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      if (this.#stopping) return;
      this.#restarts += 1;
      this.#run().catch((error: unknown) => {
        this.#log.error({ err: error }, "model container restart failed");
      });
    }, restartDelayMs(this.#failures));
  }

  async healthy(): Promise<boolean> {
    if (!this.#ready || this.#socketDir === null) return false;
    const health = await requestOverSocket(this.#socket, "GET", "/health", undefined, 2_000).catch(() => null);
    return health?.status === 200;
  }

  async infer(input: Uint8Array, timeoutMs: number): Promise<InferResponse> {
    if (!this.#ready) throw new ModelRuntimeError("NOT_RUNNING", `${this.spec.name} is not running (restarting)`);
    try {
      return await requestOverSocket(this.#socket, "POST", "/infer", input, timeoutMs);
    } catch (error) {
      if (error instanceof ModelRuntimeError && error.code === "TIMEOUT") {
        this.#log.warn("model container hung past a job's deadline; killing it");
        this.#ready = false;
        await this.#container?.kill().catch(() => undefined);
        throw new ModelRuntimeError("TIMEOUT", `${this.spec.name} did not answer within ${timeoutMs} ms`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#ready = false;
    if (this.#restartTimer !== null) clearTimeout(this.#restartTimer);
    const container = this.#container;
    this.#container = null;
    this.#generation += 1;
    if (container !== null) await container.remove({ force: true }).catch(() => undefined);
    if (this.#socketDir !== null) await rm(this.#socketDir, { recursive: true, force: true });
  }
}

// The process runtime: the embedded default where no Docker engine is present. Each model runs as
// a child process speaking the inference contract (models/simplenet/contract.ts) on a loopback
// port it picks itself and announces on stdout; the agent probes its health, restarts it when it
// dies (with backoff), and stops it with its process group.
//
// Limits "where the OS allows": V8's heap is capped at the model's memory (--max-old-space-size)
// and the child runs at a lower scheduling priority. Native memory (onnxruntime's arena) and CPU
// shares need cgroups, which the Docker runtime applies; a process has no portable way to.
import { spawn, type ChildProcess } from "node:child_process";
import { setPriority } from "node:os";
import path from "node:path";

import type { Logger } from "pino";

/** Where the ONNX model server lives: the program `runtime: onnxruntime` models are served with. */
export const ONNX_SERVER = path.resolve(import.meta.dirname, "..", "models", "simplenet", "server.ts");
const STARTUP_TIMEOUT_MS = 30_000;
const OUTPUT_LIMIT = 16 * 1024;
/** Niceness of model processes: the agent's HTTP loop stays responsive under a busy model. */
const MODEL_NICENESS = 5;

export class ModelRuntimeError extends Error {
  readonly code: "START_FAILED" | "NOT_RUNNING" | "TIMEOUT" | "MODEL_FAILED" | "BAD_OUTPUT";
  constructor(code: ModelRuntimeError["code"], message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ModelRuntimeError";
    this.code = code;
  }
}

export interface ModelProcessSpec {
  /** A name for logs and errors. */
  name: string;
  /** The weights file (model.onnx). */
  modelPath: string;
  /** Memory limit in bytes (model.yaml resources.memory). */
  memoryBytes: number;
  /** The server program; default ONNX_SERVER. Tests point it at misbehaving servers. */
  server?: string;
  /** Extra environment for the server. */
  env?: NodeJS.ProcessEnv;
}

/** What a model server answered to POST /infer. */
export interface InferResponse {
  status: number;
  body: Buffer;
}

/** One model's server under the agent's supervision: a child process or a container. */
export interface ModelRuntime {
  readonly restarts: number;
  start(): Promise<void>;
  healthy(): Promise<boolean>;
  infer(input: Uint8Array, timeoutMs: number): Promise<InferResponse>;
  stop(): Promise<void>;
}

/** Backoff before the n-th consecutive restart (1-based): 0.25 s doubling to 10 s. Pure. */
export function restartDelayMs(attempt: number): number {
  return Math.min(10_000, 250 * 2 ** Math.max(0, attempt - 1));
}

/** Reads the `listening http://…` line a model server prints once ready. Pure. */
export function parseListeningLine(output: string): string | null {
  const match = /^listening (http:\/\/127\.0\.0\.1:\d+)\s*$/m.exec(output);
  return match ? match[1]! : null;
}

/** One model's server process, kept alive until `stop()`. */
export class ModelProcess implements ModelRuntime {
  readonly spec: ModelProcessSpec;
  #log: Logger;
  #child: ChildProcess | null = null;
  #url: string | null = null;
  #stopping = false;
  #restarts = 0;
  #consecutiveFailures = 0;
  #restartTimer: NodeJS.Timeout | null = null;
  #output = "";

  constructor(spec: ModelProcessSpec, log: Logger) {
    this.spec = spec;
    this.#log = log.child({ model: spec.name });
  }

  /** The server's base URL while it is up, else null. */
  get url(): string | null {
    return this.#url;
  }

  /** How many times the process was restarted after dying. */
  get restarts(): number {
    return this.#restarts;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts the server and waits until it announced its port and answered /health. */
  async start(): Promise<void> {
    this.#stopping = false;
    await this.#spawn();
  }

  async #spawn(): Promise<void> {
    const memoryMiB = Math.max(64, Math.floor(this.spec.memoryBytes / 2 ** 20));
    const child = spawn(
      process.execPath,
      [`--max-old-space-size=${memoryMiB}`, this.spec.server ?? ONNX_SERVER, "--model", this.spec.modelPath],
      {
        env: {
          ...process.env,
          ...this.spec.env,
          INFRAMESH_MODEL_HOST: "127.0.0.1",
          INFRAMESH_MODEL_PORT: "0",
          INFRAMESH_MODEL_EXIT_WITH_PARENT: "1",
        },
        // stdin stays open as a lifeline: when the agent dies, even by SIGKILL, the pipe closes and
        // the server exits instead of lingering as an orphan.
        stdio: ["pipe", "pipe", "pipe"],
        detached: true,
      },
    );
    this.#child = child;
    this.#output = "";
    try {
      if (child.pid !== undefined) setPriority(child.pid, MODEL_NICENESS);
    } catch {
      // Lowering priority is best effort.
    }
    const collect = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString("utf8")).slice(-OUTPUT_LIMIT);
    };
    child.stderr!.on("data", collect);
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new ModelRuntimeError("START_FAILED", `${this.spec.name}: no listening line within 30 s`));
      }, STARTUP_TIMEOUT_MS);
      child.stdout!.on("data", (chunk: Buffer) => {
        collect(chunk);
        const found = parseListeningLine(this.#output);
        if (found !== null) {
          clearTimeout(timer);
          resolve(found);
        }
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(
          new ModelRuntimeError(
            "START_FAILED",
            `${this.spec.name}: server exited (${signal ?? `code ${code}`}) before listening: ${this.#output.trim().slice(-500)}`,
          ),
        );
      });
    });
    child.once("exit", (code, signal) => this.#onExit(child, code, signal));
    await this.#probe(url);
    this.#url = url;
    this.#consecutiveFailures = 0;
    this.#log.info({ url, pid: child.pid }, "model server ready");
  }

  async #probe(url: string): Promise<void> {
    const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) }).catch((error: unknown) => {
      throw new ModelRuntimeError("START_FAILED", `${this.spec.name}: health probe failed`, { cause: error });
    });
    await response.arrayBuffer();
    if (response.status !== 200) {
      throw new ModelRuntimeError("START_FAILED", `${this.spec.name}: health probe answered ${response.status}`);
    }
  }

  #onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#child !== child) return;
    this.#url = null;
    this.#child = null;
    if (this.#stopping) return;
    this.#log.warn({ code, signal, output: this.#output.slice(-500) }, "model server died; restarting");
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    this.#consecutiveFailures += 1;
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      if (this.#stopping) return;
      this.#restarts += 1;
      this.#spawn().catch((error: unknown) => {
        this.#log.error({ err: error }, "model server restart failed");
        if (!this.#stopping) this.#scheduleRestart();
      });
    }, restartDelayMs(this.#consecutiveFailures));
  }

  /** Whether the server is up and answers /health now. */
  async healthy(): Promise<boolean> {
    const url = this.#url;
    if (url === null) return false;
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      return response.status === 200;
    } catch {
      return false;
    }
  }

  /** POSTs `input` to /infer; throws ModelRuntimeError when down, timed out or unreachable. */
  async infer(input: Uint8Array, timeoutMs: number): Promise<InferResponse> {
    const url = this.#url;
    if (url === null) throw new ModelRuntimeError("NOT_RUNNING", `${this.spec.name} is not running (restarting)`);
    let response: Response;
    try {
      response = await fetch(`${url}/infer`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: new Uint8Array(input),
        signal: AbortSignal.timeout(timeoutMs),
      });
      return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
    } catch (error) {
      if (error instanceof DOMException && error.name === "TimeoutError") {
        throw new ModelRuntimeError("TIMEOUT", `${this.spec.name} did not answer within ${timeoutMs} ms`, {
          cause: error,
        });
      }
      throw new ModelRuntimeError("MODEL_FAILED", `${this.spec.name} failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /** Stops the server (SIGTERM to its group, SIGKILL after 3 s) and any pending restart. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#restartTimer !== null) clearTimeout(this.#restartTimer);
    const child = this.#child;
    this.#url = null;
    if (child === null || child.pid === undefined || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const kill = (signal: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // already gone
      }
    };
    kill("SIGTERM");
    const timer = setTimeout(() => kill("SIGKILL"), 3_000);
    await exited;
    clearTimeout(timer);
  }
}

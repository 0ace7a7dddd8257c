// A throwaway local chain for the demo and the slow tests: `hardhat node` on a free port,
// Hardhat commands run against it, and no process left behind.
//
// Every child runs in its own process group (detached), so stopping it also stops whatever
// it started. Children still alive when this process exits (an error, Ctrl-C handled by the
// caller, process.exit) get SIGKILL from an 'exit' hook. A SIGKILL of this process itself
// cannot be caught: then `kill -- -<pid>` of the logged group is the way out.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import path from "node:path";

export const PROJECT_ROOT = path.resolve(import.meta.dirname, "..", "..");
const HARDHAT_BIN = path.join(PROJECT_ROOT, "node_modules", ".bin", "hardhat");
const OUTPUT_LIMIT = 64 * 1024;

/** A child process or the local chain misbehaved. */
export class LocalChainError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "LocalChainError";
  }
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child process leading its own process group. */
export interface ProcessGroup {
  readonly pid: number;
  readonly exited: Promise<ExitStatus>;
  /** stdout and stderr interleaved (the last 64 KiB). */
  output(): string;
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once the leader has exited. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** SIGKILLs every child group still running. Synchronous: safe in an 'exit' handler. */
export function killAllChildren(): void {
  for (const child of live) killGroup(child, "SIGKILL");
  live.clear();
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Starts `command args…` as the leader of a new process group. */
export function spawnGroup(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): ProcessGroup {
  if (!exitHookInstalled) {
    process.on("exit", killAllChildren);
    exitHookInstalled = true;
  }
  const child = spawn(command, args, {
    cwd: options.cwd ?? PROJECT_ROOT,
    env: options.env ?? process.env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid === undefined) throw new LocalChainError(`Could not start ${command}`);
  const pid = child.pid;
  live.add(child);

  let output = "";
  const collect = (chunk: Buffer): void => {
    output += chunk.toString("utf8");
    if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);

  const exited = new Promise<ExitStatus>((resolve) => {
    child.on("error", (error) => {
      collect(Buffer.from(`\n${String(error)}\n`));
    });
    child.on("close", (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });

  return {
    pid,
    exited,
    output: () => output,
    async stop(graceMs = 5_000) {
      if (!live.has(child)) return;
      killGroup(child, "SIGTERM");
      const timer = setTimeout(() => killGroup(child, "SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
      killGroup(child, "SIGKILL"); // grandchildren that ignored SIGTERM
    },
  };
}

/** Runs `hardhat …` with this process's Node (Hardhat 3 needs Node 22; a bare `node` may be older). */
export function spawnHardhat(args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): ProcessGroup {
  return spawnGroup(process.execPath, [HARDHAT_BIN, ...args], options);
}

export interface CommandResult {
  code: number | null;
  output: string;
}

/** Runs a Hardhat command to completion; a run over `timeoutMs` is killed and fails. */
export async function runHardhat(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CommandResult> {
  const group = spawnHardhat(args, options);
  const timeoutMs = options.timeoutMs ?? 180_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void group.stop(1_000);
  }, timeoutMs);
  const status = await group.exited;
  clearTimeout(timer);
  if (timedOut) {
    throw new LocalChainError(`hardhat ${args.join(" ")} took over ${timeoutMs} ms\n${group.output()}`);
  }
  return { code: status.code, output: group.output() };
}

/** A port nobody listens on right now (the OS's pick). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === "object") resolve(address.port);
        else reject(new LocalChainError("No free port found"));
      });
    });
  });
}

/**
 * One JSON-RPC call over HTTP. hardhat node closes idle keep-alive sockets; fetch then fails with
 * "other side closed" before the request was read, so that one failure is retried once.
 */
export async function rpc(url: string, method: string, params: unknown[] = []): Promise<unknown> {
  const send = () =>
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    });
  const response = await send().catch((error: Error & { cause?: { message?: string } }) => {
    if (error.cause?.message !== "other side closed") throw error;
    return send();
  });
  const body = (await response.json()) as { result?: unknown; error?: { message: string } };
  if (body.error !== undefined) throw new LocalChainError(`${method}: ${body.error.message}`);
  return body.result;
}

export interface LocalChain {
  rpcUrl: string;
  port: number;
  chainId: number;
  node: ProcessGroup;
  stop(): Promise<void>;
}

/**
 * Starts `hardhat node --hostname 127.0.0.1 --port <free>` and waits until it answers
 * eth_chainId. Picks another port when the chosen one was taken in between.
 */
export async function startHardhatNode(options: { timeoutMs?: number; chainId?: number } = {}): Promise<LocalChain> {
  const extraArgs = options.chainId === undefined ? [] : ["--chain-id", String(options.chainId)];
  for (let attempt = 1; ; attempt++) {
    try {
      return await startHardhatNodeOnce(options.timeoutMs ?? 90_000, extraArgs);
    } catch (error) {
      const portTaken = error instanceof LocalChainError && /EADDRINUSE/.test(error.message);
      if (!portTaken || attempt === 3) throw error;
    }
  }
}

async function startHardhatNodeOnce(timeoutMs: number, extraArgs: readonly string[]): Promise<LocalChain> {
  const port = await freePort();
  const rpcUrl = `http://127.0.0.1:${port}`;
  const node = spawnHardhat(["node", "--hostname", "127.0.0.1", "--port", String(port), ...extraArgs]);
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void node.exited.then(() => {
    exited = true;
  });
  for (;;) {
    if (exited) {
      throw new LocalChainError(`hardhat node exited before answering on ${rpcUrl}\n${node.output()}`);
    }
    try {
      const chainId = Number(await rpc(rpcUrl, "eth_chainId"));
      return { rpcUrl, port, chainId, node, stop: () => node.stop() };
    } catch {
      if (Date.now() > deadline) {
        await node.stop();
        throw new LocalChainError(`hardhat node did not answer on ${rpcUrl} within ${timeoutMs} ms\n${node.output()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

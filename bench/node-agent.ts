// Node agent benchmark: what a job costs on top of the model. On loopback, in one run, against a
// real `hardhat node` (contracts deployed, simplenet registered and published):
//   direct — POST /infer to a simplenet model server process (the model alone);
//   agent  — POST /v1/jobs to a node agent process serving the same model: schema checks, EIP-712
//            recovery of the client signature, model run, output hash, proof-of-serving signature,
//            the outbox write (PGlite on disk) and the answer. Work units are signed beforehand
//            (the client's cost, not the node's).
// Each sequentially (latency p50/p99) and with 8 requests in flight (throughput). Prints a table
// and writes bench/results/node-agent.json. No target: the figures feed the gateway benchmark.
import { randomBytes } from "node:crypto";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";

import { pino } from "pino";
import { createPublicClient, createWalletClient, defineChain, http, sha256, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { encodeInferInput } from "../models/simplenet/contract.ts";
import { createKeystore } from "../node-agent/keystore.ts";
import { ModelProcess } from "../node-agent/process-runtime.ts";
import { publishAction } from "../scripts/cli/model.ts";
import { PROJECT_ROOT, runHardhat, startHardhatNode } from "../scripts/lib/local-chain.ts";
import { formatSection, formatTable } from "../scripts/lib/table.ts";
import { startBlobServer } from "../sdk/blob/server.ts";
import { parseDeploymentRecord } from "../sdk/deployment.ts";
import { inframeshDomain, signWorkUnit, type WorkUnit } from "../sdk/eip712.ts";
import { registerModel } from "../sdk/models.ts";
import { workUnitJson } from "../sdk/receipt.ts";

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 500);
const CONCURRENCY = 8;
const WARMUP = 50;
// Hardhat dev keys (public test keys): #0 publishes, #2 is the client.
const PUBLISHER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const client = privateKeyToAccount("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9d8a5d0c0e3e0");
const PASSWORD = "bench password";
const SIMPLENET_DIR = path.join(PROJECT_ROOT, "models", "simplenet");
const DEPLOYMENT_ID = "local-bench-node-agent";

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** Runs `send(i)` for i < n, `concurrency` at a time; returns per-call latencies (ms) and wall time (s). */
async function drive(n: number, concurrency: number, send: (i: number) => Promise<void>) {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const t = performance.now();
        await send(i);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { latencies: latencies.sort((a, b) => a - b), seconds: (performance.now() - started) / 1000 };
}

const work = await mkdtemp(path.join(tmpdir(), "inframesh-bench-agent-"));
const chain = await startHardhatNode();
const cleanups: (() => Promise<void>)[] = [async () => chain.stop()];
try {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    INFRAMESH_RPC_URL: chain.rpcUrl,
    INFRAMESH_DEPLOYMENT_ID: DEPLOYMENT_ID,
    INFRAMESH_DEPLOYMENTS_DIR: work,
    HARDHAT_BUILD_PROFILE: "default",
  };
  const deployed = await runHardhat(["deploy", "--network", "localhost"], { env });
  if (deployed.code !== 0) throw new Error(deployed.output);
  cleanups.push(() =>
    rm(path.join(PROJECT_ROOT, "ignition", "deployments", DEPLOYMENT_ID), { recursive: true, force: true }),
  );
  const record = parseDeploymentRecord(JSON.parse(await readFile(path.join(work, "localhost.json"), "utf8")));
  const domain = inframeshDomain(record.chainId, record.contracts.epochSettlement.address);
  const viemChain = defineChain({
    id: record.chainId,
    name: "localhost",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [chain.rpcUrl] } },
  });
  const publicClient = createPublicClient({ chain: viemChain, transport: http(chain.rpcUrl) }) as PublicClient;
  const publisher = createWalletClient({
    account: privateKeyToAccount(PUBLISHER_KEY),
    chain: viemChain,
    transport: http(chain.rpcUrl),
  });
  const contracts = { publicClient, modelRegistry: record.contracts.modelRegistry.address };
  const peer = await startBlobServer({ dir: path.join(work, "peer") });
  cleanups.push(() => peer.close());
  const { modelId } = await registerModel(contracts, publisher, "simplenet");
  await publishAction(contracts, publisher, SIMPLENET_DIR, {
    peers: [peer.url],
    copies: 1,
    price: 1n,
    mature: true,
    out: path.join(work, "release"),
  });

  // StandInOracle: accepts every receipt (the reward oracle of issue 5 is not integrated yet).
  const oracle = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(202, { "content-type": "application/json" }).end('{"status":"accepted"}'));
  });
  await new Promise<void>((resolve) => oracle.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise((resolve) => oracle.close(() => resolve())));
  const oracleAddress = oracle.address();
  const oracleUrl = `http://127.0.0.1:${typeof oracleAddress === "object" && oracleAddress ? oracleAddress.port : 0}`;

  const keystore = path.join(work, "operator.json");
  await createKeystore(keystore, PASSWORD);
  const configFile = path.join(work, "node-agent.yaml");
  await mkdir(path.join(work, "data"), { recursive: true });
  await writeFile(
    configFile,
    JSON.stringify({
      chain: { rpc_url: chain.rpcUrl, deployment: path.join(work, "localhost.json") },
      listen: { host: "127.0.0.1", port: 0 },
      models: [{ model: "simplenet", bundle: SIMPLENET_DIR }],
      oracles: [oracleUrl],
      data_dir: path.join(work, "data"),
      keystore,
      log_level: "warn",
    }),
  );
  const agentProcess = spawn(
    process.execPath,
    [path.join(PROJECT_ROOT, "node-agent", "main.ts"), "--config", configFile],
    {
      env: { ...process.env, INFRAMESH_KEYSTORE_PASSWORD: PASSWORD },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  cleanups.push(async () => {
    agentProcess.kill("SIGTERM");
    await new Promise((r) => agentProcess.once("exit", r));
  });
  const agentUrl = await new Promise<string>((resolve, reject) => {
    let out = "";
    agentProcess.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      const match = /listening at (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    agentProcess.once("exit", (code) => reject(new Error(`agent exited ${code}`)));
  });

  const model = new ModelProcess(
    { name: "simplenet", modelPath: path.join(SIMPLENET_DIR, "simplenet.onnx"), memoryBytes: 256 * 2 ** 20 },
    pino({ level: "silent" }),
  );
  await model.start();
  cleanups.push(() => model.stop());

  const inputs = Array.from({ length: 64 }, (_, i) =>
    encodeInferInput(Array.from({ length: 16 }, (_, j) => (i * j) % 7)),
  );
  const total = WARMUP + 2 * REQUESTS;
  const bodies: string[] = [];
  for (let i = 0; i < total; i++) {
    const input = inputs[i % inputs.length]!;
    const workUnit: WorkUnit = {
      jobId: `0x${randomBytes(32).toString("hex")}`,
      modelId,
      modelVersion: 0n,
      inputHash: sha256(input),
      maxFee: 1n,
      client: client.address,
      expiresAt: BigInt(Math.floor(Date.now() / 1000) + 3600),
    };
    const signature = await signWorkUnit(client, domain, workUnit);
    bodies.push(JSON.stringify({ work_unit: workUnitJson(workUnit, input), client_signature: signature }));
  }

  const direct = async (i: number) => {
    const answer = await model.infer(inputs[i % inputs.length]!, 10_000);
    if (answer.status !== 200) throw new Error(`model answered ${answer.status}`);
  };
  let used = 0;
  const viaAgent = async () => {
    const body = bodies[used++]!;
    const response = await fetch(`${agentUrl}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`agent answered ${response.status}: ${text}`);
  };

  await drive(WARMUP, 1, direct);
  await drive(WARMUP, 1, viaAgent);
  const directSeq = await drive(REQUESTS, 1, direct);
  const agentSeq = await drive(REQUESTS, 1, viaAgent);
  const directPar = await drive(REQUESTS, CONCURRENCY, direct);
  const agentPar = await drive(REQUESTS - WARMUP, CONCURRENCY, viaAgent);

  const figures = {
    requests: REQUESTS,
    concurrency: CONCURRENCY,
    direct_p50_ms: quantile(directSeq.latencies, 0.5),
    direct_p99_ms: quantile(directSeq.latencies, 0.99),
    agent_p50_ms: quantile(agentSeq.latencies, 0.5),
    agent_p99_ms: quantile(agentSeq.latencies, 0.99),
    agent_added_p50_ms: quantile(agentSeq.latencies, 0.5) - quantile(directSeq.latencies, 0.5),
    direct_rps: REQUESTS / directPar.seconds,
    agent_rps: (REQUESTS - WARMUP) / agentPar.seconds,
  };
  const ms = (x: number) => x.toFixed(2);
  console.log(
    formatSection(
      `Node agent job overhead (simplenet, loopback, ${REQUESTS} requests)`,
      formatTable(
        [
          { header: "path" },
          ...["p50 ms", "p99 ms", `req/s @${CONCURRENCY}`].map((header) => ({ header, align: "right" as const })),
        ],
        [
          ["direct POST /infer", ms(figures.direct_p50_ms), ms(figures.direct_p99_ms), figures.direct_rps.toFixed(0)],
          ["agent POST /v1/jobs", ms(figures.agent_p50_ms), ms(figures.agent_p99_ms), figures.agent_rps.toFixed(0)],
        ],
      ),
    ),
  );
  console.log(`agent adds ${ms(figures.agent_added_p50_ms)} ms at p50`);
  await mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await writeFile(new URL("./results/node-agent.json", import.meta.url), JSON.stringify(figures, null, 2) + "\n");
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await rm(work, { recursive: true, force: true });
}

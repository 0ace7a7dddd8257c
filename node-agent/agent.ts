// The node agent: an operator's daemon. It reads its config and key, checks the chain is the one
// its deployment record describes, loads every configured model (a local bundle, or the serving
// version through the shard-manifest loader), runs each in the process runtime, and serves
//
//   POST /v1/jobs   a client-signed work unit → output + signed proof of serving (receipt to the outbox)
//   GET  /healthz   200 once every model is loaded and healthy, else 503 with what is missing
//   GET  /metrics   Prometheus text: jobs by outcome, latency, errors, outbox deliveries
//
// Errors are JSON `{ "error": code, "reason": message }`; malformed input is never a 5xx.
import { readFile } from "node:fs/promises";
import type { Server } from "node:http";
import path from "node:path";

import Docker from "dockerode";
import express, { type NextFunction, type Request, type Response } from "express";
import { pino, type Logger } from "pino";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { createPublicClient, http, type Address, type Hex, type PublicClient, type TypedDataDomain } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";

import { parseDeploymentRecord, type DeploymentRecord } from "../sdk/deployment.ts";
import { inframeshDomain } from "../sdk/eip712.ts";
import { loadModel } from "../sdk/manifest/loader.ts";
import { descriptorHash, parseModelYaml } from "../sdk/manifest/model-yaml.ts";
import { findModelId, readModel, servingPointerReader, type ModelContracts } from "../sdk/models.ts";
import type { AgentConfig } from "./config.ts";
import { startHeartbeats } from "../gateway/heartbeat-client.ts";
import { detectGpus, detectHardware, readGpuUsage } from "./hardware.ts";
import { JobError, serveJob, type ServedModelTerms } from "./jobs.ts";
import { keystorePassword, openKeystore } from "./keystore.ts";
import { Outbox, OutboxSender, openOutboxDatabase, type SqlClient } from "./outbox.ts";
import { DockerModel } from "./docker-runtime.ts";
import { ModelProcess, type ModelRuntime } from "./process-runtime.ts";
import { SimplenetProver } from "../circuits/prover.ts";
import { loadZkModel, proveJobBody, type ZkModel } from "./zk.ts";

const PROJECT_ROOT = path.resolve(import.meta.dirname, "..");
/** Memory limit of a model loaded from chain, whose model.yaml the manifest does not carry. */
const DEFAULT_MODEL_MEMORY = 512 * 2 ** 20;
const DEFAULT_MODEL_CPUS = 1;
const DEFAULT_REFRESH_MS = 30_000;
const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";
/** Largest job body: the 8 MiB base64 input the receipt schema allows, plus the work unit. */
const MAX_JOB_BODY = "12mb";

export class AgentStartError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AgentStartError";
  }
}

export interface ServedModel extends ServedModelTerms {
  weightsPath: string;
  source: "bundle" | "chain";
  process: ModelRuntime;
  /** A zk-required version's quantised weights, checked against its verifier. */
  zk?: ZkModel;
}

export interface AgentOptions {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Model server program override (tests of misbehaving servers). */
  modelServer?: string;
  /** Extra environment for model servers. */
  modelEnv?: NodeJS.ProcessEnv;
  /** Outbox sender poll interval. */
  outboxPollMs?: number;
  /** How often serving versions and prices are re-read from chain (default 30 s). */
  refreshMs?: number;
  /** The Docker engine for `runtime: docker` (default: DOCKER_HOST, else /var/run/docker.sock). */
  docker?: Docker;
}

export interface Agent {
  readonly url: string;
  readonly nodeId: Address;
  readonly models: ReadonlyMap<bigint, ServedModel>;
  readonly outbox: Outbox;
  readonly sender: OutboxSender;
  readonly domain: TypedDataDomain;
  /** Re-reads every model's serving version and price from chain now (also done periodically). */
  refresh(): Promise<void>;
  stop(): Promise<void>;
}

/** The Docker engine of DOCKER_HOST (unix://…), else the default socket. */
export function dockerFromEnv(env: NodeJS.ProcessEnv): Docker {
  const host = env.DOCKER_HOST;
  if (host !== undefined && host !== "") {
    if (!host.startsWith("unix://")) throw new AgentStartError(`DOCKER_HOST must be unix://<socket>, got ${host}`);
    return new Docker({ socketPath: host.slice("unix://".length) });
  }
  return new Docker({ socketPath: "/var/run/docker.sock" });
}

/** Reads the deployment record a config names. */
export async function readDeploymentFor(config: AgentConfig, env: NodeJS.ProcessEnv): Promise<DeploymentRecord> {
  const file =
    config.chain.deployment ??
    path.join(env.INFRAMESH_DEPLOYMENTS_DIR ?? path.join(PROJECT_ROOT, "deployments"), `${config.chain.network}.json`);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new AgentStartError(`no deployment record at ${file} (deploy first: npx hardhat deploy)`, { cause: error });
  }
  try {
    return parseDeploymentRecord(JSON.parse(text));
  } catch (error) {
    throw new AgentStartError(`${file}: ${(error as Error).message}`, { cause: error });
  }
}

/** Connects to the chain and checks it is the deployment's chain. */
export async function connectChain(rpcUrl: string, record: DeploymentRecord): Promise<PublicClient> {
  const client = createPublicClient({ transport: http(rpcUrl, { retryCount: 1, timeout: 15_000 }) }) as PublicClient;
  let chainId: number;
  try {
    chainId = await client.getChainId();
  } catch (error) {
    throw new AgentStartError(`cannot reach the chain at ${rpcUrl}`, { cause: error });
  }
  if (chainId !== record.chainId) {
    throw new AgentStartError(
      `${rpcUrl} is chain ${chainId}, but the deployment record is for chain ${record.chainId}`,
    );
  }
  return client;
}

function metricsOf(registry: Registry) {
  return {
    jobs: new Counter({
      name: "inframesh_agent_jobs_total",
      help: "Jobs by model and outcome (served, or the error code)",
      labelNames: ["model", "outcome"],
      registers: [registry],
    }),
    latency: new Histogram({
      name: "inframesh_agent_job_duration_seconds",
      help: "Time to answer a job, checks and model run included",
      labelNames: ["model"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    errors: new Counter({
      name: "inframesh_agent_errors_total",
      help: "Requests answered with an error, by code",
      labelNames: ["code"],
      registers: [registry],
    }),
    deliveries: new Counter({
      name: "inframesh_agent_receipt_deliveries_total",
      help: "Receipt delivery attempts by outcome (delivered, rejected, retry)",
      labelNames: ["outcome"],
      registers: [registry],
    }),
  };
}

async function resolveModelId(contracts: ModelContracts, model: string | number): Promise<bigint> {
  if (typeof model === "number") return BigInt(model);
  const id = await findModelId(contracts, model);
  if (id === undefined) throw new AgentStartError(`model "${model}" is not registered on chain`);
  return id;
}

/** Everything a configured model needs before its process starts: terms from chain, weights on disk. */
async function prepareModel(
  entry: AgentConfig["models"][number],
  contracts: ModelContracts,
  config: AgentConfig,
  log: Logger,
): Promise<Omit<ServedModel, "process"> & { memoryBytes: number; cpus: number; gpus: number; verifyingKeyHash: Hex }> {
  const modelId = await resolveModelId(contracts, entry.model);
  const status = await readModel(contracts, modelId).catch((error: unknown) => {
    throw new AgentStartError(`model ${String(entry.model)} cannot be read from the registry`, { cause: error });
  });
  if (status.serving === undefined) {
    throw new AgentStartError(`model ${modelId} (${status.name}) has no serving version (setMatureModel)`);
  }
  const record = status.serving.record;
  const terms = {
    modelId,
    name: status.name,
    version: status.serving.version,
    price: record.price,
    ...(record.zkVerifier === ZERO_ADDRESS ? {} : { zkVerifier: record.zkVerifier }),
    verifyingKeyHash: record.verifyingKeyHash,
  };
  if (entry.bundle !== undefined) {
    const yamlBytes = await readFile(path.join(entry.bundle, "model.yaml")).catch((error: unknown) => {
      throw new AgentStartError(`bundle ${entry.bundle} has no model.yaml`, { cause: error });
    });
    const descriptor = parseModelYaml(yamlBytes);
    if (descriptor.runtime !== "onnxruntime") {
      throw new AgentStartError(
        `bundle ${entry.bundle}: runtime "${descriptor.runtime}" is not supported (onnxruntime)`,
      );
    }
    if (`0x${descriptorHash(yamlBytes)}` !== status.serving.record.descriptorHash) {
      log.warn(
        { model: status.name, bundle: entry.bundle },
        "the bundle's model.yaml differs from the serving version's descriptor (development bundle)",
      );
    }
    return {
      ...terms,
      weightsPath: path.join(entry.bundle, descriptor.entrypoint),
      source: "bundle",
      memoryBytes: descriptor.resources.memory,
      cpus: descriptor.resources.cpu,
      gpus: descriptor.resources.gpu,
    };
  }
  if (config.blob_peers.length === 0) {
    throw new AgentStartError(`model ${status.name}: no bundle and no blob_peers to load it from`);
  }
  const loaded = await loadModel({
    modelId,
    readPointer: servingPointerReader(contracts),
    peers: config.blob_peers,
    cacheDir: path.join(config.data_dir, "models"),
  }).catch((error: unknown) => {
    throw new AgentStartError(`model ${status.name}: ${(error as Error).message}`, { cause: error });
  });
  if (loaded.manifest.model_kind !== "onnx") {
    throw new AgentStartError(`model ${status.name}: kind "${loaded.manifest.model_kind}" is not supported (onnx)`);
  }
  log.info({ model: status.name, manifest: loaded.manifestHash, fetched: loaded.fetched }, "model installed");
  return {
    ...terms,
    weightsPath: loaded.weightsPath,
    source: "chain",
    memoryBytes: DEFAULT_MODEL_MEMORY,
    cpus: DEFAULT_MODEL_CPUS,
    gpus: 0,
  };
}

/** Starts the agent; resolves once every model is loaded and the HTTP server listens. */
export async function startAgent(config: AgentConfig, options: AgentOptions = {}): Promise<Agent> {
  const env = options.env ?? process.env;
  const log = options.logger ?? pino({ level: config.log_level, base: { part: "node-agent" } });
  const account: PrivateKeyAccount = await openKeystore(
    config.keystore,
    await keystorePassword(env, config.keystore_password_file),
  );
  const record = await readDeploymentFor(config, env);
  const publicClient = await connectChain(config.chain.rpc_url, record);
  const contracts: ModelContracts = { publicClient, modelRegistry: record.contracts.modelRegistry.address };
  const domain = inframeshDomain(record.chainId, record.contracts.epochSettlement.address);
  log.info({ node_id: account.address, chain: record.chainId }, "operator key unlocked");

  const db: SqlClient = await openOutboxDatabase(config.data_dir, env.DATABASE_URL);
  const outbox = new Outbox(db, config.oracles);
  const sender = new OutboxSender(
    outbox,
    log,
    options.outboxPollMs === undefined ? {} : { pollMs: options.outboxPollMs },
  );

  const registry = new Registry();
  const metrics = metricsOf(registry);
  const outboxGauge = new Gauge({
    name: "inframesh_agent_outbox_deliveries",
    help: "Receipt deliveries in the outbox by state",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      const counts = await outbox.counts();
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
  void outboxGauge;
  // GPU gauges exist only where nvidia-smi found GPUs; read at scrape time.
  if (detectGpus().length > 0) {
    new Gauge({
      name: "inframesh_agent_gpu_utilization_percent",
      help: "GPU utilization (nvidia-smi)",
      labelNames: ["gpu"],
      registers: [registry],
      collect() {
        for (const gpu of readGpuUsage()) this.set({ gpu: String(gpu.index) }, gpu.utilization_percent);
      },
    });
    new Gauge({
      name: "inframesh_agent_gpu_memory_used_bytes",
      help: "GPU memory in use (nvidia-smi)",
      labelNames: ["gpu"],
      registers: [registry],
      collect() {
        for (const gpu of readGpuUsage()) this.set({ gpu: String(gpu.index) }, gpu.memory_used_mib * 2 ** 20);
      },
    });
  }
  sender.onDelivered = (_delivery, outcome) => metrics.deliveries.inc({ outcome: outcome.kind });

  const models = new Map<bigint, ServedModel>();
  let loading = true;

  const app = express();
  app.disable("x-powered-by");
  app.get("/healthz", async (_req, res) => {
    const states = await Promise.all(
      [...models.values()].map(async (m) => ({
        model: m.name,
        id: m.modelId.toString(),
        ready: await m.process.healthy(),
      })),
    );
    const ready = !loading && states.length === config.models.length && states.every((s) => s.ready);
    res
      .status(ready ? 200 : 503)
      .json({ status: ready ? "ready" : loading ? "loading" : "degraded", node_id: account.address, models: states });
  });
  app.get("/metrics", async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  app.post("/v1/jobs", express.raw({ type: () => true, limit: MAX_JOB_BODY }), async (req: Request, res: Response) => {
    const started = performance.now();
    let body: unknown;
    try {
      // No body at all leaves req.body unset: that is malformed input too, not a server error.
      body = JSON.parse(Buffer.isBuffer(req.body) ? req.body.toString("utf8") : "");
    } catch {
      metrics.errors.inc({ code: "bad_json" });
      res.status(400).json({ error: "bad_json", reason: "the body must be JSON: { work_unit, client_signature }" });
      return;
    }
    // Label by served model only: a label taken from client input would let anyone grow the metrics without bound.
    const requested = (body as { work_unit?: { model_ref?: { model_id?: unknown } } } | null)?.work_unit?.model_ref
      ?.model_id;
    const modelLabel =
      Number.isSafeInteger(requested) && models.has(BigInt(requested as number)) ? String(requested) : "other";
    try {
      const { answer } = await serveJob(
        {
          domain,
          node: account,
          served: models,
          timeoutMs: config.job_timeout_ms,
          now: () => Date.now(),
          infer: (modelId, input, timeoutMs) => models.get(modelId)!.process.infer(input, timeoutMs),
          proveZk: async (modelId, input) => {
            const zk = models.get(modelId)?.zk;
            if (zk === undefined || prover === undefined) throw new Error(`model ${modelId} has no zk weights loaded`);
            return proveJobBody(await prover, zk, input, badProof);
          },
          seen: (jobId) => outbox.has(jobId),
          record: (jobId, receipt) => outbox.add(jobId, receipt, Date.now()),
        },
        body,
      );
      sender.wakeSoon();
      metrics.jobs.inc({ model: modelLabel, outcome: "served" });
      metrics.latency.observe({ model: modelLabel }, (performance.now() - started) / 1000);
      res.status(200).json(answer);
    } catch (error) {
      const jobError =
        error instanceof JobError ? error : new JobError(500, "internal", "the node failed; no receipt was written");
      if (!(error instanceof JobError)) log.error({ err: error }, "job failed unexpectedly");
      else if (jobError.status >= 500) log.warn({ code: jobError.code, reason: jobError.message }, "job failed");
      metrics.jobs.inc({ model: modelLabel, outcome: jobError.code });
      metrics.errors.inc({ code: jobError.code });
      res.status(jobError.status).json({ error: jobError.code, reason: jobError.message });
    }
  });
  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: "not_found", reason: "routes: POST /v1/jobs, GET /healthz, GET /metrics" });
  });
  app.use((error: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
    const status = error.status !== undefined && error.status >= 400 && error.status < 500 ? error.status : 500;
    metrics.errors.inc({ code: error.type ?? "internal" });
    res.status(status).json({ error: error.type ?? "bad_request", reason: error.message });
  });

  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.listen.port, config.listen.host, (error?: Error) =>
      error ? reject(error) : resolve(s),
    );
  }).catch((error: unknown) => {
    throw new AgentStartError(`cannot listen on ${config.listen.host}:${config.listen.port}`, { cause: error });
  });
  const address = server.address();
  const url = typeof address === "object" && address !== null ? `http://${config.listen.host}:${address.port}` : "";

  // One warm prover for every zk-required model, built (and run once) when the first one loads.
  let prover: Promise<SimplenetProver> | undefined;
  const badProof = env.INFRAMESH_AGENT_TEST_BAD_PROOF === "1";
  if (badProof) log.warn("INFRAMESH_AGENT_TEST_BAD_PROOF=1: zk receipts carry proofs of another input (test hook)");
  const zkFor = async (prepared: Awaited<ReturnType<typeof prepareModel>>): Promise<{ zk?: ZkModel }> => {
    if (prepared.zkVerifier === undefined) return {};
    const zk = await loadZkModel(publicClient, prepared.weightsPath, {
      zkVerifier: prepared.zkVerifier,
      verifyingKeyHash: prepared.verifyingKeyHash,
    }).catch((error: unknown) => {
      throw new AgentStartError(`model ${prepared.name} (zk-required): ${(error as Error).message}`, { cause: error });
    });
    prover ??= SimplenetProver.load().then(async (warm) => {
      const started = performance.now();
      await warm.prove(zk.weights, new Int32Array(16));
      log.info({ ms: Math.round(performance.now() - started) }, "zk prover warmed up");
      return warm;
    });
    await prover;
    log.info({ model: prepared.name, verifier: prepared.zkVerifier }, "zk-required version: proving every job");
    return { zk };
  };

  let docker: Docker | undefined;
  const runtimeFor = (prepared: Awaited<ReturnType<typeof prepareModel>>): ModelRuntime => {
    const server = options.modelServer === undefined ? {} : { server: options.modelServer };
    return config.runtime === "docker"
      ? new DockerModel(
          {
            name: prepared.name,
            weightsPath: prepared.weightsPath,
            memoryBytes: prepared.memoryBytes,
            cpus: prepared.cpus,
            gpus: prepared.gpus,
            ...server,
          },
          (docker ??= options.docker ?? dockerFromEnv(env)),
          log,
        )
      : new ModelProcess(
          {
            name: prepared.name,
            modelPath: prepared.weightsPath,
            memoryBytes: prepared.memoryBytes,
            ...server,
            ...(options.modelEnv === undefined ? {} : { env: options.modelEnv }),
          },
          log,
        );
  };

  // The registry can change a model's price or serving version at any time. A new price applies at
  // once; a new serving version of a model loaded from chain is loaded and started beside the old
  // one, swapped in, and the old one stopped after the job deadline (jobs in flight finish on it).
  let refreshing: Promise<void> | null = null;
  const refreshOnce = async () => {
    for (const entry of config.models) {
      const modelId = await resolveModelId(contracts, entry.model);
      const served = models.get(modelId);
      const status = await readModel(contracts, modelId);
      if (served === undefined || status.serving === undefined) continue;
      const { version, record } = status.serving;
      if (version === served.version) {
        if (record.price !== served.price) {
          models.set(modelId, { ...served, price: record.price });
          log.info({ model: served.name, price: record.price.toString() }, "price changed");
        }
        continue;
      }
      if (served.source === "bundle") {
        log.warn({ model: served.name, version: version.toString() }, "new serving version; a bundle cannot follow it");
        continue;
      }
      const prepared = await prepareModel(entry, contracts, config, log);
      const zk = await zkFor(prepared);
      const runner = runtimeFor(prepared);
      await runner.start();
      models.set(modelId, { ...prepared, ...zk, process: runner });
      log.info({ model: served.name, version: version.toString() }, "now serving the new version");
      await new Promise((r) => setTimeout(r, Math.min(config.job_timeout_ms, 5_000)));
      await served.process.stop();
    }
  };
  const refresh = (): Promise<void> => {
    refreshing ??= refreshOnce()
      .catch((error: unknown) => log.error({ err: error }, "refreshing the serving versions failed"))
      .finally(() => {
        refreshing = null;
      });
    return refreshing;
  };
  const refreshTimer = setInterval(() => void refresh(), options.refreshMs ?? DEFAULT_REFRESH_MS);
  refreshTimer.unref();

  let heartbeats: { stop(): Promise<void> } | undefined;
  const stop = async () => {
    await heartbeats?.stop();
    clearInterval(refreshTimer);
    await refreshing;
    await sender.stop();
    await Promise.all([...models.values()].map((m) => m.process.stop()));
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await db.close();
  };

  try {
    sender.start(); // receipts left by a previous run go out while the models load
    for (const entry of config.models) {
      const prepared = await prepareModel(entry, contracts, config, log);
      const zk = await zkFor(prepared);
      const runner = runtimeFor(prepared);
      models.set(prepared.modelId, { ...prepared, ...zk, process: runner });
      await runner.start();
    }
    loading = false;
  } catch (error) {
    await stop();
    throw error;
  }
  if (config.gateway !== undefined) {
    // Gateways route only to nodes whose signed heartbeat is fresh: start once every model is loaded.
    const spec = detectHardware();
    heartbeats = startHeartbeats(
      {
        chainId: record.chainId,
        signer: account,
        endpoint: config.endpoint ?? url,
        models: () => [...models.keys()],
        load: () => 0,
        hardware: {
          cpus: spec.cpu_cores,
          memory_bytes: spec.memory_bytes,
          gpus: spec.gpus.map((g) => ({ name: g.name, memory_bytes: g.memory_mib * 2 ** 20 })),
        },
      },
      {
        gateways: [config.gateway],
        onError: (gateway, error) => log.warn({ gateway, err: error.message }, "heartbeat refused"),
      },
    );
  }
  log.info({ url, models: [...models.values()].map((m) => m.name) }, "node agent ready");
  return { url, nodeId: account.address, models, outbox, sender, domain, refresh, stop };
}

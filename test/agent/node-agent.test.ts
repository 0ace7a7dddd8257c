// The node agent against real parts: a `hardhat node` with the contracts deployed, simplenet
// published through a blob peer and loaded by the agent through the shard-manifest loader, real
// onnxruntime model processes, real EIP-712 signatures, PGlite outbox on disk.
//
// Slow (child processes): run alone with `npx hardhat test mocha test/agent/node-agent.test.ts`.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { pino } from "pino";
import {
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  sha256,
  type Hex,
  type Account,
  type Chain,
  type PublicClient,
  type Transport,
  type TypedDataDomain,
  type WalletClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { encodeInferInput } from "../../models/simplenet/contract.ts";
import { startAgent, type Agent } from "../../node-agent/agent.ts";
import { parseAgentConfig, type AgentConfig, type AgentConfigInput } from "../../node-agent/config.ts";
import { createKeystore } from "../../node-agent/keystore.ts";
import { publishAction } from "../../scripts/cli/model.ts";
import { PROJECT_ROOT, runHardhat, startHardhatNode, type LocalChain } from "../../scripts/lib/local-chain.ts";
import { hasDockerd, startDockerEngine, type DockerEngine } from "../../scripts/lib/docker.ts";
import { startBlobServer, type BlobServer } from "../../sdk/blob/server.ts";
import { parseDeploymentRecord, type DeploymentRecord } from "../../sdk/deployment.ts";
import {
  hashWorkUnit,
  inframeshDomain,
  recoverProofOfServingSigner,
  signWorkUnit,
  type WorkUnit,
} from "../../sdk/eip712.ts";
import { registerModel, type ModelContracts } from "../../sdk/models.ts";
import { proofOfServingOf, receiptJsonSchema, workUnitJson, type Receipt } from "../../sdk/receipt.ts";

const DEPLOYMENT_ID = "local-test-node-agent";
// Hardhat node's dev accounts (public, well-known test keys): #0 publishes, #2 is the client.
const PUBLISHER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const CLIENT_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9d8a5d0c0e3e0";
const OTHER_KEY = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
const PASSWORD = "correct horse battery staple";
const PRICE = 1_000n;
const SIMPLENET_DIR = path.join(PROJECT_ROOT, "models", "simplenet");
const MISBEHAVING = path.join(import.meta.dirname, "fixtures", "misbehaving-model-server.ts");

/**
 * StandInOracle: a stand-in for the reward oracle's `POST /v1/receipts` (issue 5), which is being
 * built in parallel and not yet integrated. It validates each receipt with the shared schema and
 * answers like the oracle's API: 202 accepted, 409 for a job id it already has, 400 for an invalid
 * receipt; `mode` makes it fail (503) or refuse (400) to test retries and rejections.
 */
class StandInOracle {
  readonly receipts = new Map<string, Receipt>();
  posts = 0;
  mode: "accept" | "unavailable" | "refuse" = "accept";
  #server: Server;
  url = "";

  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.posts += 1;
        const reply = (status: number, body: object) =>
          res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
        if (req.method !== "POST" || req.url !== "/v1/receipts") return reply(404, { error: "not_found" });
        if (this.mode === "unavailable") return reply(503, { error: "unavailable", reason: "stand-in outage" });
        if (this.mode === "refuse") return reply(400, { error: "node_not_eligible", reason: "stand-in refusal" });
        const parsed = receiptJsonSchema.safeParse(JSON.parse(Buffer.concat(chunks).toString()));
        if (!parsed.success) return reply(400, { error: "bad_receipt", reason: parsed.error.message });
        const jobId = parsed.data.work_unit.job_id;
        if (this.receipts.has(jobId)) return reply(409, { error: "duplicate_job", reason: jobId });
        this.receipts.set(jobId, parsed.data);
        return reply(202, { status: "accepted", job_id: jobId });
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    const address = this.#server.address();
    if (address !== null && typeof address === "object") this.url = `http://127.0.0.1:${address.port}`;
    return this;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("node agent", function () {
  this.timeout(240_000);

  let chain: LocalChain;
  let work: string;
  let peer: BlobServer;
  let record: DeploymentRecord;
  let domain: TypedDataDomain;
  let modelId: bigint;
  let oracleA: StandInOracle;
  let oracleB: StandInOracle;
  let agent: Agent;
  let keystore: string;
  let publisher: WalletClient<Transport, Chain, Account>;
  let contracts: ModelContracts;
  const client = privateKeyToAccount(CLIENT_KEY);
  const silent = pino({ level: "silent" });

  function config(overrides: Partial<AgentConfigInput> & { data_dir: string }): AgentConfig {
    return parseAgentConfig(
      {
        chain: { rpc_url: chain.rpcUrl, deployment: path.join(work, "localhost.json") },
        listen: { host: "127.0.0.1", port: 0 },
        models: [{ model: "simplenet" }],
        oracles: [oracleA.url, oracleB.url],
        blob_peers: [peer.url],
        keystore,
        job_timeout_ms: 2_000,
        ...overrides,
      },
      work,
    );
  }

  /** A work unit for `input` signed by `signer` (the client by default), as the job body. */
  async function job(
    input: Uint8Array,
    options: { overrides?: Partial<WorkUnit>; signer?: typeof client; inputOverride?: string } = {},
  ) {
    const workUnit: WorkUnit = {
      jobId: `0x${randomBytes(32).toString("hex")}`,
      modelId,
      modelVersion: 0n,
      inputHash: sha256(input),
      maxFee: PRICE,
      client: client.address,
      expiresAt: BigInt(Math.floor(Date.now() / 1000) + 600),
      ...options.overrides,
    };
    const signature = await signWorkUnit(options.signer ?? client, domain, workUnit);
    const wu = workUnitJson(workUnit, input);
    if (options.inputOverride !== undefined) wu.input = options.inputOverride;
    return { workUnit, body: { work_unit: wu, client_signature: signature } };
  }

  const post = async (url: string, body: unknown) => {
    const response = await fetch(`${url}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };

  before(async function () {
    chain = await startHardhatNode();
    work = await mkdtemp(path.join(tmpdir(), "inframesh-agent-test-"));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      INFRAMESH_RPC_URL: chain.rpcUrl,
      INFRAMESH_DEPLOYMENT_ID: DEPLOYMENT_ID,
      INFRAMESH_DEPLOYMENTS_DIR: work,
      HARDHAT_BUILD_PROFILE: "default",
    };
    delete env.HH_TEST;
    const deployed = await runHardhat(["deploy", "--network", "localhost"], { env });
    expect(deployed.code, deployed.output).to.equal(0);
    record = parseDeploymentRecord(JSON.parse(await readFile(path.join(work, "localhost.json"), "utf8")));
    domain = inframeshDomain(record.chainId, record.contracts.epochSettlement.address);

    const viemChain = defineChain({
      id: record.chainId,
      name: "localhost",
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [chain.rpcUrl] } },
    });
    const publicClient = createPublicClient({ chain: viemChain, transport: http(chain.rpcUrl) }) as PublicClient;
    publisher = createWalletClient({
      account: privateKeyToAccount(PUBLISHER_KEY),
      chain: viemChain,
      transport: http(chain.rpcUrl),
    });
    contracts = { publicClient, modelRegistry: record.contracts.modelRegistry.address };
    peer = await startBlobServer({ dir: path.join(work, "peer") });
    modelId = (await registerModel(contracts, publisher, "simplenet")).modelId;
    await publishAction(contracts, publisher, SIMPLENET_DIR, {
      peers: [peer.url],
      copies: 1,
      price: PRICE,
      mature: true,
      out: path.join(work, "release"),
    });

    oracleA = await new StandInOracle().start();
    oracleB = await new StandInOracle().start();
    keystore = path.join(work, "operator.json");
    await createKeystore(keystore, PASSWORD);
    agent = await startAgent(config({ data_dir: path.join(work, "agent-1") }), {
      env: { INFRAMESH_KEYSTORE_PASSWORD: PASSWORD },
      logger: silent,
      outboxPollMs: 100,
    });
  });

  after(async function () {
    await agent?.stop();
    await oracleA?.close();
    await oracleB?.close();
    await peer?.close();
    await chain?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
    await rm(path.join(PROJECT_ROOT, "ignition", "deployments", DEPLOYMENT_ID), { recursive: true, force: true });
  });

  it("loads simplenet through the manifest loader and reports ready", async function () {
    const served = agent.models.get(modelId)!;
    expect(served.source).to.equal("chain");
    expect(served.version).to.equal(0n);
    expect(served.price).to.equal(PRICE);
    // The installed weights are simplenet.onnx, rebuilt from shards and verified.
    expect((await readFile(served.weightsPath)).equals(await readFile(path.join(SIMPLENET_DIR, "simplenet.onnx")))).to
      .be.true;
    const health = await fetch(`${agent.url}/healthz`);
    expect(health.status).to.equal(200);
    expect(await health.json()).to.deep.include({ status: "ready", node_id: agent.nodeId });
  });

  it("serves a job: output, output hash and a proof of serving signed by the node, receipt delivered", async function () {
    const input = encodeInferInput(Array.from({ length: 16 }, (_, i) => i - 8));
    const { workUnit, body } = await job(input);
    const { status, json } = await post(agent.url, body);
    expect(status, JSON.stringify(json)).to.equal(200);
    const output = Buffer.from(json.output as string, "base64");
    expect((JSON.parse(output.toString()) as { output: number[] }).output).to.have.length(8);
    expect(json.output_hash).to.equal(sha256(output));
    expect(json).to.deep.include({ job_id: workUnit.jobId, node_id: agent.nodeId });

    const pos = json.proof_of_serving as Receipt["proof_of_serving"];
    expect(pos.work_unit_hash).to.equal(hashWorkUnit(domain, workUnit));
    expect(pos.output_hash).to.equal(json.output_hash);
    const signer = await recoverProofOfServingSigner(
      domain,
      proofOfServingOf({ proof_of_serving: pos }),
      pos.signature,
    );
    expect(signer).to.equal(agent.nodeId);

    await waitFor("both oracles to hold the receipt", () =>
      [oracleA, oracleB].every((o) => o.receipts.has(workUnit.jobId)),
    );
    const receipt = oracleA.receipts.get(workUnit.jobId)!;
    expect(receipt.work_unit.input).to.equal(undefined);
    expect(receipt.work_unit.input_hash).to.equal(workUnit.inputHash);
    expect(receipt.client_signature).to.equal(body.client_signature);
    expect(receipt.proof_of_serving.signature).to.equal(pos.signature);
    await waitFor("deliveries marked", async () =>
      (await agent.outbox.deliveries(workUnit.jobId)).every((d) => d.state === "delivered"),
    );
  });

  it("gives every honest node the same output hash for the same input", async function () {
    const input = encodeInferInput(Array(16).fill(0.25));
    const first = await post(agent.url, (await job(input)).body);
    const second = await post(agent.url, (await job(input)).body);
    expect(first.status).to.equal(200);
    expect(second.json.output_hash).to.equal(first.json.output_hash);
  });

  it("refuses a job id it already served, without a second receipt", async function () {
    const { body } = await job(encodeInferInput(Array(16).fill(1)));
    expect((await post(agent.url, body)).status).to.equal(200);
    const again = await post(agent.url, body);
    expect(again.status).to.equal(409);
    expect(again.json.error).to.equal("duplicate_job");
  });

  describe("refuses bad jobs with a 4xx and writes no receipt", function () {
    const input = encodeInferInput(Array(16).fill(0.5));
    const cases: [string, () => Promise<unknown>, number, string, RegExp][] = [
      ["a body that is not JSON", async () => "{not json", 400, "bad_json", /must be JSON/],
      ["a body without a signature", async () => ({ work_unit: {} }), 400, "bad_request", /client_signature/],
      [
        "an unknown field",
        async () => ({ ...(await job(input)).body, extra: 1 }),
        400,
        "bad_request",
        /unknown field\(s\) extra/,
      ],
      [
        "a work unit without input",
        async () => {
          const { body } = await job(input);
          delete body.work_unit.input;
          return body;
        },
        400,
        "missing_input",
        /work_unit.input is required/,
      ],
      [
        "input bytes that do not match input_hash",
        async () => (await job(input, { inputOverride: Buffer.from("other").toString("base64") })).body,
        400,
        "input_hash_mismatch",
        /sha256 of the input bytes is/,
      ],
      [
        "an expired work unit",
        async () => (await job(input, { overrides: { expiresAt: BigInt(Math.floor(Date.now() / 1000) - 1) } })).body,
        400,
        "expired",
        /expired at/,
      ],
      [
        "a model this node does not serve",
        async () => (await job(input, { overrides: { modelId: 99n } })).body,
        404,
        "model_not_served",
        /does not serve model 99/,
      ],
      [
        "a version that is not the serving one",
        async () => (await job(input, { overrides: { modelVersion: 3n } })).body,
        409,
        "wrong_version",
        /serves version 0, the work unit asks for 3/,
      ],
      [
        "a max_fee below the price",
        async () => (await job(input, { overrides: { maxFee: PRICE - 1n } })).body,
        402,
        "fee_too_low",
        /max_fee 999 is below the price 1000/,
      ],
      [
        "a signature by someone other than requested_by",
        async () => (await job(input, { signer: privateKeyToAccount(OTHER_KEY) })).body,
        401,
        "bad_signature",
        /was not made by requested_by/,
      ],
      [
        "input the model refuses",
        async () => (await job(encodeInferInput([1, 2, 3]))).body,
        400,
        "model_rejected_input",
        /has 3 values, expected 16/,
      ],
    ];
    it("a body over the size limit (413, JSON error)", async function () {
      const before = await agent.outbox.counts();
      const { status, json } = await post(agent.url, `{"pad":"${"x".repeat(13 * 2 ** 20)}"}`);
      expect(status).to.equal(413);
      expect(json.error).to.equal("entity.too.large");
      expect(await agent.outbox.counts()).to.deep.equal(before);
    });

    it("an unknown route (404, JSON error)", async function () {
      const response = await fetch(`${agent.url}/v1/other`);
      expect(response.status).to.equal(404);
      expect(await response.json()).to.deep.include({ error: "not_found" });
    });

    for (const [what, makeBody, status, code, reason] of cases) {
      it(what, async function () {
        const before = await agent.outbox.counts();
        const { status: got, json } = await post(agent.url, await makeBody());
        expect(got, JSON.stringify(json)).to.equal(status);
        expect(json.error).to.equal(code);
        expect(json.reason).to.match(reason);
        expect(await agent.outbox.counts()).to.deep.equal(before);
      });
    }
  });

  it("retries an unavailable oracle and records a refusing one's reason", async function () {
    oracleA.mode = "unavailable";
    oracleB.mode = "refuse";
    const { workUnit, body } = await job(encodeInferInput(Array(16).fill(2)));
    expect((await post(agent.url, body)).status).to.equal(200);
    await waitFor("a failed attempt at A and a refusal by B", async () => {
      const deliveries = await agent.outbox.deliveries(workUnit.jobId);
      return (
        deliveries.some((d) => d.oracle === oracleA.url && d.attempts >= 1) &&
        deliveries.some((d) => d.oracle === oracleB.url && d.state === "rejected")
      );
    });
    const rejected = (await agent.outbox.deliveries(workUnit.jobId)).find((d) => d.oracle === oracleB.url)!;
    expect(rejected.lastError).to.match(/^400 .*stand-in refusal/);
    expect(oracleA.receipts.has(workUnit.jobId)).to.equal(false);
    oracleA.mode = "accept";
    oracleB.mode = "accept";
    await waitFor("A to get the receipt after its outage", () => oracleA.receipts.has(workUnit.jobId));
    expect(oracleB.receipts.has(workUnit.jobId)).to.equal(false);
  });

  it("exposes Prometheus metrics for jobs, errors and deliveries", async function () {
    const { body } = await job(encodeInferInput(Array(16).fill(0.5)), { overrides: { maxFee: 1n } });
    expect((await post(agent.url, body)).status).to.equal(402);
    const text = await (await fetch(`${agent.url}/metrics`)).text();
    expect(text).to.match(new RegExp(`inframesh_agent_jobs_total\\{model="${modelId}",outcome="served"\\} [1-9]`));
    expect(text).to.match(/inframesh_agent_errors_total\{code="fee_too_low"\} [1-9]/);
    expect(text).to.match(/inframesh_agent_errors_total\{code="duplicate_job"\} [1-9]/);
    expect(text).to.match(/inframesh_agent_job_duration_seconds_bucket/);
    expect(text).to.match(/inframesh_agent_outbox_deliveries\{state="delivered"\} [1-9]/);
  });

  describe("a model that crashes, hangs or answers garbage", function () {
    let broken: Agent;
    before(async function () {
      broken = await startAgent(
        config({ data_dir: path.join(work, "agent-broken"), models: [{ model: "simplenet", bundle: SIMPLENET_DIR }] }),
        { env: { INFRAMESH_KEYSTORE_PASSWORD: PASSWORD }, logger: silent, modelServer: MISBEHAVING },
      );
    });
    after(async function () {
      await broken?.stop();
    });

    const failing: [string, number, number, string][] = [
      ["a crash", 1, 502, "model_failed"],
      ["a hang past the job timeout", 2, 504, "model_timeout"],
      ["output that is not the contract's", 3, 502, "bad_output"],
      ["a 500", 4, 502, "model_failed"],
    ];
    for (const [what, mode, status, code] of failing) {
      it(`${what} fails the job with ${status} and no receipt`, async function () {
        await waitFor("the model to be up", () => broken.models.get(modelId)!.process.healthy());
        const { body } = await job(encodeInferInput([mode, ...Array(15).fill(0)]));
        const { status: got, json } = await post(broken.url, body);
        expect(got, JSON.stringify(json)).to.equal(status);
        expect(json.error).to.equal(code);
        expect(await broken.outbox.counts()).to.deep.equal({ pending: 0, delivered: 0, rejected: 0 });
      });
    }

    it("restarts the crashed model and serves again", async function () {
      await waitFor("the model to be up", () => broken.models.get(modelId)!.process.healthy());
      expect(broken.models.get(modelId)!.process.restarts).to.be.greaterThan(0);
      const { body } = await job(encodeInferInput(Array(16).fill(0)));
      expect((await post(broken.url, body)).status).to.equal(200);
    });
  });

  describe("runtime: docker", function () {
    let engine: DockerEngine;
    let docked: Agent;
    before(async function () {
      if (!hasDockerd() && process.env.DOCKER_HOST === undefined) {
        console.log("    skipped: no dockerd or not root (apt-get install -y docker.io, or set DOCKER_HOST)");
        this.skip();
      }
      engine = await startDockerEngine();
      docked = await startAgent(config({ data_dir: path.join(work, "agent-docker"), runtime: "docker" }), {
        env: { INFRAMESH_KEYSTORE_PASSWORD: PASSWORD },
        logger: silent,
        docker: engine.docker,
      });
    });
    after(async function () {
      await docked?.stop();
      await engine?.stop();
    });

    it("serves simplenet from a container, with the output hash of the process runtime", async function () {
      expect((await fetch(`${docked.url}/healthz`)).status).to.equal(200);
      const input = encodeInferInput(Array.from({ length: 16 }, (_, i) => (i % 5) - 2.5));
      const inContainer = await post(docked.url, (await job(input)).body);
      const inProcess = await post(agent.url, (await job(input)).body);
      expect(inContainer.status, JSON.stringify(inContainer.json)).to.equal(200);
      expect(inContainer.json.output_hash).to.equal(inProcess.json.output_hash);
    });
  });

  it("keeps every receipt across kill -9 and delivers it after the restart", async function () {
    oracleA.mode = "unavailable";
    oracleB.mode = "unavailable";
    const dataDir = path.join(work, "agent-killed");
    const configFile = path.join(work, "killed.yaml");
    await writeFile(
      configFile,
      JSON.stringify({
        chain: { rpc_url: chain.rpcUrl, deployment: path.join(work, "localhost.json") },
        listen: { host: "127.0.0.1", port: 0 },
        models: [{ model: "simplenet", bundle: SIMPLENET_DIR }],
        oracles: [oracleA.url, oracleB.url],
        data_dir: dataDir,
        keystore,
        log_level: "warn",
      }),
    );
    const run = () => {
      const child = spawn(
        process.execPath,
        [path.join(PROJECT_ROOT, "node-agent", "main.ts"), "--config", configFile],
        {
          env: { ...process.env, INFRAMESH_KEYSTORE_PASSWORD: PASSWORD },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let output = "";
      child.stderr.on("data", (c: Buffer) => (output += c.toString()));
      const url = new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (c: Buffer) => {
          output += c.toString();
          const match = /listening at (http:\/\/\S+)/.exec(output);
          if (match) resolve(match[1]!);
        });
        child.once("exit", (code) => reject(new Error(`agent exited ${code}: ${output}`)));
      });
      return { child, url, exited: new Promise((r) => child.once("exit", r)) };
    };

    const first = run();
    const url = await first.url;
    const jobs = await Promise.all(Array.from({ length: 5 }, (_, i) => job(encodeInferInput(Array(16).fill(i + 10)))));
    for (const { body } of jobs) expect((await post(url, body)).status).to.equal(200);
    first.child.kill("SIGKILL");
    await first.exited;

    oracleA.mode = "accept";
    oracleB.mode = "accept";
    const second = run();
    await second.url;
    try {
      await waitFor("every receipt at both oracles", () =>
        jobs.every(({ workUnit }) => oracleA.receipts.has(workUnit.jobId) && oracleB.receipts.has(workUnit.jobId)),
      );
      // The restarted agent still refuses the served job ids.
      const again = await post(await second.url, jobs[0]!.body);
      expect(again.status).to.equal(409);
    } finally {
      second.child.kill("SIGTERM");
      await second.exited;
    }
  });

  describe("a new serving version on chain", function () {
    it("applies the new price and swaps in the new version loaded through the manifest loader", async function () {
      const release = path.join(work, "simplenet-1.0.1");
      await mkdir(release, { recursive: true });
      const yaml = await readFile(path.join(SIMPLENET_DIR, "model.yaml"), "utf8");
      await writeFile(path.join(release, "model.yaml"), yaml.replace('version: "1.0.0"', 'version: "1.0.1"'));
      await copyFile(path.join(SIMPLENET_DIR, "simplenet.onnx"), path.join(release, "simplenet.onnx"));
      await publishAction(contracts, publisher, release, {
        peers: [peer.url],
        copies: 1,
        price: PRICE * 2n,
        mature: true,
        out: path.join(work, "release-1.0.1"),
      });

      const old = agent.models.get(modelId)!;
      await agent.refresh();
      const now = agent.models.get(modelId)!;
      expect(now.version).to.equal(1n);
      expect(now.price).to.equal(PRICE * 2n);
      expect(now.process).to.not.equal(old.process);
      expect(await old.process.healthy()).to.equal(false);

      const input = encodeInferInput(Array(16).fill(3));
      const fresh = await post(
        agent.url,
        (await job(input, { overrides: { modelVersion: 1n, maxFee: PRICE * 2n } })).body,
      );
      expect(fresh.status, JSON.stringify(fresh.json)).to.equal(200);
      const stale = await post(agent.url, (await job(input)).body);
      expect(stale.status).to.equal(409);
      expect(stale.json.error).to.equal("wrong_version");
      const cheap = await post(agent.url, (await job(input, { overrides: { modelVersion: 1n } })).body);
      expect(cheap.status).to.equal(402);
    });
  });
});

// `infra node init | register | start | status` as an operator runs them: child processes against
// a real `hardhat node` with the contracts deployed and simplenet published on chain.
//
// Slow (child processes): run alone with `npx hardhat test mocha test/cli/infra-node.test.ts`.
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import {
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  parseEther,
  type Address,
  type PublicClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";

import {
  canonicalJson,
  detectHardware,
  hardwareSpecHash,
  parseGpuUsage,
  parseNvidiaSmi,
} from "../../node-agent/hardware.ts";
import { loadAgentConfig } from "../../node-agent/config.ts";
import { parseCommissionBps } from "../../scripts/cli/node.ts";
import { publishAction } from "../../scripts/cli/model.ts";
import {
  freePort,
  PROJECT_ROOT,
  runHardhat,
  startHardhatNode,
  type LocalChain,
} from "../../scripts/lib/local-chain.ts";
import { startBlobServer, type BlobServer } from "../../sdk/blob/server.ts";
import { parseDeploymentRecord } from "../../sdk/deployment.ts";
import { registerModel } from "../../sdk/models.ts";
import { readNodeStatus } from "../../sdk/staking.ts";
import { CLI, runInfra, type Run } from "./run-infra.ts";

const DEPLOYMENT_ID = "local-test-cli-node";

// Hardhat node's first dev account (public, well-known test key): publishes and funds.
const FUNDER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const PASSWORD = "operator password";

describe("hardware spec (pure)", function () {
  it("parses nvidia-smi lines and refuses unexpected ones", function () {
    expect(parseNvidiaSmi("NVIDIA A100-SXM4-40GB, 40960 MiB\nTesla T4, 15360 MiB\n")).to.deep.equal([
      { name: "NVIDIA A100-SXM4-40GB", memory_mib: 40960 },
      { name: "Tesla T4", memory_mib: 15360 },
    ]);
    expect(parseNvidiaSmi("")).to.deep.equal([]);
    expect(() => parseNvidiaSmi("No devices were found")).to.throw(/unexpected nvidia-smi line/);
  });

  it("parses nvidia-smi usage lines for the GPU metrics", function () {
    expect(parseGpuUsage("0, 87, 30000\n1, 0, 2\n")).to.deep.equal([
      { index: 0, utilization_percent: 87, memory_used_mib: 30000 },
      { index: 1, utilization_percent: 0, memory_used_mib: 2 },
    ]);
    expect(() => parseGpuUsage("0, [N/A], 1")).to.throw(/unexpected nvidia-smi usage line/);
  });

  it("hashes canonical JSON: key order does not matter, values do", function () {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: "x" }] })).to.equal('{"a":[{"c":"x","d":2}],"b":1}');
    const spec = { cpu_model: "x", cpu_cores: 2, memory_bytes: 1024, gpus: [] };
    const reordered = { gpus: [], memory_bytes: 1024, cpu_cores: 2, cpu_model: "x" };
    expect(hardwareSpecHash(spec)).to.equal(hardwareSpecHash(reordered));
    expect(hardwareSpecHash(spec)).to.not.equal(hardwareSpecHash({ ...spec, cpu_cores: 4 }));
    expect(hardwareSpecHash(detectHardware())).to.equal(hardwareSpecHash(detectHardware()));
  });

  it("takes a commission of 0..10000 basis points", function () {
    expect(parseCommissionBps("500")).to.equal(500);
    expect(() => parseCommissionBps("10001")).to.throw(/0\.\.10000/);
    expect(() => parseCommissionBps("5.5")).to.throw(/whole number/);
  });
});

describe("infra node (CLI)", function () {
  this.timeout(240_000);

  let chain: LocalChain;
  let work: string;
  let peer: BlobServer;
  let env: NodeJS.ProcessEnv;
  let publicClient: PublicClient;
  let nodeStaking: Address;
  let nodeDir: string;
  let agentPort: number;

  const infra = (args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> =>
    runInfra(env, args, extraEnv);

  before(async function () {
    chain = await startHardhatNode();
    work = await mkdtemp(path.join(tmpdir(), "inframesh-cli-node-"));
    env = {
      ...process.env,
      INFRAMESH_RPC_URL: chain.rpcUrl,
      INFRAMESH_DEPLOYMENT_ID: DEPLOYMENT_ID,
      INFRAMESH_DEPLOYMENTS_DIR: work,
      INFRAMESH_KEYSTORE_PASSWORD: PASSWORD,
      HARDHAT_BUILD_PROFILE: "default",
    };
    delete env.HH_TEST;
    const deployed = await runHardhat(["deploy", "--network", "localhost"], { env });
    expect(deployed.code, deployed.output).to.equal(0);
    const record = parseDeploymentRecord(JSON.parse(await readFile(path.join(work, "localhost.json"), "utf8")));
    nodeStaking = record.contracts.nodeStaking.address;
    const viemChain = defineChain({
      id: record.chainId,
      name: "localhost",
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [chain.rpcUrl] } },
    });
    publicClient = createPublicClient({ chain: viemChain, transport: http(chain.rpcUrl) }) as PublicClient;
    const funder = createWalletClient({
      account: privateKeyToAccount(FUNDER_KEY),
      chain: viemChain,
      transport: http(chain.rpcUrl),
    });
    const contracts = { publicClient, modelRegistry: record.contracts.modelRegistry.address };
    peer = await startBlobServer({ dir: path.join(work, "peer") });
    await registerModel(contracts, funder, "simplenet");
    await publishAction(contracts, funder, path.join(PROJECT_ROOT, "models", "simplenet"), {
      peers: [peer.url],
      copies: 1,
      price: 10n,
      mature: true,
      out: path.join(work, "release"),
    });
    nodeDir = path.join(work, "node");
    agentPort = await freePort();
  });

  after(async function () {
    await peer?.close();
    await chain?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
    await rm(path.join(PROJECT_ROOT, "ignition", "deployments", DEPLOYMENT_ID), { recursive: true, force: true });
  });

  const initArgs = () => [
    "--json",
    "node",
    "init",
    "--dir",
    nodeDir,
    "--rpc-url",
    chain.rpcUrl,
    "--deployment",
    path.join(work, "localhost.json"),
    "--oracle",
    "http://127.0.0.1:9",
    "--model",
    "simplenet",
    "--blob-peer",
    peer.url,
    "--port",
    String(agentPort),
  ];

  it("init refuses to start without a keystore password, and writes nothing", async function () {
    const run = await infra(initArgs(), { INFRAMESH_KEYSTORE_PASSWORD: "" });
    expect(run.code).to.equal(1);
    expect(run.stderr).to.include("infra: no keystore password: set INFRAMESH_KEYSTORE_PASSWORD");
    expect(await readdir(work)).to.not.include("node");
  });

  it("init names a bad option and writes nothing", async function () {
    const args = initArgs();
    args[args.indexOf("http://127.0.0.1:9")] = "not-a-url";
    const run = await infra(args);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.match(/oracles\.0: expected an http\(s\) URL/);
    expect(await readdir(work)).to.not.include("node");
  });

  it("init writes a valid config and an encrypted key, and refuses to overwrite them", async function () {
    const run = await infra(initArgs());
    expect(run.code, run.stderr).to.equal(0);
    const result = JSON.parse(run.stdout) as { nodeId: string; config: string; keystore: string };
    const config = await loadAgentConfig(result.config);
    expect(config.models).to.deep.equal([{ model: "simplenet" }]);
    expect(config.keystore).to.equal(path.join(nodeDir, "operator-key.json"));
    expect(await readFile(result.config, "utf8")).to.not.include(PASSWORD);
    const again = await infra(initArgs());
    expect(again.code).to.equal(1);
    expect(again.stderr).to.include("already exists: refusing to overwrite");
  });

  it("register refuses a wrong keystore password", async function () {
    const run = await infra(["node", "register", "--config", path.join(nodeDir, "node-agent.yaml")], {
      INFRAMESH_KEYSTORE_PASSWORD: "wrong password",
    });
    expect(run.code).to.equal(1);
    expect(run.stderr).to.include("infra: wrong password for the keystore");
  });

  it("register records the endpoint and the hardware spec hash on chain, once", async function () {
    const configFile = path.join(nodeDir, "node-agent.yaml");
    const keystore = JSON.parse(await readFile(path.join(nodeDir, "operator-key.json"), "utf8")) as { address: string };
    const nodeId = `0x${keystore.address}` as Address;
    const funder = createWalletClient({
      account: privateKeyToAccount(FUNDER_KEY),
      chain: publicClient.chain!,
      transport: http(chain.rpcUrl),
    });
    await publicClient.waitForTransactionReceipt({
      hash: await funder.sendTransaction({ to: nodeId, value: parseEther("1") }),
    });

    const run = await infra([
      "--json",
      "node",
      "register",
      "--config",
      configFile,
      "--commission-bps",
      "750",
      "--endpoint",
      "http://node.example:8700",
    ]);
    expect(run.code, run.stderr).to.equal(0);
    const result = JSON.parse(run.stdout) as { hardwareSpecHash: string; nodeId: string; hardware: unknown };
    expect(result.hardwareSpecHash).to.equal(hardwareSpecHash(detectHardware()));
    expect(result.hardware).to.deep.equal(detectHardware());
    const status = await readNodeStatus(
      { publicClient, nodeStaking, stakeToken: nodeStaking },
      result.nodeId as Address,
    );
    expect(status).to.deep.include({
      registered: true,
      endpoint: "http://node.example:8700",
      commissionBps: 750,
      hardwareSpecHash: result.hardwareSpecHash,
    });

    const again = await infra(["node", "register", "--config", configFile]);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.match(/NodeAlreadyRegistered\(0x/i);
  });

  it("status reads the chain and the agent; start runs the agent until SIGTERM", async function () {
    const configFile = path.join(nodeDir, "node-agent.yaml");
    const before = await infra(["--json", "node", "status", "--config", configFile]);
    expect(before.code, before.stderr).to.equal(0);
    const offline = JSON.parse(before.stdout) as { registered: boolean; jailed: boolean; tier: number; agent: object };
    expect(offline).to.deep.include({ registered: true, jailed: false, tier: 0 });
    expect(offline.agent).to.deep.include({ reachable: false, status: "unreachable" });

    const child = spawn(process.execPath, [CLI, "--json", "node", "start", "--config", configFile], {
      cwd: PROJECT_ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      let stdout = "";
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (c: Buffer) => {
          stdout += c.toString();
          const match = /"url": "(http:\/\/[^"]+)"/.exec(stdout);
          if (match) resolve(match[1]!);
        });
        void exited.then((code) => reject(new Error(`infra node start exited ${code}: ${stderr}`)));
      });
      expect(url).to.equal(`http://127.0.0.1:${agentPort}`);
      const running = await infra(["--json", "node", "status", "--config", configFile]);
      expect(running.code, running.stderr).to.equal(0);
      const online = JSON.parse(running.stdout) as { agent: { reachable: boolean; status: string; models: unknown[] } };
      expect(online.agent).to.deep.include({ reachable: true, status: "ready" });
      expect(online.agent.models).to.deep.equal([{ model: "simplenet", id: "1", ready: true }]);
    } finally {
      child.kill("SIGTERM");
      expect(await exited).to.equal(0);
    }
  });
});

// A whole inference network on loopback for the gateway tests and benchmark: a `hardhat node`
// deployed with `npx hardhat deploy`, simplenet published (blob peer) and made the serving
// version, a private Redis, node operators registered and staked on chain, node agents (in
// process or as child processes that can be killed), and gateway instances.
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import type { Logger } from "pino";
import {
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  sha256,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type TypedDataDomain,
} from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { stringify } from "yaml";

import { parseGatewayConfig, type GatewayConfig, type GatewayConfigInput } from "../../gateway/config.ts";
import { sendHeartbeat, startHeartbeats, type HeartbeatSource } from "../../gateway/heartbeat-client.ts";
import { startGateway, type Gateway } from "../../gateway/server.ts";
import { startAgent, type Agent, type AgentOptions } from "../../node-agent/agent.ts";
import { parseAgentConfig } from "../../node-agent/config.ts";
import { createKeystore, openKeystore } from "../../node-agent/keystore.ts";
import { publishAction } from "../cli/model.ts";
import { parseDeploymentRecord, type DeploymentRecord } from "../../sdk/deployment.ts";
import { inframeshDomain, signWorkUnit, type WorkUnit } from "../../sdk/eip712.ts";
import { registerModel } from "../../sdk/models.ts";
import { workUnitJson } from "../../sdk/receipt.ts";
import {
  registerNode,
  stake,
  transferStakeToken,
  type StakingContracts,
  type StakingWallet,
} from "../../sdk/staking.ts";
import {
  freePort,
  PROJECT_ROOT,
  rpc,
  runHardhat,
  spawnGroup,
  startHardhatNode,
  type LocalChain,
  type ProcessGroup,
} from "./local-chain.ts";
import { startRedis, type LocalRedis } from "./redis.ts";
import { startBlobServer, type BlobServer } from "../../sdk/blob/server.ts";

/** Hardhat node's first dev account (a public, well-known test key): deployer and publisher. */
export const DEPLOYER_KEY: Hex = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
export const TOKEN = 10n ** 18n;
export const SIMPLENET_PRICE = 1_000n;
export const SIMPLENET_DIR = path.join(PROJECT_ROOT, "models", "simplenet");
const AGENT_MAIN = path.join(PROJECT_ROOT, "node-agent", "main.ts");
const PASSWORD = "inference network test password";

export interface Operator {
  account: PrivateKeyAccount;
  keystore: string;
  stake: bigint;
}

export interface RunningAgent {
  operator: Operator;
  url: string;
  /** Present for an in-process agent. */
  agent?: Agent;
  /** Present for a child-process agent. */
  process?: ProcessGroup;
  stop(): Promise<void>;
  /** SIGKILL to a child-process agent's whole group (model processes included). */
  kill(): void;
  /** Starts a killed child-process agent again on the same config and data (its outbox resumes). */
  restart?(): Promise<void>;
}

/**
 * StandInOracle: a stand-in for the reward oracle's `POST /v1/receipts` (issue 5 is built in
 * parallel): the agents' outboxes need somewhere to deliver; it accepts everything with a 202.
 */
async function startStandInOracle(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(202, { "content-type": "application/json" }).end('{"status":"accepted"}'));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const url = typeof address === "object" && address !== null ? `http://127.0.0.1:${address.port}` : "";
  return {
    url,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Key prefix of the network's gateways in Redis. */
const GATEWAY_PREFIX = "gw:";

export interface InferenceNetwork {
  chain: LocalChain;
  redis: LocalRedis;
  work: string;
  record: DeploymentRecord;
  domain: TypedDataDomain;
  publicClient: PublicClient;
  viemChain: Chain;
  deployer: StakingWallet;
  staking: StakingContracts;
  modelId: bigint;
  deploymentFile: string;
  oracleUrl: string;
  /** The gateways' Redis key prefix (what the keeper's SLA watch reads). */
  gatewayPrefix: string;
  wallet(account: PrivateKeyAccount): StakingWallet;
  /** A new operator key (encrypted keystore), funded, registered and self-staked with `stakeTokens`. */
  addOperator(stakeTokens: bigint): Promise<Operator>;
  /** A node agent serving simplenet from its bundle; `child` runs it as `node node-agent/main.ts`. */
  startAgent(
    operator: Operator,
    options?: {
      child?: boolean;
      agentOptions?: AgentOptions;
      oracles?: string[];
      gateway?: string;
      /** The model runtime (default process); docker needs DOCKER_HOST in `env`. */
      runtime?: "process" | "docker";
      /** Extra environment for the agent (test hooks such as INFRAMESH_AGENT_TEST_BAD_PROOF). */
      env?: NodeJS.ProcessEnv;
    },
  ): Promise<RunningAgent>;
  /** The blob-store peer holding simplenet's shards (and, for the oracle, receipt batches). */
  blobPeerUrl: string;
  gatewayConfig(overrides?: Partial<GatewayConfigInput>): GatewayConfig;
  startGateway(
    overrides?: Partial<GatewayConfigInput>,
    options?: { env?: NodeJS.ProcessEnv; logger?: Logger },
  ): Promise<Gateway>;
  /** Heartbeats from `agent` to `gateways` every `intervalMs` until stopped. */
  heartbeats(agent: RunningAgent, gateways: string[], intervalMs?: number, load?: number): { stop(): Promise<void> };
  /** One heartbeat now. */
  heartbeatOnce(agent: RunningAgent, gateways: string[], load?: number): Promise<void>;
  /** A client-signed simplenet work unit for `input` (the call body), with optional overrides. */
  signedCall(
    client: PrivateKeyAccount,
    input: Uint8Array,
    overrides?: Partial<WorkUnit>,
  ): Promise<{ work_unit: ReturnType<typeof workUnitJson>; client_signature: Hex }>;
  stop(): Promise<void>;
}

export async function startInferenceNetwork(deploymentId: string): Promise<InferenceNetwork> {
  const chain = await startHardhatNode();
  const work = await mkdtemp(path.join(tmpdir(), "inframesh-gateway-"));
  const cleanups: (() => Promise<void>)[] = [
    async () => chain.stop(),
    async () => rm(work, { recursive: true, force: true }),
    async () => rm(path.join(PROJECT_ROOT, "ignition", "deployments", deploymentId), { recursive: true, force: true }),
  ];
  const stopAll = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      INFRAMESH_RPC_URL: chain.rpcUrl,
      INFRAMESH_DEPLOYMENT_ID: deploymentId,
      INFRAMESH_DEPLOYMENTS_DIR: work,
      HARDHAT_BUILD_PROFILE: "default",
    };
    delete env.HH_TEST;
    const deployed = await runHardhat(["deploy", "--network", "localhost"], { env });
    if (deployed.code !== 0) throw new Error(`deploy failed:\n${deployed.output}`);
    const deploymentFile = path.join(work, "localhost.json");
    const record = parseDeploymentRecord(JSON.parse(await readFile(deploymentFile, "utf8")));
    const domain = inframeshDomain(record.chainId, record.contracts.epochSettlement.address);
    const viemChain = defineChain({
      id: record.chainId,
      name: "localhost",
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [chain.rpcUrl] } },
    });
    const publicClient = createPublicClient({ chain: viemChain, transport: http(chain.rpcUrl) }) as PublicClient;
    const wallet = (account: PrivateKeyAccount): StakingWallet =>
      createWalletClient({ account, chain: viemChain, transport: http(chain.rpcUrl) });
    const deployer = wallet(privateKeyToAccount(DEPLOYER_KEY));
    const staking: StakingContracts = {
      publicClient,
      nodeStaking: record.contracts.nodeStaking.address,
      stakeToken: record.contracts.stakeToken.address,
    };

    const peer: BlobServer = await startBlobServer({ dir: path.join(work, "peer") });
    cleanups.push(() => peer.close());
    const models = { publicClient, modelRegistry: record.contracts.modelRegistry.address };
    const modelId = (await registerModel(models, deployer, "simplenet")).modelId;
    await publishAction(models, deployer, SIMPLENET_DIR, {
      peers: [peer.url],
      copies: 1,
      price: SIMPLENET_PRICE,
      mature: true,
      out: path.join(work, "release"),
    });
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const oracle = await startStandInOracle();
    cleanups.push(() => oracle.close());

    let agentCount = 0;
    const network: InferenceNetwork = {
      chain,
      redis,
      work,
      record,
      domain,
      publicClient,
      viemChain,
      deployer,
      staking,
      modelId,
      deploymentFile,
      oracleUrl: oracle.url,
      blobPeerUrl: peer.url,
      gatewayPrefix: GATEWAY_PREFIX,
      wallet,
      async addOperator(stakeTokens) {
        const keystore = path.join(work, `operator-${randomBytes(4).toString("hex")}.json`);
        await createKeystore(keystore, PASSWORD);
        const account = await openKeystore(keystore, PASSWORD);
        await rpc(chain.rpcUrl, "hardhat_setBalance", [account.address, "0x3635C9ADC5DEA00000"]);
        const amount = stakeTokens * TOKEN;
        await transferStakeToken(staking, deployer, account.address, amount);
        const operator = wallet(account);
        await registerNode(staking, operator, {
          endpoint: "http://127.0.0.1:1",
          hardwareSpecHash: sha256(Buffer.from(account.address)),
          commissionBps: 1_000,
        });
        await stake(staking, operator, account.address, amount);
        return { account, keystore, stake: amount };
      },
      async startAgent(operator, options = {}) {
        const n = agentCount++;
        const port = await freePort();
        const input = {
          chain: { rpc_url: chain.rpcUrl, deployment: deploymentFile },
          listen: { host: "127.0.0.1", port },
          models: [{ model: "simplenet", bundle: SIMPLENET_DIR }],
          runtime: options.runtime ?? "process",
          oracles: options.oracles ?? [oracle.url],
          ...(options.gateway === undefined ? {} : { gateway: options.gateway }),
          data_dir: path.join(work, `agent-${n}`),
          keystore: operator.keystore,
          job_timeout_ms: 2_000,
          log_level: "silent" as const,
        };
        if (options.child === true) {
          const file = path.join(work, `agent-${n}.yaml`);
          await writeFile(file, stringify(input));
          const url = `http://127.0.0.1:${port}`;
          const launch = async (): Promise<ProcessGroup> => {
            const group = spawnGroup(process.execPath, [AGENT_MAIN, "--config", file], {
              env: { ...process.env, INFRAMESH_KEYSTORE_PASSWORD: PASSWORD, ...options.env },
            });
            const deadline = Date.now() + 60_000;
            for (;;) {
              const ready = await fetch(`${url}/healthz`)
                .then((r) => r.status === 200)
                .catch(() => false);
              if (ready) return group;
              if (Date.now() > deadline) {
                await group.stop();
                throw new Error(`agent ${n} did not become ready:\n${group.output()}`);
              }
              await new Promise((r) => setTimeout(r, 100));
            }
          };
          let group = await launch();
          const running: RunningAgent = {
            operator,
            url,
            process: group,
            stop: () => group.stop(),
            kill: () => {
              try {
                process.kill(-group.pid, "SIGKILL");
              } catch {
                // already gone
              }
            },
            async restart() {
              await group.exited;
              group = await launch();
              running.process = group;
            },
          };
          cleanups.push(() => running.stop());
          return running;
        }
        const agent = await startAgent(parseAgentConfig(input, work), {
          env: { INFRAMESH_KEYSTORE_PASSWORD: PASSWORD, ...options.env },
          ...options.agentOptions,
        });
        const running: RunningAgent = {
          operator,
          url: agent.url,
          agent,
          stop: () => agent.stop(),
          kill: () => undefined,
        };
        cleanups.push(() => agent.stop());
        return running;
      },
      gatewayConfig(overrides = {}) {
        return parseGatewayConfig(
          {
            listen: { host: "127.0.0.1", port: 0 },
            chain: { rpc_url: chain.rpcUrl, deployment: deploymentFile },
            redis: { url: redis.url, prefix: GATEWAY_PREFIX },
            block_poll_ms: 100,
            log_level: "silent",
            ...overrides,
          },
          work,
        );
      },
      async startGateway(overrides = {}, options = {}) {
        const gateway = await startGateway(network.gatewayConfig(overrides), options);
        cleanups.push(() => gateway.stop());
        return gateway;
      },
      heartbeats(agent, gateways, intervalMs = 300, load = 0) {
        return startHeartbeats(source(agent, load), { gateways, intervalMs });
      },
      async heartbeatOnce(agent, gateways, load = 0) {
        const outcomes = await sendHeartbeat(source(agent, load), { gateways });
        const failed = outcomes.filter((o) => !o.ok);
        if (failed.length > 0) throw new Error(`heartbeat refused: ${JSON.stringify(failed)}`);
      },
      async signedCall(client, input, overrides = {}) {
        const workUnit: WorkUnit = {
          jobId: `0x${randomBytes(32).toString("hex")}`,
          modelId,
          modelVersion: 0n,
          inputHash: sha256(input),
          maxFee: SIMPLENET_PRICE,
          client: client.address,
          expiresAt: BigInt(Math.floor(Date.now() / 1000) + 600),
          ...overrides,
        };
        return {
          work_unit: workUnitJson(workUnit, input),
          client_signature: await signWorkUnit(client, domain, workUnit),
        };
      },
      stop: stopAll,
    };
    const source = (agent: RunningAgent, load: number): HeartbeatSource => ({
      chainId: record.chainId,
      signer: agent.operator.account,
      endpoint: agent.url,
      models: () => [modelId],
      load: () => load,
    });
    return network;
  } catch (error) {
    await stopAll();
    throw error;
  }
}

export type { Address };

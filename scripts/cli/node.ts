// `infra node init | register | start | status`: a node operator's commands. The node's config
// file names the chain, models and oracles; the operator key is the config's encrypted keystore,
// unlocked with INFRAMESH_KEYSTORE_PASSWORD (or the config's password file). Each action returns
// what it did; infra.ts prints it as text or JSON.
import { mkdir, open, readFile, stat } from "node:fs/promises";
import path from "node:path";

import { createWalletClient, defineChain, getAddress, http, type Address } from "viem";
import { stringify } from "yaml";

import { AgentStartError, connectChain, readDeploymentFor, startAgent } from "../../node-agent/agent.ts";
import {
  AgentConfigError,
  loadAgentConfig,
  parseAgentConfig,
  publicEndpoint,
  type AgentConfig,
  type AgentConfigInput,
} from "../../node-agent/config.ts";
import { detectHardware, hardwareSpecHash } from "../../node-agent/hardware.ts";
import { createKeystore, KeystoreError, keystorePassword, openKeystore } from "../../node-agent/keystore.ts";
import { readNodeStatus, registerNode, StakingCallError, type StakingContracts } from "../../sdk/staking.ts";
import { CliError } from "./format.ts";

const MAX_COMMISSION_BPS = 10_000;

/** Turns the agent's typed errors into CliErrors (message kept, cause attached). */
async function asCli<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (
      error instanceof AgentConfigError ||
      error instanceof KeystoreError ||
      error instanceof AgentStartError ||
      error instanceof StakingCallError
    ) {
      throw new CliError(error.message, { cause: error });
    }
    throw error;
  }
}

/** A commission in basis points: 0..10000. */
export function parseCommissionBps(text: string): number {
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || n > MAX_COMMISSION_BPS) {
    throw new CliError(`--commission-bps must be a whole number 0..${MAX_COMMISSION_BPS}, got "${text}"`);
  }
  return n;
}

export interface InitOptions {
  dir: string;
  rpcUrl: string;
  network?: string;
  deployment?: string;
  oracles: string[];
  models: string[];
  bundles: string[];
  blobPeers: string[];
  host: string;
  port: number;
  endpoint?: string;
}

/** The config an `init` writes, as YAML-ready values (paths relative to the config's directory). */
export function initConfig(options: InitOptions): AgentConfigInput {
  if (options.bundles.length > 0 && options.bundles.length !== options.models.length) {
    throw new CliError("give one --bundle per --model, or none (then models load from chain via --blob-peer)");
  }
  return {
    chain: {
      rpc_url: options.rpcUrl,
      ...(options.deployment === undefined
        ? { network: options.network ?? "localhost" }
        : { deployment: path.resolve(options.deployment) }),
    },
    listen: { host: options.host, port: options.port },
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    models: options.models.map((model, i) => ({
      model: /^[0-9]+$/.test(model) ? Number(model) : model,
      ...(options.bundles[i] === undefined ? {} : { bundle: path.resolve(options.bundles[i]!) }),
    })),
    runtime: "process",
    oracles: options.oracles,
    blob_peers: options.blobPeers,
    data_dir: "./data",
    keystore: "./operator-key.json",
  };
}

/** Writes `<dir>/node-agent.yaml` and a new encrypted operator key; refuses to overwrite either. */
export async function initAction(options: InitOptions, env: NodeJS.ProcessEnv) {
  const dir = path.resolve(options.dir);
  const configFile = path.join(dir, "node-agent.yaml");
  const input = initConfig(options);
  // Checked before anything is written: a wrong option leaves no half-made node behind.
  const config = await asCli(async () => parseAgentConfig(input, dir, configFile));
  const password = await asCli(() => keystorePassword(env));
  if (await stat(configFile).catch(() => null)) {
    throw new CliError(`${configFile} already exists: refusing to overwrite a node's config`);
  }
  await mkdir(dir, { recursive: true });
  const { address } = await asCli(() => createKeystore(config.keystore, password));
  const handle = await open(configFile, "wx", 0o644);
  try {
    await handle.writeFile(
      `# Inframesh node agent config (infra node init). Reference: docs/node-agent.md\n${stringify(input)}`,
    );
  } finally {
    await handle.close();
  }
  return { nodeId: address, config: configFile, keystore: config.keystore, endpoint: publicEndpoint(config) };
}

interface NodeChain {
  config: AgentConfig;
  contracts: StakingContracts;
  chainId: number;
}

async function openNodeChain(configFile: string, env: NodeJS.ProcessEnv): Promise<NodeChain> {
  return asCli(async () => {
    const config = await loadAgentConfig(configFile);
    const record = await readDeploymentFor(config, env);
    const publicClient = await connectChain(config.chain.rpc_url, record);
    return {
      config,
      chainId: record.chainId,
      contracts: {
        publicClient,
        nodeStaking: record.contracts.nodeStaking.address,
        stakeToken: record.contracts.stakeToken.address,
      },
    };
  });
}

/** registerNode(endpoint, hardwareSpecHash, commissionBps) with the config's operator key. */
export async function registerAction(
  configFile: string,
  options: { commissionBps: number; endpoint?: string },
  env: NodeJS.ProcessEnv,
) {
  const { config, contracts, chainId } = await openNodeChain(configFile, env);
  const account = await asCli(async () =>
    openKeystore(config.keystore, await keystorePassword(env, config.keystore_password_file)),
  );
  const endpoint = options.endpoint ?? publicEndpoint(config);
  const hardware = detectHardware();
  const specHash = hardwareSpecHash(hardware);
  const chain = defineChain({
    id: chainId,
    name: "inframesh",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [config.chain.rpc_url] } },
  });
  const wallet = createWalletClient({ account, chain, transport: http(config.chain.rpc_url) });
  const receipt = await asCli(() =>
    registerNode(contracts, wallet, { endpoint, hardwareSpecHash: specHash, commissionBps: options.commissionBps }),
  );
  return {
    nodeId: account.address,
    endpoint,
    commissionBps: options.commissionBps,
    hardware,
    hardwareSpecHash: specHash,
    transaction: receipt.hash,
    blockNumber: receipt.blockNumber,
  };
}

/** The operator address of a keystore, read without the password (keystores store it in clear). */
async function keystoreAddress(file: string): Promise<Address> {
  try {
    const json = JSON.parse(await readFile(file, "utf8")) as { address?: string };
    return getAddress(json.address!.startsWith("0x") ? json.address! : `0x${json.address}`);
  } catch (error) {
    throw new CliError(`cannot read the operator address from the keystore ${file}`, { cause: error });
  }
}

/** The node as the chain sees it (registered, jailed, tier, stake) and its agent's /healthz. */
export async function statusAction(configFile: string, env: NodeJS.ProcessEnv) {
  const { config, contracts } = await openNodeChain(configFile, env);
  const nodeId = await keystoreAddress(config.keystore);
  const onChain = await asCli(() => readNodeStatus(contracts, nodeId));
  const healthUrl = `${publicEndpoint(config)}/healthz`;
  let agent: { reachable: boolean; status: string; models: unknown[] };
  try {
    const response = await fetch(healthUrl, { signal: AbortSignal.timeout(3_000) });
    const body = (await response.json()) as { status?: string; models?: unknown[] };
    agent = { reachable: true, status: body.status ?? `HTTP ${response.status}`, models: body.models ?? [] };
  } catch {
    agent = { reachable: false, status: "unreachable", models: [] };
  }
  return {
    nodeId,
    registered: onChain.registered,
    jailed: onChain.jailed,
    jailedUntil: onChain.jailed ? onChain.jailedUntil : null,
    eligible: onChain.eligible,
    tier: onChain.tier,
    selfStake: onChain.selfStake,
    activeStake: onChain.activeStake,
    unbondingStake: onChain.unbondingStake,
    endpoint: onChain.endpoint,
    commissionBps: onChain.commissionBps,
    commissionOwed: onChain.commissionOwed,
    hardwareSpecHash: onChain.hardwareSpecHash,
    agent: { url: healthUrl, ...agent },
  };
}

export function formatStatus(status: Awaited<ReturnType<typeof statusAction>>): string {
  return [
    `node ${status.nodeId}`,
    `  registered ${status.registered}, jailed ${status.jailed}, eligible ${status.eligible}, tier ${status.tier}`,
    ...(status.jailedUntil === null
      ? []
      : [
          `  jailed until ${new Date(Number(status.jailedUntil) * 1000).toISOString()}: the gateways route it no jobs ` +
            "until then (governance can free it earlier); its stake stays slashable",
        ]),
    `  stake: self ${status.selfStake}, active ${status.activeStake}, unbonding ${status.unbondingStake}`,
    `  endpoint ${status.endpoint || "(none)"}, commission ${status.commissionBps} bps` +
      (status.commissionOwed > 0n ? `, ${status.commissionOwed} accrued (infra node claim withdraws it)` : ""),
    `  agent ${status.agent.url}: ${status.agent.status}`,
  ].join("\n");
}

/** Runs the agent of `configFile` until SIGINT/SIGTERM. */
export async function startAction(
  configFile: string,
  env: NodeJS.ProcessEnv,
  onReady: (url: string, nodeId: string) => void,
) {
  const config = await asCli(() => loadAgentConfig(configFile));
  const agent = await asCli(() => startAgent(config, { env }));
  onReady(agent.url, agent.nodeId);
  await new Promise<void>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => resolve());
  });
  await agent.stop();
}

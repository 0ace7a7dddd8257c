// Where the `infra` CLI finds the network: deployments/<network>.json for the addresses, an RPC
// URL, and (wallet.ts) the signing key. The I/O edge of the CLI.
//
// Environment:
//   INFRAMESH_PRIVATE_KEY      0x-prefixed secp256k1 key of the account that signs (register, publish, mature)
//   INFRAMESH_RPC_URL          RPC URL (default: http://127.0.0.1:8545 for localhost, SEPOLIA_RPC_URL for sepolia)
//   INFRAMESH_DEPLOYMENTS_DIR  where <network>.json is (default <project>/deployments)
import { readFile } from "node:fs/promises";
import path from "node:path";

import {
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  type Chain,
  type PublicClient,
  type Transport,
} from "viem";

import { parseDeploymentRecord, type DeploymentRecord } from "../../sdk/deployment.ts";
import type { ModelContracts } from "../../sdk/models.ts";
import type { StakingWallet } from "../../sdk/staking.ts";
import { PROJECT_ROOT } from "../lib/local-chain.ts";
import { CliError } from "./format.ts";
import { SILENT, withTransactionProgress, type Progress } from "./progress.ts";
import { accountFromEnv } from "./wallet.ts";

export interface NetworkContext {
  record: DeploymentRecord;
  rpcUrl: string;
  chain: Chain;
  transport: Transport;
  contracts: ModelContracts;
}

/** The RPC URL of a network: INFRAMESH_RPC_URL, else the network's usual one. Pure. */
export function rpcUrlFor(network: string, env: NodeJS.ProcessEnv): string {
  if (env.INFRAMESH_RPC_URL !== undefined && env.INFRAMESH_RPC_URL !== "") return env.INFRAMESH_RPC_URL;
  if (network === "localhost") return "http://127.0.0.1:8545";
  if (network === "sepolia" && env.SEPOLIA_RPC_URL !== undefined && env.SEPOLIA_RPC_URL !== "") {
    return env.SEPOLIA_RPC_URL;
  }
  throw new CliError(`no RPC URL for network "${network}": set INFRAMESH_RPC_URL`);
}

/**
 * Reads deployments/<network>.json and connects to the network, checking it is the recorded chain.
 * With a terminal `progress`, every wait for a transaction receipt shows its hash and a spinner.
 */
export async function openNetwork(
  network: string,
  env: NodeJS.ProcessEnv = process.env,
  progress: Progress = SILENT,
): Promise<NetworkContext> {
  if (!/^[a-zA-Z0-9_-]+$/.test(network)) throw new CliError(`invalid network name "${network}"`);
  const dir = env.INFRAMESH_DEPLOYMENTS_DIR ?? path.join(PROJECT_ROOT, "deployments");
  const file = path.join(dir, `${network}.json`);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new CliError(
      `no deployment for network "${network}": ${file} not found (deploy first: npx hardhat deploy --network ${network})`,
      { cause: error },
    );
  }
  let record: DeploymentRecord;
  try {
    record = parseDeploymentRecord(JSON.parse(text));
  } catch (error) {
    throw new CliError(`${file}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }

  const rpcUrl = rpcUrlFor(network, env);
  const chain = defineChain({
    id: record.chainId,
    name: network,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
  const transport = http(rpcUrl, { retryCount: 0, timeout: 30_000 });
  const publicClient = withTransactionProgress(createPublicClient({ chain, transport }) as PublicClient, progress);
  let chainId: number;
  try {
    chainId = await publicClient.getChainId();
  } catch (error) {
    throw new CliError(`cannot reach network "${network}" at ${rpcUrl}`, { cause: error });
  }
  if (chainId !== record.chainId) {
    throw new CliError(
      `wrong network: ${rpcUrl} is chain ${chainId}, but ${file} records chain ${record.chainId} ` +
        `(point INFRAMESH_RPC_URL at the chain of "${network}", or pass the --network whose deployment this RPC serves)`,
    );
  }
  const code = await publicClient.getCode({ address: record.contracts.modelRegistry.address });
  if (code === undefined || code === "0x") {
    throw new CliError(
      `no ModelRegistry at ${record.contracts.modelRegistry.address} on ${rpcUrl}: ${file} describes another chain (redeploy)`,
    );
  }
  return {
    record,
    rpcUrl,
    chain,
    transport,
    contracts: { publicClient, modelRegistry: record.contracts.modelRegistry.address },
  };
}

/** The wallet of INFRAMESH_PRIVATE_KEY on the network (see wallet.ts for keystores). */
export function signer(context: NetworkContext, env: NodeJS.ProcessEnv = process.env): StakingWallet {
  return createWalletClient({ account: accountFromEnv(env), chain: context.chain, transport: context.transport });
}

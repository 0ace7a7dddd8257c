// The keeper's and the indexer's view of a network: deployments/<network>.json and a viem client
// checked to be on the recorded chain.
import { readFile } from "node:fs/promises";
import path from "node:path";

import { createPublicClient, defineChain, http, type Chain, type PublicClient } from "viem";

import { parseDeploymentRecord, type DeploymentRecord } from "../sdk/deployment.ts";

/** The network is not the one the deployment file describes, or cannot be read. */
export class NetworkError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "NetworkError";
  }
}

export interface NetworkConnection {
  record: DeploymentRecord;
  rpcUrl: string;
  chain: Chain;
  publicClient: PublicClient;
}

/** The RPC URL of a network when none is configured. Pure. */
export function defaultRpcUrl(network: string): string {
  if (network === "localhost") return "http://127.0.0.1:8545";
  throw new NetworkError(`no RPC URL for network "${network}": set INFRAMESH_RPC_URL`);
}

export async function readDeployment(deploymentsDir: string, network: string): Promise<DeploymentRecord> {
  const file = path.join(deploymentsDir, `${network}.json`);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new NetworkError(
      `no deployment for network "${network}": ${file} not found (deploy first: npx hardhat deploy --network ${network})`,
      { cause: error },
    );
  }
  try {
    return parseDeploymentRecord(JSON.parse(text));
  } catch (error) {
    throw new NetworkError(`${file}: ${(error as Error).message}`, { cause: error });
  }
}

/** Connects to the network and checks it is the chain the deployment file records. */
export async function connect(
  deploymentsDir: string,
  network: string,
  rpcUrl: string | undefined,
  options: { retryCount?: number; timeoutMs?: number } = {},
): Promise<NetworkConnection> {
  const record = await readDeployment(deploymentsDir, network);
  const url = rpcUrl ?? defaultRpcUrl(network);
  const chain = defineChain({
    id: record.chainId,
    name: network,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [url] } },
  });
  const publicClient = createPublicClient({
    chain,
    transport: http(url, { retryCount: options.retryCount ?? 2, timeout: options.timeoutMs ?? 30_000 }),
  }) as PublicClient;
  let chainId: number;
  try {
    chainId = await publicClient.getChainId();
  } catch (error) {
    throw new NetworkError(`cannot reach network "${network}" at ${url}`, { cause: error });
  }
  if (chainId !== record.chainId) {
    throw new NetworkError(
      `${url} is chain ${chainId}, but deployments/${network}.json records chain ${record.chainId} (wrong network?)`,
    );
  }
  return { record, rpcUrl: url, chain, publicClient };
}

// `npx hardhat deploy [--network X] [--parameters FILE]`: deploys the Inframesh module with
// Ignition and writes deployments/<network>.json. The I/O edge: the logic lives in
// parameters.ts (what to deploy) and record.ts (what to write).
//
// Re-runs are idempotent: Ignition resumes from its journal (ignition/deployments/<id>/),
// sends nothing for what is already deployed, and the record is rewritten byte for byte.
// The in-process network ("default") vanishes with the process: it deploys and prints the
// result but writes no deployments file (use `--network localhost` against `hardhat node`).
//
// Environment (optional):
//   INFRAMESH_DEPLOYMENT_ID    Ignition deployment id (default chain-<chainId>)
//   INFRAMESH_DEPLOYMENTS_DIR  where <network>.json goes (default <project>/deployments)
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";

import { HardhatArtifactResolver, readDeploymentParameters } from "@nomicfoundation/hardhat-ignition/helpers";
import { listTransactions } from "@nomicfoundation/ignition-core";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import type { NetworkConfig } from "hardhat/types/config";
import type { EthereumProvider } from "hardhat/types/providers";
import { erc20Abi, getAddress, type Abi, type Address, type Hash } from "viem";

import { buildInframeshModule } from "../../ignition/modules/Inframesh.ts";
import {
  serializeDeploymentRecord,
  type ContractKey,
  type DeploymentRecord,
  type ZkContractKey,
} from "../../sdk/deployment.ts";
import { DeployError, InvalidParametersError, MissingNetworkConfigError, StaleDeploymentError } from "./errors.ts";
import {
  resolveParameters,
  stakeTokenSource,
  toIgnitionParameters,
  treasurySource,
  type InframeshParameters,
} from "./parameters.ts";
import { buildDeploymentRecord, describeDeployment, type ContractFacts, type Creation } from "./record.ts";

interface DeployTaskArguments {
  parameters: string;
}

const DEPLOYMENT_ID_PATTERN = /^[a-zA-Z][a-zA-Z0-9_-]*$/;
const HARDHAT_CHAIN_ID = 31337;

export default async function deployAction(
  args: DeployTaskArguments,
  hre: HardhatRuntimeEnvironment,
): Promise<DeploymentRecord> {
  const networkName = hre.globalOptions.network ?? "default";
  const networkConfig = hre.config.networks[networkName];
  if (networkConfig !== undefined) await checkConfigurationVariables(networkName, networkConfig);

  const connection = await hre.network.create();
  try {
    const { provider } = connection;
    const chainId = Number(await provider.request({ method: "eth_chainId" }));
    const accounts = (await provider.request({ method: "eth_accounts" })) as string[];
    const deployerAccount = accounts[0];
    if (deployerAccount === undefined) {
      throw new DeployError(`Network "${networkName}" has no account to deploy from: configure its accounts`);
    }
    const deployer = getAddress(deployerAccount);

    const parametersFile = parametersPath(args.parameters, hre.config.paths.ignition, networkName);
    const parameters = resolveParameters(await readParameters(parametersFile), deployer);
    if (parameters.stakeToken !== undefined) await checkHasCode(provider, "stakeToken", parameters.stakeToken);

    const deploymentId = resolveDeploymentId(chainId);
    const ephemeral = connection.networkConfig.type === "edr-simulated";
    const journalDir = ephemeral ? undefined : path.join(hre.config.paths.ignition, "deployments", deploymentId);
    if (journalDir !== undefined && chainId === HARDHAT_CHAIN_ID) {
      await forgetJournalOfPreviousNode(provider, journalDir, deploymentId, hre.config.paths.cache);
    }

    console.log(`Deploying Inframesh to ${networkName} (chain ${chainId}) from ${deployer}`);
    if (parametersFile !== undefined) console.log(`Parameters: ${displayPath(parametersFile)}`);
    await hre.tasks.getTask("build").run({ quiet: true, noTests: true, defaultBuildProfile: "production" });

    const artifactResolver = new HardhatArtifactResolver(hre.artifacts);
    const sentBefore = await journalTransactions(journalDir, artifactResolver);
    const deployed = await connection.ignition.deploy(
      buildInframeshModule(stakeTokenSource(parameters), treasurySource(parameters)),
      {
        parameters: toIgnitionParameters(parameters),
        deploymentId,
      },
    );
    const sentAfter = await journalTransactions(journalDir, artifactResolver);

    const addresses: Record<ContractKey | ZkContractKey, Address> = {
      stakeToken: getAddress(await deployed.stakeToken.getAddress()),
      timelock: getAddress(await deployed.timelock.getAddress()),
      nodeStaking: getAddress(await deployed.nodeStaking.getAddress()),
      modelRegistry: getAddress(await deployed.modelRegistry.getAddress()),
      paymentEscrow: getAddress(await deployed.paymentEscrow.getAddress()),
      epochSettlement: getAddress(await deployed.epochSettlement.getAddress()),
      rewardClaims: getAddress(await deployed.rewardClaims.getAddress()),
      simplenetVerifier: getAddress(await deployed.simplenetVerifier.getAddress()),
      zkChallenge: getAddress(await deployed.zkChallenge.getAddress()),
    };
    for (const [key, address] of Object.entries(addresses)) {
      await checkDeployedCode(provider, key, address, journalDir);
    }
    const creations =
      sentAfter === undefined
        ? await findCreationsByScan(provider)
        : await findCreationsInJournal(provider, sentAfter.deployments);

    const record = buildDeploymentRecord({
      network: networkName,
      chainId,
      deployer,
      deploymentId,
      contracts: await contractFacts(hre, parameters, addresses, creations),
      // Recorded as deployed: the default treasury is the timelock.
      parameters: { ...parameters, treasury: parameters.treasury ?? addresses.timelock },
    });

    console.log(describeDeployment(record));
    if (sentBefore !== undefined && sentAfter !== undefined) {
      const fresh = sentAfter.hashes.size - sentBefore.hashes.size;
      console.log(fresh === 0 ? "Nothing new to deploy." : `Sent ${fresh} new transaction(s).`);
    }
    if (ephemeral) {
      console.log("In-process network: nothing written (it ends with this process). Use --network localhost.");
    } else {
      const outDir = process.env.INFRAMESH_DEPLOYMENTS_DIR ?? path.join(hre.config.paths.root, "deployments");
      const file = path.join(outDir, `${networkName}.json`);
      const changed = await writeIfChanged(file, serializeDeploymentRecord(record));
      console.log(`${changed ? "Wrote" : "Unchanged:"} ${displayPath(file)}`);
    }
    return record;
  } finally {
    await connection.close();
  }
}

// ------------------------------------------------------------------ configuration

/**
 * Reads each configuration variable of the network (RPC URL, account keys, mnemonic) so
 * that every missing one is named at once, before Hardhat fails on the first.
 */
async function checkConfigurationVariables(networkName: string, config: NetworkConfig): Promise<void> {
  if (config.type !== "http") return;
  const variables = [config.url];
  if (Array.isArray(config.accounts)) variables.push(...config.accounts);
  else if (typeof config.accounts === "object") variables.push(config.accounts.mnemonic);

  const missing: string[] = [];
  let firstCause: unknown;
  for (const variable of variables) {
    try {
      await variable.get();
    } catch (error) {
      const name = "name" in variable && typeof variable.name === "string" ? variable.name : "a configuration variable";
      // HHE7: in neither the environment nor the keystore. HHE50002: not in the development
      // keystore, the only one consulted under `hardhat test`.
      if (isHardhatErrorCode(error, "HHE7") || isHardhatErrorCode(error, "HHE50002")) {
        missing.push(name);
        firstCause ??= error;
      } else {
        throw new DeployError(`Could not read ${name} for network "${networkName}"`, { cause: error });
      }
    }
  }
  if (missing.length > 0) throw new MissingNetworkConfigError(networkName, missing, { cause: firstCause });
}

function isHardhatErrorCode(error: unknown, code: string): boolean {
  return typeof error === "object" && error !== null && "errorCode" in error && error.errorCode === code;
}

function parametersPath(given: string, ignitionDir: string, networkName: string): string | undefined {
  if (given !== "") return path.resolve(given);
  const perNetwork = path.join(ignitionDir, "parameters", `${networkName}.json`);
  return existsSync(perNetwork) ? perNetwork : undefined;
}

async function readParameters(file: string | undefined): Promise<unknown> {
  if (file === undefined) return undefined;
  if (!existsSync(file)) throw new InvalidParametersError(`file not found: ${file}`);
  try {
    return await readDeploymentParameters(file);
  } catch (error) {
    throw new InvalidParametersError(`cannot parse ${file}: ${innermostMessage(error)}`, { cause: error });
  }
}

function innermostMessage(error: unknown): string {
  let current = error;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}

function resolveDeploymentId(chainId: number): string {
  const id = process.env.INFRAMESH_DEPLOYMENT_ID;
  if (id === undefined || id === "") return `chain-${chainId}`;
  if (!DEPLOYMENT_ID_PATTERN.test(id)) {
    throw new DeployError(`INFRAMESH_DEPLOYMENT_ID must start with a letter and hold only letters, digits, - and _`);
  }
  return id;
}

// ------------------------------------------------------------------ chain checks

async function checkHasCode(provider: EthereumProvider, name: string, address: Address): Promise<void> {
  const code = await provider.request({ method: "eth_getCode", params: [address, "latest"] });
  if (code === "0x") throw new InvalidParametersError(`${name} ${address} has no contract code on this network`);
}

async function checkDeployedCode(
  provider: EthereumProvider,
  key: string,
  address: Address,
  journalDir: string | undefined,
): Promise<void> {
  const code = await provider.request({ method: "eth_getCode", params: [address, "latest"] });
  if (code !== "0x") return;
  const where = journalDir === undefined ? "" : ` Delete ${displayPath(journalDir)} and deploy again.`;
  throw new StaleDeploymentError(
    `Ignition's journal puts ${key} at ${address}, but the chain has no code there: the chain was reset.${where}`,
  );
}

/**
 * A `hardhat node` loses its state when it stops, but Ignition's journal for chain 31337
 * stays on disk. Like `hardhat ignition deploy`, remember which node instance the journal
 * belongs to and start afresh when it is another one.
 */
async function forgetJournalOfPreviousNode(
  provider: EthereumProvider,
  journalDir: string,
  deploymentId: string,
  cacheDir: string,
): Promise<void> {
  let instanceId: string;
  try {
    const metadata = (await provider.request({ method: "hardhat_metadata" })) as { instanceId: string };
    instanceId = metadata.instanceId;
  } catch {
    return; // not a Hardhat node: nothing to compare with
  }
  const instancesFile = path.join(cacheDir, ".hardhat-network-instances.json");
  const instances: Record<string, string> = existsSync(instancesFile)
    ? (JSON.parse(await readFile(instancesFile, "utf8")) as Record<string, string>)
    : {};
  if (instances[deploymentId] !== instanceId) {
    await rm(journalDir, { recursive: true, force: true });
    instances[deploymentId] = instanceId;
    await mkdir(cacheDir, { recursive: true });
    await writeFile(instancesFile, `${JSON.stringify(instances, null, 2)}\n`);
  }
}

// ------------------------------------------------------------------ deploy facts

interface JournalTransactions {
  hashes: Set<string>;
  /** Successful contract creations: address → transaction hash. */
  deployments: Map<Address, Hash>;
}

async function journalTransactions(
  journalDir: string | undefined,
  artifactResolver: HardhatArtifactResolver,
): Promise<JournalTransactions | undefined> {
  if (journalDir === undefined) return undefined;
  const result: JournalTransactions = { hashes: new Set(), deployments: new Map() };
  if (!existsSync(path.join(journalDir, "journal.jsonl"))) return result;
  for (const tx of await listTransactions(journalDir, artifactResolver)) {
    result.hashes.add(tx.txHash);
    if (tx.type === "DEPLOYMENT_EXECUTION_STATE" && tx.address !== undefined) {
      result.deployments.set(getAddress(tx.address), tx.txHash as Hash);
    }
  }
  return result;
}

async function findCreationsInJournal(
  provider: EthereumProvider,
  deployments: Map<Address, Hash>,
): Promise<Map<Address, Creation>> {
  const creations = new Map<Address, Creation>();
  for (const [address, transactionHash] of deployments) {
    const receipt = (await provider.request({
      method: "eth_getTransactionReceipt",
      params: [transactionHash],
    })) as { blockNumber: string } | null;
    if (receipt === null) {
      throw new StaleDeploymentError(`The chain does not know the deploy transaction ${transactionHash} of ${address}`);
    }
    creations.set(address, { transactionHash, blockNumber: Number(receipt.blockNumber) });
  }
  return creations;
}

/** Without a journal (in-process network, a fresh chain): read the creations from every block. */
async function findCreationsByScan(provider: EthereumProvider): Promise<Map<Address, Creation>> {
  const creations = new Map<Address, Creation>();
  const latest = Number(await provider.request({ method: "eth_blockNumber" }));
  for (let n = 0; n <= latest; n++) {
    const block = (await provider.request({
      method: "eth_getBlockByNumber",
      params: [`0x${n.toString(16)}`, true],
    })) as { transactions: { hash: Hash; to: string | null }[] } | null;
    for (const tx of block?.transactions ?? []) {
      if (tx.to !== null) continue;
      const receipt = (await provider.request({ method: "eth_getTransactionReceipt", params: [tx.hash] })) as {
        contractAddress: string | null;
      } | null;
      if (receipt?.contractAddress != null) {
        creations.set(getAddress(receipt.contractAddress), { transactionHash: tx.hash, blockNumber: n });
      }
    }
  }
  return creations;
}

async function contractFacts(
  hre: HardhatRuntimeEnvironment,
  parameters: InframeshParameters,
  addresses: Record<ContractKey | ZkContractKey, Address>,
  creations: Map<Address, Creation>,
): Promise<ContractFacts[]> {
  const deployedFact = async (key: ContractKey | ZkContractKey, contractName: string): Promise<ContractFacts> => {
    const creation = creations.get(addresses[key]);
    if (creation === undefined) {
      throw new StaleDeploymentError(`No deploy transaction found for ${contractName} at ${addresses[key]}`);
    }
    const artifact = await hre.artifacts.readArtifact(contractName);
    return { key, contractName, address: addresses[key], abi: artifact.abi as Abi, creation };
  };
  const stakeToken: ContractFacts =
    parameters.stakeToken === undefined
      ? await deployedFact("stakeToken", "InframeshToken")
      : {
          key: "stakeToken",
          contractName: "IERC20",
          address: addresses.stakeToken,
          abi: erc20Abi,
          creation: undefined,
        };
  return [
    stakeToken,
    await deployedFact("timelock", "InframeshTimelock"),
    await deployedFact("nodeStaking", "NodeStaking"),
    await deployedFact("modelRegistry", "ModelRegistry"),
    await deployedFact("paymentEscrow", "PaymentEscrow"),
    await deployedFact("epochSettlement", "EpochSettlement"),
    await deployedFact("rewardClaims", "RewardClaims"),
    await deployedFact("simplenetVerifier", "SimplenetVerifier"),
    await deployedFact("zkChallenge", "ZkChallenge"),
  ];
}

// ------------------------------------------------------------------ output

/** Relative to the working directory when inside it, else absolute. */
function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative === "" || relative.startsWith("..") || path.isAbsolute(relative) ? file : relative;
}

/** Writes atomically, and only when the bytes differ. Returns whether it wrote. */
async function writeIfChanged(file: string, text: string): Promise<boolean> {
  if (existsSync(file) && (await readFile(file, "utf8")) === text) return false;
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, text);
  await rename(temporary, file);
  return true;
}

// Builds the deployment record (deployments/<network>.json) from what a deploy observed.
// Pure: the task gathers the facts (addresses, ABIs, creation transactions) and writes the file.
import { getAddress, type Abi, type Hash } from "viem";

import {
  CONTRACT_KEYS,
  DeploymentRecordError,
  ZK_CONTRACT_KEYS,
  type ContractKey,
  type ZkContractKey,
  type DeployedContract,
  type DeploymentRecord,
} from "../../sdk/deployment.ts";
import { parametersToJson, type InframeshParameters } from "./parameters.ts";

/** The transaction that created a contract. */
export interface Creation {
  transactionHash: Hash;
  blockNumber: number;
}

/** What the deploy knows about one contract. */
export interface ContractFacts {
  key: ContractKey | ZkContractKey;
  contractName: string;
  address: string;
  abi: Abi;
  /** Undefined for a contract the deployment only references (an existing stake token). */
  creation: Creation | undefined;
}

export interface DeploymentFacts {
  network: string;
  chainId: number;
  deployer: string;
  deploymentId: string;
  contracts: readonly ContractFacts[];
  parameters: InframeshParameters;
}

/** The record for deployments/<network>.json, in a fixed key order so re-runs write identical bytes. */
export function buildDeploymentRecord(facts: DeploymentFacts): DeploymentRecord {
  const byKey = new Map<ContractKey | ZkContractKey, ContractFacts>();
  for (const contract of facts.contracts) {
    if (byKey.has(contract.key)) throw new DeploymentRecordError(`contract ${contract.key} given twice`);
    byKey.set(contract.key, contract);
  }
  const entry = (key: ContractKey | ZkContractKey): DeployedContract => {
    const contract = byKey.get(key);
    if (contract === undefined) throw new DeploymentRecordError(`contract ${key} missing`);
    return {
      contractName: contract.contractName,
      address: getAddress(contract.address),
      deployTransaction: contract.creation?.transactionHash ?? null,
      deployBlock: contract.creation?.blockNumber ?? null,
      abi: contract.abi,
    };
  };
  const contracts = Object.fromEntries([
    ...CONTRACT_KEYS.map((key) => [key, entry(key)]),
    ...ZK_CONTRACT_KEYS.filter((key) => byKey.has(key)).map((key) => [key, entry(key)]),
  ]) as DeploymentRecord["contracts"];
  return {
    network: facts.network,
    chainId: facts.chainId,
    deployer: getAddress(facts.deployer),
    deploymentId: facts.deploymentId,
    contracts,
    parameters: parametersToJson(facts.parameters),
  };
}

/** A few lines for the console: each contract's address and deploy block. */
export function describeDeployment(record: DeploymentRecord): string {
  const lines = [`Inframesh on ${record.network} (chain ${record.chainId}), deployer ${record.deployer}`];
  for (const key of [...CONTRACT_KEYS, ...ZK_CONTRACT_KEYS]) {
    const c = record.contracts[key];
    if (c === undefined) continue;
    const origin = c.deployBlock === null ? "existing contract" : `block ${c.deployBlock}`;
    lines.push(`  ${key.padEnd(17)} ${c.contractName.padEnd(18)} ${c.address}  ${origin}`);
  }
  return lines.join("\n");
}

// deployments/<network>.json: where the Inframesh contracts live on a network, with their
// ABIs, deploy blocks (where indexers start reading events) and the parameters they were
// deployed with. Written by `npx hardhat deploy`; read by the CLI, the services and the demo.
import { getAddress, isAddress, isHash, type Abi, type Address, type Hash } from "viem";

/** The contracts a deployment names, by their role in the protocol. */
export const CONTRACT_KEYS = [
  "stakeToken",
  "timelock",
  "nodeStaking",
  "modelRegistry",
  "paymentEscrow",
  "epochSettlement",
  "rewardClaims",
] as const;
export type ContractKey = (typeof CONTRACT_KEYS)[number];
/**
 * zkML's contracts: the simplenet circuit's Groth16 verifier and ZkChallenge. Optional in a
 * record, since records written before Ignition deployed them do not name them.
 */
export const ZK_CONTRACT_KEYS = ["simplenetVerifier", "zkChallenge"] as const;
export type ZkContractKey = (typeof ZK_CONTRACT_KEYS)[number];
/** Every contract a deployment may name: the core ones, then zkML's. */
export const PROTOCOL_CONTRACT_KEYS = [...CONTRACT_KEYS, ...ZK_CONTRACT_KEYS] as const;
export type ProtocolContractKey = ContractKey | ZkContractKey;

/** One deployed (or, for an existing stake token, referenced) contract. */
export interface DeployedContract {
  contractName: string;
  address: Address;
  /** Transaction and block that created it; null when the deployment did not create it. */
  deployTransaction: Hash | null;
  deployBlock: number | null;
  abi: Abi;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface DeploymentRecord {
  network: string;
  chainId: number;
  deployer: Address;
  /** Ignition's deployment id (its journal is ignition/deployments/<id>/). */
  deploymentId: string;
  contracts: Record<ContractKey, DeployedContract> & Partial<Record<ZkContractKey, DeployedContract>>;
  /** Every module parameter as deployed, defaults included; bigints as decimal strings. */
  parameters: Record<string, JsonValue>;
}

/** A deployments file that does not have the expected shape. */
export class DeploymentRecordError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(`Invalid deployment record: ${message}`, options);
    this.name = "DeploymentRecordError";
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function field<T>(obj: Record<string, unknown>, name: string, check: (v: unknown) => v is T, what: string): T {
  const value = obj[name];
  if (!check(value)) throw new DeploymentRecordError(`${name} must be ${what}`);
  return value;
}

const isString = (v: unknown): v is string => typeof v === "string";
const isChainId = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v > 0;
const isAddressString = (v: unknown): v is Address => typeof v === "string" && isAddress(v, { strict: false });
const isBlockOrNull = (v: unknown): v is number | null =>
  v === null || (typeof v === "number" && Number.isSafeInteger(v) && v >= 0);
const isHashOrNull = (v: unknown): v is Hash | null => v === null || (typeof v === "string" && isHash(v));
const isAbi = (v: unknown): v is Abi => Array.isArray(v) && v.every(isObject);

function parseContract(key: string, value: unknown): DeployedContract {
  if (!isObject(value)) throw new DeploymentRecordError(`contracts.${key} must be an object`);
  try {
    return {
      contractName: field(value, "contractName", isString, "a string"),
      address: getAddress(field(value, "address", isAddressString, "an address")),
      deployTransaction: field(value, "deployTransaction", isHashOrNull, "a transaction hash or null"),
      deployBlock: field(value, "deployBlock", isBlockOrNull, "a block number or null"),
      abi: field(value, "abi", isAbi, "an ABI array"),
    };
  } catch (error) {
    if (error instanceof DeploymentRecordError) {
      throw new DeploymentRecordError(`contracts.${key}: ${error.message.replace(/^Invalid deployment record: /, "")}`);
    }
    throw error;
  }
}

/** Checks a parsed deployments file and returns it typed. */
export function parseDeploymentRecord(json: unknown): DeploymentRecord {
  if (!isObject(json)) throw new DeploymentRecordError("expected a JSON object");
  const contracts = field(json, "contracts", isObject, "an object");
  const parameters = field(json, "parameters", isObject, "an object");
  const parsed = Object.fromEntries([
    ...CONTRACT_KEYS.map((key) => [key, parseContract(key, contracts[key])]),
    ...ZK_CONTRACT_KEYS.filter((key) => contracts[key] !== undefined).map((key) => [
      key,
      parseContract(key, contracts[key]),
    ]),
  ]);
  return {
    network: field(json, "network", isString, "a string"),
    chainId: field(json, "chainId", isChainId, "a positive integer"),
    deployer: getAddress(field(json, "deployer", isAddressString, "an address")),
    deploymentId: field(json, "deploymentId", isString, "a string"),
    contracts: parsed as DeploymentRecord["contracts"],
    parameters: parameters as Record<string, JsonValue>,
  };
}

/** The file's text: stable key order, two-space indent, trailing newline (identical on re-runs). */
export function serializeDeploymentRecord(record: DeploymentRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}

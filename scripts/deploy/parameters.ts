// Deploy parameters: read from an Ignition parameters file (`{ "Inframesh": { … } }`, JSON5,
// big integers as "123n" strings or plain decimal strings), checked against the same bounds
// the contracts enforce (so a bad value fails before any transaction), and completed with
// the defaults, including those Ignition cannot express (the deployer inside `proposers`).
// Pure: no I/O.
import { getAddress, isAddress, type Address } from "viem";

import {
  DEFAULT_PARAMETERS,
  INFRAMESH_MODULE_ID,
  type StakeTokenSource,
  type TreasurySource,
} from "../../ignition/modules/Inframesh.ts";
import { InvalidParametersError } from "./errors.ts";

/** Every parameter of the Inframesh module, resolved. */
export interface InframeshParameters {
  /** An existing ERC-20 to stake; undefined deploys the dev InframeshToken. */
  stakeToken: Address | undefined;
  /** Dev token only: receives the supply. */
  tokenHolder: Address | undefined;
  /** Dev token only: supply in base units. */
  initialSupply: bigint | undefined;
  minDelay: bigint;
  proposers: Address[];
  minSelfStake: bigint;
  unbondingPeriod: bigint;
  jailPeriod: bigint;
  maxSlashBps: number;
  burnBps: number;
  tierThresholds: bigint[];
  slasher: Address;
  pauser: Address;
  rewarder: Address;
  /** EpochSettlement's committee. */
  oracles: Address[];
  /** Committee signatures needed to post a settlement. */
  oracleThreshold: bigint;
  /** EpochSettlement: seconds between posting and finality. */
  challengeWindow: bigint;
  /** PaymentEscrow: seconds between a withdrawal request and the withdrawal. */
  withdrawalDelay: bigint;
  /** EpochSettlement fee schedule: who earns protocol fees; undefined means the timelock. */
  treasury: Address | undefined;
  /** Protocol fee, basis points of each receipt's fee. */
  protocolFeeBps: number;
  /** Model royalty, basis points of each receipt's fee. */
  royaltyBps: number;
  /** ZkChallenge: who may open challenges (CHALLENGER_ROLE): the keeper or slasher service. */
  zkChallenger: Address;
  /** ZkChallenge: seconds a challenged node has to answer with a proof. */
  zkResponseWindow: bigint;
}

const PARAMETER_NAMES = [
  "stakeToken",
  "tokenHolder",
  "initialSupply",
  "minDelay",
  "proposers",
  "minSelfStake",
  "unbondingPeriod",
  "jailPeriod",
  "maxSlashBps",
  "burnBps",
  "tierThresholds",
  "slasher",
  "pauser",
  "rewarder",
  "oracles",
  "oracleThreshold",
  "challengeWindow",
  "withdrawalDelay",
  "treasury",
  "protocolFeeBps",
  "royaltyBps",
  "zkChallenger",
  "zkResponseWindow",
] as const satisfies readonly (keyof InframeshParameters)[];

// Bounds NodeStaking enforces (see _setParameters / _setTierThresholds). minSelfStake is held
// in a uint96 (the parameters share one storage slot).
const MAX_BPS = 10_000;
const MAX_SLASH_BPS = 5_000;
const MAX_PERIOD = 365n * 86_400n;
const MAX_TIERS = 16;
const MAX_MIN_SELF_STAKE = 2n ** 96n - 1n;
const MAX_UINT256 = 2n ** 256n - 1n;
const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";
// Bounds EpochSettlement (_setCommittee, _setChallengeWindow) and PaymentEscrow
// (_setWithdrawalDelay) enforce.
const MAX_ORACLES = 32;
const HOUR = 3_600n;
const DAY = 86_400n;
const MIN_CHALLENGE_WINDOW = HOUR;
const MAX_CHALLENGE_WINDOW = 30n * DAY;
const MIN_WITHDRAWAL_DELAY = DAY;
const MAX_WITHDRAWAL_DELAY = 90n * DAY;
// EpochSettlement.MAX_FEE_BPS: protocol fee and royalty together leave the node at least half.
const MAX_FEE_BPS = 5_000;
// ZkChallenge.MIN_RESPONSE_WINDOW / MAX_RESPONSE_WINDOW.
const MIN_ZK_RESPONSE_WINDOW = HOUR;
const MAX_ZK_RESPONSE_WINDOW = 7n * DAY;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function toAddress(name: string, value: unknown): Address {
  if (typeof value !== "string" || !isAddress(value, { strict: false })) {
    throw new InvalidParametersError(`${name} must be an address, got ${JSON.stringify(value)}`);
  }
  if (value.toLowerCase() === ZERO_ADDRESS) throw new InvalidParametersError(`${name} must not be the zero address`);
  return getAddress(value);
}

function toUint(name: string, value: unknown, max: bigint = MAX_UINT256): bigint {
  let n: bigint | undefined;
  if (typeof value === "bigint") n = value;
  else if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) n = BigInt(value);
  else if (typeof value === "string" && /^\d+$/.test(value)) n = BigInt(value);
  if (n === undefined) {
    throw new InvalidParametersError(
      `${name} must be a non-negative integer (big values as "123n" or "123"), got ${JSON.stringify(String(value))}`,
    );
  }
  if (n < 0n || n > max) throw new InvalidParametersError(`${name} is out of range: ${n} (max ${max})`);
  return n;
}

function toBps(name: string, value: unknown, max = MAX_BPS): number {
  return Number(toUint(name, value, BigInt(max)));
}

function toList(name: string, value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new InvalidParametersError(`${name} must be a list`);
  return value;
}

/**
 * Resolves the Inframesh parameters from a parsed parameters file (or undefined for none)
 * and the deployer's address.
 *
 * @throws InvalidParametersError naming the first bad value.
 */
export function resolveParameters(file: unknown, deployerAddress: string): InframeshParameters {
  const deployer = getAddress(deployerAddress);
  const given = moduleSection(file);
  const has = (name: string): boolean => given[name] !== undefined;
  const stakeToken = has("stakeToken") ? toAddress("stakeToken", given.stakeToken) : undefined;
  if (stakeToken !== undefined && (has("tokenHolder") || has("initialSupply"))) {
    throw new InvalidParametersError(
      "tokenHolder and initialSupply configure the dev token, which is not deployed when stakeToken is set",
    );
  }
  const devToken = stakeToken === undefined;

  const parameters: InframeshParameters = {
    stakeToken,
    tokenHolder: devToken ? (has("tokenHolder") ? toAddress("tokenHolder", given.tokenHolder) : deployer) : undefined,
    initialSupply: devToken
      ? has("initialSupply")
        ? toUint("initialSupply", given.initialSupply)
        : DEFAULT_PARAMETERS.initialSupply
      : undefined,
    minDelay: has("minDelay") ? toUint("minDelay", given.minDelay) : DEFAULT_PARAMETERS.minDelay,
    proposers: has("proposers")
      ? toList("proposers", given.proposers).map((p, i) => toAddress(`proposers[${i}]`, p))
      : [deployer],
    minSelfStake: has("minSelfStake")
      ? toUint("minSelfStake", given.minSelfStake, MAX_MIN_SELF_STAKE)
      : DEFAULT_PARAMETERS.minSelfStake,
    unbondingPeriod: has("unbondingPeriod")
      ? toUint("unbondingPeriod", given.unbondingPeriod, MAX_PERIOD)
      : DEFAULT_PARAMETERS.unbondingPeriod,
    jailPeriod: has("jailPeriod") ? toUint("jailPeriod", given.jailPeriod, MAX_PERIOD) : DEFAULT_PARAMETERS.jailPeriod,
    maxSlashBps: has("maxSlashBps")
      ? toBps("maxSlashBps", given.maxSlashBps, MAX_SLASH_BPS)
      : DEFAULT_PARAMETERS.maxSlashBps,
    burnBps: has("burnBps") ? toBps("burnBps", given.burnBps) : DEFAULT_PARAMETERS.burnBps,
    tierThresholds: has("tierThresholds")
      ? toList("tierThresholds", given.tierThresholds).map((t, i) => toUint(`tierThresholds[${i}]`, t))
      : [...DEFAULT_PARAMETERS.tierThresholds],
    slasher: has("slasher") ? toAddress("slasher", given.slasher) : deployer,
    pauser: has("pauser") ? toAddress("pauser", given.pauser) : deployer,
    rewarder: has("rewarder") ? toAddress("rewarder", given.rewarder) : deployer,
    oracles: has("oracles")
      ? toList("oracles", given.oracles).map((o, i) => toAddress(`oracles[${i}]`, o))
      : [deployer],
    oracleThreshold: has("oracleThreshold")
      ? toUint("oracleThreshold", given.oracleThreshold)
      : DEFAULT_PARAMETERS.oracleThreshold,
    challengeWindow: has("challengeWindow")
      ? toUint("challengeWindow", given.challengeWindow)
      : DEFAULT_PARAMETERS.challengeWindow,
    withdrawalDelay: has("withdrawalDelay")
      ? toUint("withdrawalDelay", given.withdrawalDelay)
      : DEFAULT_PARAMETERS.withdrawalDelay,
    treasury: has("treasury") ? toAddress("treasury", given.treasury) : undefined,
    protocolFeeBps: has("protocolFeeBps")
      ? toBps("protocolFeeBps", given.protocolFeeBps, MAX_FEE_BPS)
      : DEFAULT_PARAMETERS.protocolFeeBps,
    royaltyBps: has("royaltyBps") ? toBps("royaltyBps", given.royaltyBps, MAX_FEE_BPS) : DEFAULT_PARAMETERS.royaltyBps,
    zkChallenger: has("zkChallenger") ? toAddress("zkChallenger", given.zkChallenger) : deployer,
    zkResponseWindow: has("zkResponseWindow")
      ? toUint("zkResponseWindow", given.zkResponseWindow)
      : DEFAULT_PARAMETERS.zkResponseWindow,
  };
  checkBounds(parameters);
  return parameters;
}

function moduleSection(file: unknown): Record<string, unknown> {
  if (file === undefined) return {};
  if (!isRecord(file))
    throw new InvalidParametersError(`the file must hold an object { "${INFRAMESH_MODULE_ID}": { … } }`);
  const extraModules = Object.keys(file).filter((key) => key !== INFRAMESH_MODULE_ID);
  if (extraModules.length > 0) {
    throw new InvalidParametersError(
      `unknown module id(s) ${extraModules.join(", ")}: parameters go under "${INFRAMESH_MODULE_ID}"`,
    );
  }
  const section = file[INFRAMESH_MODULE_ID];
  if (section === undefined) return {};
  if (!isRecord(section)) throw new InvalidParametersError(`"${INFRAMESH_MODULE_ID}" must be an object`);
  const known: readonly string[] = PARAMETER_NAMES;
  const unknown = Object.keys(section).filter((key) => !known.includes(key));
  if (unknown.length > 0) {
    throw new InvalidParametersError(`unknown parameter(s) ${unknown.join(", ")}; known: ${known.join(", ")}`);
  }
  return section;
}

function checkBounds(p: InframeshParameters): void {
  if (p.initialSupply === 0n) throw new InvalidParametersError("initialSupply must be positive");
  if (p.proposers.length === 0) throw new InvalidParametersError("proposers must name at least one account");
  if (p.minSelfStake === 0n) throw new InvalidParametersError("minSelfStake must be positive");
  if (p.unbondingPeriod === 0n) throw new InvalidParametersError("unbondingPeriod must be positive");
  if (p.maxSlashBps === 0) throw new InvalidParametersError("maxSlashBps must be positive");
  if (p.tierThresholds.length > MAX_TIERS) {
    throw new InvalidParametersError(`at most ${MAX_TIERS} tierThresholds, got ${p.tierThresholds.length}`);
  }
  p.tierThresholds.forEach((threshold, i) => {
    const previous = p.tierThresholds[i - 1];
    if (previous !== undefined && threshold <= previous) {
      throw new InvalidParametersError(`tierThresholds must be strictly ascending: [${i}] ${threshold} <= ${previous}`);
    }
  });
  checkSettlementBounds(p);
}

function checkSettlementBounds(p: InframeshParameters): void {
  if (p.oracles.length === 0) throw new InvalidParametersError("oracles must name at least one account");
  if (p.oracles.length > MAX_ORACLES) {
    throw new InvalidParametersError(`at most ${MAX_ORACLES} oracles, got ${p.oracles.length}`);
  }
  p.oracles.forEach((oracle, i) => {
    const first = p.oracles.indexOf(oracle);
    if (first !== i) throw new InvalidParametersError(`oracles[${i}] repeats oracles[${first}] (${oracle})`);
  });
  if (p.oracleThreshold === 0n) throw new InvalidParametersError("oracleThreshold must be at least 1");
  if (p.oracleThreshold > BigInt(p.oracles.length)) {
    throw new InvalidParametersError(
      `oracleThreshold ${p.oracleThreshold} exceeds the committee size (${p.oracles.length} oracles)`,
    );
  }
  if (p.challengeWindow < MIN_CHALLENGE_WINDOW || p.challengeWindow > MAX_CHALLENGE_WINDOW) {
    throw new InvalidParametersError(
      `challengeWindow must be between ${MIN_CHALLENGE_WINDOW} (1 hour) and ${MAX_CHALLENGE_WINDOW} (30 days) seconds, got ${p.challengeWindow}`,
    );
  }
  if (p.withdrawalDelay < MIN_WITHDRAWAL_DELAY || p.withdrawalDelay > MAX_WITHDRAWAL_DELAY) {
    throw new InvalidParametersError(
      `withdrawalDelay must be between ${MIN_WITHDRAWAL_DELAY} (1 day) and ${MAX_WITHDRAWAL_DELAY} (90 days) seconds, got ${p.withdrawalDelay}`,
    );
  }
  if (p.protocolFeeBps + p.royaltyBps > MAX_FEE_BPS) {
    throw new InvalidParametersError(
      `protocolFeeBps + royaltyBps must be at most ${MAX_FEE_BPS} (the node keeps at least half of each fee), got ${p.protocolFeeBps} + ${p.royaltyBps} = ${p.protocolFeeBps + p.royaltyBps}`,
    );
  }
  if (p.zkResponseWindow < MIN_ZK_RESPONSE_WINDOW || p.zkResponseWindow > MAX_ZK_RESPONSE_WINDOW) {
    throw new InvalidParametersError(
      `zkResponseWindow must be between ${MIN_ZK_RESPONSE_WINDOW} (1 hour) and ${MAX_ZK_RESPONSE_WINDOW} (7 days) seconds, got ${p.zkResponseWindow}`,
    );
  }
  // A job is debited only once its epoch is final: the delay must outlast the challenge window
  // (and the epoch length, which the chain does not know; see docs/settlement.md).
  if (p.withdrawalDelay <= p.challengeWindow) {
    throw new InvalidParametersError(
      `withdrawalDelay (${p.withdrawalDelay} s) must be longer than challengeWindow (${p.challengeWindow} s): clients could withdraw before their jobs are debited`,
    );
  }
}

/** Which module variant the parameters call for. */
export function stakeTokenSource(p: InframeshParameters): StakeTokenSource {
  return p.stakeToken === undefined ? "deploy" : "existing";
}

/** Which module variant the fee schedule's treasury calls for. */
export function treasurySource(p: InframeshParameters): TreasurySource {
  return p.treasury === undefined ? "timelock" : "parameter";
}

type IgnitionValue = string | number | bigint | IgnitionValue[];

/** The parameters as Ignition takes them: every value explicit, under the module id. */
export function toIgnitionParameters(p: InframeshParameters): Record<string, Record<string, IgnitionValue>> {
  const values: Record<string, IgnitionValue> = {};
  for (const name of PARAMETER_NAMES) {
    const value = p[name];
    if (value !== undefined) values[name] = value;
  }
  return { [INFRAMESH_MODULE_ID]: values };
}

type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The parameters for deployments/<network>.json: bigints as decimal strings, unused ones null. */
export function parametersToJson(p: InframeshParameters): Record<string, JsonValue> {
  const toJson = (value: InframeshParameters[keyof InframeshParameters]): JsonValue => {
    if (value === undefined) return null;
    if (typeof value === "bigint") return value.toString();
    if (Array.isArray(value)) return value.map((v) => (typeof v === "bigint" ? v.toString() : v));
    return value;
  };
  const out: Record<string, JsonValue> = {};
  for (const name of PARAMETER_NAMES) out[name] = toJson(p[name]);
  return out;
}

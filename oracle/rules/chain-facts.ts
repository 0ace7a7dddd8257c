// Rules over facts read from chain (oracle/chain.ts reads them at one block and passes them here
// as plain data), and over the client's escrow: pure functions.
import type { Address, Hex } from "viem";

import type { Receipt } from "../../sdk/receipt.ts";
import { type Rejection, reject } from "./reasons.ts";
import type { ZkRequirement } from "./zk.ts";

/** NodeStaking's view of the serving node at the block the receipt is checked against. */
export interface NodeFacts {
  registered: boolean;
  jailed: boolean;
  eligible: boolean;
  tier: number;
}

/** ModelRegistry's view of the model and version served. */
export interface ModelFacts {
  /** False when the model id was never registered. */
  exists: boolean;
  publisher: Address;
  hasServingVersion: boolean;
  servingVersion: bigint;
  versionCount: bigint;
  /** The version served, when it exists. */
  version?: {
    price: bigint;
    zkVerifier: Address;
    /** The version's recorded verifying key hash (zero when no proof is required). */
    verifyingKeyHash?: Hex;
    /** The zk verifier's `weightsCommitment()`, where it has one. */
    weightsCommitment?: bigint | null;
  };
}

const ZERO = "0x0000000000000000000000000000000000000000";

export function checkNode(receipt: Receipt, node: NodeFacts, minTier: number): Rejection | null {
  const id = receipt.proof_of_serving.node_id;
  if (!node.registered) return reject("node_not_registered", `node ${id} is not registered in NodeStaking`);
  if (node.jailed) return reject("node_jailed", `node ${id} is jailed`);
  if (!node.eligible) return reject("node_not_eligible", `node ${id} is not eligible (self-stake below the minimum)`);
  if (node.tier < minTier)
    return reject("node_tier_too_low", `node ${id} is tier ${node.tier}; tier ${minTier} is required`);
  return null;
}

/** The price the client pays and who earns the royalty, or why the model does not qualify. */
export type ModelCheck = { ok: true; fee: bigint; publisher: Address; zk: ZkRequirement | null } | Rejection;

export function checkModel(receipt: Receipt, model: ModelFacts): ModelCheck {
  const { model_id: modelId, version } = receipt.work_unit.model_ref;
  if (!model.exists) return reject("unknown_model", `model ${modelId} is not registered in ModelRegistry`);
  if (model.version === undefined || BigInt(version) >= model.versionCount)
    return reject("unknown_version", `model ${modelId} has no version ${version} (it has ${model.versionCount})`);
  if (!model.hasServingVersion || model.servingVersion !== BigInt(version))
    return reject(
      "not_serving_version",
      model.hasServingVersion
        ? `model ${modelId} serves version ${model.servingVersion}, not ${version}`
        : `model ${modelId} has no serving version yet`,
    );
  const fee = model.version.price;
  if (fee > receipt.work_unit.max_fee)
    return reject(
      "price_above_max_fee",
      `the version's price ${fee} exceeds the signed max_fee ${receipt.work_unit.max_fee}`,
    );
  const { zkVerifier, verifyingKeyHash, weightsCommitment } = model.version;
  const zk =
    zkVerifier === ZERO
      ? null
      : {
          verifier: zkVerifier,
          verifyingKeyHash: verifyingKeyHash ?? `0x${"0".repeat(64)}`,
          weightsCommitment: weightsCommitment ?? null,
        };
  return { ok: true, fee, publisher: model.publisher, zk };
}

/** The client's escrow covers every fee of its unsettled verified receipts plus this one. */
export function checkEscrow(client: Address, balance: bigint, pending: bigint, fee: bigint): Rejection | null {
  if (pending + fee > balance)
    return reject(
      "insufficient_escrow",
      `client ${client} has ${balance} in escrow; its unsettled fees would reach ${pending + fee}`,
    );
  return null;
}

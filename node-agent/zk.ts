// Proving alongside inference: a model version whose registry record names a zk verifier is served
// by the quantised simplenet (circuits/simplenet/quantised.ts) with a Groth16 proof per job. The
// agent checks at load that its weights are the version's (the verifier's weights commitment) and
// that its verification key is the version's, then keeps one warm prover for every such model.
import { parseAbi, type Address, type Hex, type PublicClient } from "viem";

import { SimplenetProver, type ZkProofJson } from "../circuits/prover.ts";
import { loadQuantisedSimplenet } from "../circuits/simplenet/model.ts";
import { forward } from "../circuits/simplenet/quantised.ts";
import { encodeZkOutput, quantisedInputOfBody } from "../circuits/simplenet/wire.ts";
import { verifyingKeyHashOf } from "../circuits/zk-verifier.ts";

const zkInferenceVerifierAbi = parseAbi(["function weightsCommitment() view returns (uint256)"]);

/** A zk-required model the agent can prove: its quantised weights, checked against the chain. */
export interface ZkModel {
  weights: Int8Array;
  weightsCommitment: bigint;
}

export class ZkModelError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ZkModelError";
  }
}

/**
 * Quantises the ONNX weights at `weightsPath` and checks them against the version's verifier
 * (`weightsCommitment()`) and its recorded key hash against the local circuit's key.
 */
export async function loadZkModel(
  publicClient: PublicClient,
  weightsPath: string,
  version: { zkVerifier: Address; verifyingKeyHash: Hex },
): Promise<ZkModel> {
  const localKey = await verifyingKeyHashOf();
  if (version.verifyingKeyHash.toLowerCase() !== localKey) {
    throw new ZkModelError(
      `the version records verifying key ${version.verifyingKeyHash}; this node's simplenet circuit has ${localKey}`,
    );
  }
  const model = await loadQuantisedSimplenet(weightsPath).catch((error: unknown) => {
    throw new ZkModelError(`${weightsPath} is not a simplenet the circuit proves: ${(error as Error).message}`, {
      cause: error,
    });
  });
  const onChain = await publicClient
    .readContract({ address: version.zkVerifier, abi: zkInferenceVerifierAbi, functionName: "weightsCommitment" })
    .catch((error: unknown) => {
      throw new ZkModelError(`the version's zk verifier ${version.zkVerifier} has no weightsCommitment()`, {
        cause: error,
      });
    });
  if (onChain !== model.weightsCommitment) {
    throw new ZkModelError(
      `the weights at ${weightsPath} commit to ${model.weightsCommitment}; the version's verifier fixes ${onChain}`,
    );
  }
  return model;
}

/**
 * One job of a zk-required model: the canonical output body and the receipt's `zk_proof`.
 * `badProof` is the INFRAMESH_AGENT_TEST_BAD_PROOF test hook: it serves the right output but
 * attaches a proof made for another input (the first value one quantum higher), which an oracle
 * must refuse (`wrong_input`).
 */
export async function proveJobBody(
  prover: SimplenetProver,
  model: ZkModel,
  input: Uint8Array,
  badProof = false,
): Promise<{ outputBody: Uint8Array; zkProof: ZkProofJson }> {
  const x = quantisedInputOfBody(input);
  if (!badProof) {
    const proof = await prover.prove(model.weights, x);
    return { outputBody: encodeZkOutput(proof.output), zkProof: proof.zkProof };
  }
  const other = Int32Array.from(x);
  const first = other[0] ?? 0;
  other[0] = first < 2 ** 15 - 1 ? first + 1 : first - 1;
  const proof = await prover.prove(model.weights, other);
  return { outputBody: encodeZkOutput(forward(model.weights, x).output), zkProof: proof.zkProof };
}

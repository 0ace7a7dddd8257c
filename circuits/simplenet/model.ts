// The quantised weights of the committed simplenet.onnx: what a zk-required simplenet version proves with.
import { readFile } from "node:fs/promises";
import path from "node:path";

import { floatWeightsFromOnnx, QuantisationError, quantiseWeights, weightsCommitment } from "./quantised.ts";

export const SIMPLENET_ONNX = path.join(import.meta.dirname, "..", "..", "models", "simplenet", "simplenet.onnx");

export interface QuantisedSimplenet {
  weights: Int8Array;
  weightsCommitment: bigint;
}

/** Reads an ONNX simplenet (default: the committed one) and quantises its weights. */
export async function loadQuantisedSimplenet(file = SIMPLENET_ONNX): Promise<QuantisedSimplenet> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new QuantisationError(`cannot read the model ${file}: run \`npm run model:simplenet\``, { cause: error });
  }
  const weights = quantiseWeights(floatWeightsFromOnnx(bytes));
  return { weights, weightsCommitment: weightsCommitment(weights) };
}

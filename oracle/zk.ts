// The oracle's zk verifiers, registered once at start-up: Groth16 for the simplenet circuit (its
// committed verification key) and, where circuits/ezkl/ holds ezkl's artifacts, Halo2 proofs
// checked by each version's deployed Halo2Verifier through an eth_call. Which one applies to a
// receipt is the version's business: its registry record names the verifier contract and the key.
import type { PublicClient } from "viem";

import { EzklHalo2Verifiers } from "../circuits/ezkl-verifier.ts";
import { SimplenetGroth16Verifier } from "../circuits/zk-verifier.ts";
import { OracleConfigError } from "./errors.ts";
import { ZkVerifierRegistry } from "./rules/zk.ts";

export interface ZkVerifierSources {
  /** The simplenet circuit's setup directory (default circuits/simplenet/setup). */
  groth16SetupDir?: string;
  /** ezkl's artifacts (default circuits/ezkl); no vk.key there means no ezkl verifier. */
  ezklDir?: string;
}

export async function loadZkVerifiers(
  publicClient: PublicClient,
  sources: ZkVerifierSources = {},
): Promise<ZkVerifierRegistry> {
  const registry = new ZkVerifierRegistry();
  try {
    registry.register(await SimplenetGroth16Verifier.load(sources.groth16SetupDir));
  } catch (error) {
    throw new OracleConfigError(`the Groth16 verifier cannot start: ${(error as Error).message}`, { cause: error });
  }
  const ezkl = await EzklHalo2Verifiers.load(async ({ to, data }) => {
    const result = await publicClient.call({ to: to as `0x${string}`, data: data as `0x${string}` });
    return result.data ?? "0x";
  }, sources.ezklDir);
  if (ezkl) registry.register(ezkl);
  return registry;
}

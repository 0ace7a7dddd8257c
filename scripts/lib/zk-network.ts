// A zk-required simplenet version on an inference network (scripts/lib/inference-network.ts): the
// version's ZkInferenceVerifier wraps the circuit's verifier the deployment recorded, fixes the
// committed ONNX's weights commitment and records the verification key's hash; the release is
// the simplenet bundle under its own version name (a manifest is published once per model), made
// the serving version. Node agents started afterwards prove every job of it.
import { copyFile, mkdtemp, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

import type { Abi, Address, Hex } from "viem";

import { loadQuantisedSimplenet } from "../../circuits/simplenet/model.ts";
import { verifyingKeyHashOf } from "../../circuits/zk-verifier.ts";
import { publishAction } from "../cli/model.ts";
import { SIMPLENET_DIR, SIMPLENET_PRICE, type InferenceNetwork } from "./inference-network.ts";
import { PROJECT_ROOT } from "./local-chain.ts";

export const ZK_VERSION_NAME = "1.0.0-zk";

export interface ZkVersion {
  /** The version number in the registry (the serving version once published). */
  version: bigint;
  verifier: Address;
  weightsCommitment: bigint;
  verifyingKeyHash: Hex;
  manifestHash: string;
}

async function artifact(name: string): Promise<{ abi: Abi; bytecode: Hex }> {
  const file = path.join(PROJECT_ROOT, "artifacts", "contracts", "zk", `${name}.sol`, `${name}.json`);
  return JSON.parse(await readFile(file, "utf8")) as { abi: Abi; bytecode: Hex };
}

/** Deploys the version verifier and publishes simplenet as a zk-required serving version. */
export async function publishZkSimplenet(net: InferenceNetwork, price = SIMPLENET_PRICE): Promise<ZkVersion> {
  const circuitVerifier = net.record.contracts.simplenetVerifier?.address;
  if (circuitVerifier === undefined) {
    throw new Error("the deployment record names no simplenetVerifier: redeploy with the current Ignition module");
  }
  const { weightsCommitment } = await loadQuantisedSimplenet(path.join(SIMPLENET_DIR, "simplenet.onnx"));
  const verifyingKeyHash = (await verifyingKeyHashOf()) as Hex;
  const { abi, bytecode } = await artifact("ZkInferenceVerifier");
  const hash = await net.deployer.deployContract({
    abi,
    bytecode,
    args: [circuitVerifier, weightsCommitment, verifyingKeyHash],
  });
  const deployed = await net.publicClient.waitForTransactionReceipt({ hash });
  if (deployed.status !== "success" || !deployed.contractAddress) throw new Error("ZkInferenceVerifier not deployed");
  const verifier = deployed.contractAddress;

  const release = await mkdtemp(path.join(net.work, "zk-release-"));
  const yaml = await readFile(path.join(SIMPLENET_DIR, "model.yaml"), "utf8");
  await writeFile(path.join(release, "model.yaml"), yaml.replace(/^version: .*$/m, `version: "${ZK_VERSION_NAME}"`));
  await copyFile(path.join(SIMPLENET_DIR, "simplenet.onnx"), path.join(release, "simplenet.onnx"));
  const models = { publicClient: net.publicClient, modelRegistry: net.record.contracts.modelRegistry.address };
  const published = await publishAction(models, net.deployer, release, {
    peers: [net.blobPeerUrl],
    copies: 1,
    price,
    mature: true,
    out: path.join(release, "blobs"),
    zk: { verifier, verifyingKeyHash },
  });
  return {
    version: published.versionNumber,
    verifier,
    weightsCommitment,
    verifyingKeyHash,
    manifestHash: published.manifestHash,
  };
}

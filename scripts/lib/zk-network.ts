// A zk-required simplenet version on an inference network (scripts/lib/inference-network.ts): the
// version's ZkInferenceVerifier wraps the circuit's verifier the deployment recorded, fixes the
// committed ONNX's weights commitment and records the verification key's hash; the release is
// the simplenet bundle under its own version name (a manifest is published once per model), made
// the serving version. Node agents started afterwards prove every job of it.
import { copyFile, mkdtemp, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

import { getAddress, type Abi, type Address, type Hex } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";

import type { ZkProofJson } from "../../circuits/prover.ts";
import { loadQuantisedSimplenet } from "../../circuits/simplenet/model.ts";
import { verifyingKeyHashOf } from "../../circuits/zk-verifier.ts";
import { hashWorkUnit, payloadHash, signProofOfServing, type ProofOfServing } from "../../sdk/eip712.ts";
import { proofOfServingJson, workUnitJsonSchema, workUnitOf, type ReceiptJson } from "../../sdk/receipt.ts";
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
export async function publishZkSimplenet(
  net: InferenceNetwork,
  options: {
    price?: bigint;
    versionName?: string;
    /** A commitment other than the served weights' (a bad version, for tests). */
    weightsCommitment?: bigint;
  } = {},
): Promise<ZkVersion> {
  const price = options.price ?? SIMPLENET_PRICE;
  const versionName = options.versionName ?? ZK_VERSION_NAME;
  const circuitVerifier = net.record.contracts.simplenetVerifier?.address;
  if (circuitVerifier === undefined) {
    throw new Error("the deployment record names no simplenetVerifier: redeploy with the current Ignition module");
  }
  const weightsCommitment =
    options.weightsCommitment ??
    (await loadQuantisedSimplenet(path.join(SIMPLENET_DIR, "simplenet.onnx"))).weightsCommitment;
  const verifyingKeyHash = (await verifyingKeyHashOf()) as Hex;
  const { abi, bytecode } = await artifact("ZkInferenceVerifier");
  const hash = await net.deployer.deployContract({
    abi,
    bytecode,
    args: [circuitVerifier, weightsCommitment, verifyingKeyHash],
  });
  const deployed = await net.publicClient.waitForTransactionReceipt({ hash });
  if (deployed.status !== "success" || !deployed.contractAddress) throw new Error("ZkInferenceVerifier not deployed");
  const verifier = getAddress(deployed.contractAddress);

  const release = await mkdtemp(path.join(net.work, "zk-release-"));
  const yaml = await readFile(path.join(SIMPLENET_DIR, "model.yaml"), "utf8");
  await writeFile(path.join(release, "model.yaml"), yaml.replace(/^version: .*$/m, `version: "${versionName}"`));
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

/**
 * A receipt made by hand, as a misbehaving node would make one: `client` signs a work unit of the
 * zk version for `input`, `node` signs a proof of serving for `outputBody` and attaches `zkProof`
 * (or none). Real signatures throughout: only the proof or the bytes are wrong.
 */
export async function handMadeZkReceipt(
  net: InferenceNetwork,
  zk: ZkVersion,
  parts: {
    client: PrivateKeyAccount;
    node: PrivateKeyAccount;
    input: Uint8Array;
    outputBody: Uint8Array;
    zkProof?: ZkProofJson;
    /** The bytes sent as `output` when they differ from the signed ones. */
    sentOutput?: Uint8Array;
  },
): Promise<ReceiptJson> {
  const call = await net.signedCall(parts.client, parts.input, { modelVersion: zk.version });
  const workUnit = workUnitOf({ work_unit: workUnitJsonSchema.parse(call.work_unit) });
  const proof: ProofOfServing = {
    jobId: workUnit.jobId,
    workUnitHash: hashWorkUnit(net.domain, workUnit),
    outputHash: payloadHash(parts.outputBody),
    latencyMs: 1,
    node: parts.node.address,
  };
  const signature = await signProofOfServing(parts.node, net.domain, proof);
  return {
    work_unit: call.work_unit,
    client_signature: call.client_signature,
    proof_of_serving: proofOfServingJson(proof, call.work_unit.model_ref, signature),
    ...(parts.zkProof === undefined ? {} : { zk_proof: parts.zkProof }),
    output: Buffer.from(parts.sentOutput ?? parts.outputBody).toString("base64"),
  };
}

/** Posts a receipt to the oracle and waits for its verdict. */
export async function oracleVerdict(
  oracleUrl: string,
  receipt: ReceiptJson,
  timeoutMs = 120_000,
): Promise<{ status: string; reason_code: string | null; reason: string | null }> {
  const posted = await fetch(`${oracleUrl}/v1/receipts`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(receipt),
  });
  if (posted.status >= 300) throw new Error(`the oracle refused the receipt: ${posted.status} ${await posted.text()}`);
  return waitForVerdict(oracleUrl, receipt.work_unit.job_id, timeoutMs);
}

/** Polls the oracle's receipt status until it is verified or rejected. */
export async function waitForVerdict(
  oracleUrl: string,
  jobId: string,
  timeoutMs = 120_000,
): Promise<{ status: string; reason_code: string | null; reason: string | null }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(`${oracleUrl}/v1/receipts/${jobId}`);
    if (response.status === 200) {
      const body = (await response.json()) as { status: string; reason_code: string | null; reason: string | null };
      if (body.status === "verified" || body.status === "rejected") return body;
    }
    if (Date.now() > deadline) throw new Error(`no verdict on job ${jobId} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

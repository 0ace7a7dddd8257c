// A zk-required simplenet version end to end through the oracle's HTTP API, on a real chain: the
// version is published with its ZkInferenceVerifier and key hash, the oracle registers the
// Groth16 verifier at start-up, a node agent proves every job, and receipts with missing, foreign,
// malformed or reordered proofs are refused with the verifier's reason.
//
// Slow (a hardhat node, a deploy and real proofs): run alone with
// `npx hardhat test mocha test/zk/oracle.test.ts`.
import { randomBytes } from "node:crypto";
import path from "node:path";

import { expect } from "chai";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";

import { SimplenetProver, releaseZkResources, type ZkProofJson } from "../../circuits/prover.ts";
import { loadQuantisedSimplenet, type QuantisedSimplenet } from "../../circuits/simplenet/model.ts";
import { verifyingKeyHashOf } from "../../circuits/zk-verifier.ts";
import { decodeZkOutput, encodeZkOutput, quantisedInputOfBody } from "../../circuits/simplenet/wire.ts";
import { encodeInferInput } from "../../models/simplenet/contract.ts";
import { parseOracleConfig } from "../../oracle/config.ts";
import { startOracle, type RunningOracle } from "../../oracle/service.ts";
import { deposit } from "../../sdk/escrow.ts";
import { readVersion } from "../../sdk/models.ts";
import { transferStakeToken } from "../../sdk/staking.ts";
import {
  DEPLOYER_KEY,
  TOKEN,
  startInferenceNetwork,
  type InferenceNetwork,
  type Operator,
} from "../../scripts/lib/inference-network.ts";
import { rpc } from "../../scripts/lib/local-chain.ts";
import {
  handMadeZkReceipt,
  oracleVerdict,
  publishZkSimplenet,
  waitForVerdict,
  type ZkVersion,
} from "../../scripts/lib/zk-network.ts";

const input = (seed: number) => encodeInferInput(Array.from({ length: 16 }, (_, i) => Math.sin(seed * 16 + i)));

describe("zk-required version through the oracle's HTTP API", function () {
  this.timeout(600_000);

  let net: InferenceNetwork;
  let zk: ZkVersion;
  let oracle: RunningOracle;
  let operator: Operator;
  let client: PrivateKeyAccount;
  let prover: SimplenetProver;
  let model: QuantisedSimplenet;

  /** The honest answer to `body` and its proof. */
  const honest = async (body: Uint8Array) => {
    const proof = await prover.prove(model.weights, quantisedInputOfBody(body));
    return { outputBody: encodeZkOutput(proof.output), zkProof: proof.zkProof };
  };
  const handMade = (parts: {
    input: Uint8Array;
    outputBody: Uint8Array;
    zkProof?: ZkProofJson;
    sentOutput?: Uint8Array;
  }) => handMadeZkReceipt(net, zk, { client, node: operator.account, ...parts });

  before(async function () {
    net = await startInferenceNetwork("zk-oracle-test");
    zk = await publishZkSimplenet(net);
    oracle = await startOracle(
      parseOracleConfig(
        {
          rpcUrl: net.chain.rpcUrl,
          deployment: net.deploymentFile,
          redisUrl: net.redis.url,
          dataDir: path.join(net.work, "oracle"),
          port: 0,
          blobPeers: [net.blobPeerUrl],
          logLevel: "silent",
        },
        { INFRAMESH_ORACLE_KEY: DEPLOYER_KEY },
      ),
    );
    operator = await net.addOperator(10_000n);
    client = privateKeyToAccount(`0x${randomBytes(32).toString("hex")}`);
    await rpc(net.chain.rpcUrl, "hardhat_setBalance", [client.address, "0x3635C9ADC5DEA00000"]);
    await transferStakeToken(net.staking, net.deployer, client.address, 10n * TOKEN);
    const escrow = {
      publicClient: net.publicClient,
      paymentEscrow: net.record.contracts.paymentEscrow.address,
      paymentToken: net.record.contracts.stakeToken.address,
    };
    await deposit(escrow, net.wallet(client), 1n * TOKEN);
    prover = await SimplenetProver.load();
    model = await loadQuantisedSimplenet();
  });

  after(async function () {
    await oracle?.close();
    await net?.stop();
    await releaseZkResources();
  });

  it("records the verifier and key on the version, the verifier fixing the served weights", async function () {
    expect(zk.version).to.equal(1n);
    expect(zk.weightsCommitment).to.equal(model.weightsCommitment);
    const record = await readVersion(
      { publicClient: net.publicClient, modelRegistry: net.record.contracts.modelRegistry.address },
      net.modelId,
      zk.version,
    );
    expect(record.zkVerifier).to.equal(zk.verifier);
    expect(record.verifyingKeyHash).to.equal(await verifyingKeyHashOf());
  });

  it("a node agent proves the job; the oracle verifies the proof against the version and pays it", async function () {
    const agent = await net.startAgent(operator, { oracles: [oracle.url] });
    const call = await net.signedCall(client, input(1), { modelVersion: zk.version });
    const response = await fetch(`${agent.url}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(call),
    });
    const answer = (await response.json()) as { output: string; job_id: string };
    expect(response.status, JSON.stringify(answer)).to.equal(200);
    const served = Buffer.from(answer.output, "base64");
    expect(decodeZkOutput(served)).to.have.length(8);
    expect(served).to.deep.equal(Buffer.from((await honest(input(1))).outputBody));
    const verdict = await waitForVerdict(oracle.url, answer.job_id);
    expect(verdict, JSON.stringify(verdict)).to.include({ status: "verified", reason_code: null });
    await agent.stop();
  });

  it("refuses the receipt of a node whose proof is for another input (INFRAMESH_AGENT_TEST_BAD_PROOF)", async function () {
    const cheat = await net.addOperator(10_000n);
    const agent = await net.startAgent(cheat, { oracles: [oracle.url], env: { INFRAMESH_AGENT_TEST_BAD_PROOF: "1" } });
    const call = await net.signedCall(client, input(2), { modelVersion: zk.version });
    const response = await fetch(`${agent.url}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(call),
    });
    expect(response.status).to.equal(200);
    const verdict = await waitForVerdict(oracle.url, call.work_unit.job_id);
    expect(verdict.status).to.equal("rejected");
    expect(verdict.reason_code).to.equal("zk_proof_invalid");
    expect(verdict.reason).to.match(/^wrong_input: proof is for input hash \d+, not this job's \d+/);
    await agent.stop();
  });

  it("refuses a missing proof, and a proof that does not bind this job, each with its reason", async function () {
    const a = await honest(input(3));
    const b = await honest(input(4));
    const [ax, bx] = [a.zkProof.proof as Record<string, unknown>, b.zkProof.proof as Record<string, unknown>];
    const signals = a.zkProof.public_signals;
    const otherWeights = Int8Array.from(model.weights, (w, i) => (i === 0 ? (w === 127 ? 126 : w + 1) : w));
    const otherVersion = await prover.prove(otherWeights, quantisedInputOfBody(input(3)));
    const cases: [string, Parameters<typeof handMade>[0], RegExp][] = [
      ["zk_proof_missing", { input: input(3), outputBody: a.outputBody }, /requires a zk proof/],
      ["zk_proof_invalid", { input: input(3), outputBody: a.outputBody, zkProof: b.zkProof }, /^wrong_input: /],
      [
        "zk_proof_invalid",
        { input: input(3), outputBody: b.outputBody, zkProof: a.zkProof },
        /^wrong_output: proof is for output hash/,
      ],
      [
        "zk_proof_invalid",
        { input: input(3), outputBody: a.outputBody, zkProof: otherVersion.zkProof },
        /^wrong_model_version: proof is for weights commitment/,
      ],
      [
        "zk_proof_invalid",
        {
          input: input(3),
          outputBody: a.outputBody,
          zkProof: { ...a.zkProof, public_signals: [signals[1]!, signals[0]!, signals[2]!] },
        },
        /^swapped_public_signals: /,
      ],
      [
        "zk_proof_invalid",
        {
          input: input(3),
          outputBody: a.outputBody,
          zkProof: { ...a.zkProof, proof: { ...ax, pi_a: ["1", "3", "1"] } },
        },
        /^malformed_proof: .*not a point on the BN254 curve/,
      ],
      [
        "zk_proof_invalid",
        { input: input(3), outputBody: a.outputBody, zkProof: { ...a.zkProof, proof: { ...ax, pi_c: bx.pi_c } } },
        /^invalid_proof: the Groth16 pairing check failed/,
      ],
      [
        "zk_proof_invalid",
        { input: input(3), outputBody: a.outputBody, zkProof: a.zkProof, sentOutput: b.outputBody },
        /^output_mismatch: /,
      ],
      [
        "no_zk_verifier",
        { input: input(3), outputBody: a.outputBody, zkProof: { ...a.zkProof, system: "plonk" } },
        /no verifier for system plonk \(this oracle verifies: groth16, ezkl-halo2\)/,
      ],
    ];
    const verdicts = await Promise.all(
      cases.map(async ([, parts]) => oracleVerdict(oracle.url, await handMade(parts))),
    );
    cases.forEach(([code, , reason], i) => {
      const verdict = verdicts[i]!;
      expect(verdict.status, `case ${i}`).to.equal("rejected");
      expect(verdict.reason_code, `case ${i}: ${verdict.reason}`).to.equal(code);
      expect(verdict.reason, `case ${i}`).to.match(reason);
    });
    // The same hand-made path with the honest proof is paid: only the proofs above were wrong.
    const paid = await oracleVerdict(oracle.url, await handMade({ input: input(3), ...a }));
    expect(paid, JSON.stringify(paid)).to.include({ status: "verified" });
  });

  // Last: it makes a bad version the serving one.
  it("a node agent refuses to serve a zk version whose verifier fixes other weights, saying which", async function () {
    await publishZkSimplenet(net, { versionName: "1.0.1-zk-other", weightsCommitment: model.weightsCommitment + 1n });
    let error: unknown;
    await net.startAgent(await net.addOperator(10_000n), { oracles: [oracle.url] }).catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(Error);
    expect((error as Error).message).to.match(
      /model simplenet \(zk-required\): the weights at .*simplenet\.onnx commit to \d+; the version's verifier fixes \d+/,
    );
  });
});

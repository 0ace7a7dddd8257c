// The demo's zkML part: a zk-required simplenet version on the inference network. The version is
// published with its ZkInferenceVerifier (the circuit's Groth16 verifier with the weights
// commitment fixed) and the verification key's hash; the oracle registered the Groth16 verifier
// at start-up; one node agent proves every job alongside inference, another attaches proofs of
// another input (the INFRAMESH_AGENT_TEST_BAD_PROOF test hook). The client's calls are proven,
// verified and paid (the epoch settled, the node claims); the bad proof is refused with its reason.
// On chain, ZkChallenge: the honest node answers a challenge with a proof and the challenge
// fails; the cheating node cannot, and is slashed once the response window has passed.
import { randomBytes } from "node:crypto";
import path from "node:path";

import { formatUnits, parseAbi, type Abi, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { SimplenetProver, releaseZkResources, solidityCallData } from "../../circuits/prover.ts";
import { loadQuantisedSimplenet } from "../../circuits/simplenet/model.ts";
import { inputHashOfBody, outputHashOfBody, quantisedInputOfBody } from "../../circuits/simplenet/wire.ts";
import { encodeInferInput } from "../../models/simplenet/contract.ts";
import { describeChainError } from "../../oracle/chain.ts";
import { parseOracleConfig } from "../../oracle/config.ts";
import { startOracle } from "../../oracle/service.ts";
import { deposit } from "../../sdk/escrow.ts";
import { readNodeStatus, transferStakeToken } from "../../sdk/staking.ts";
import {
  DEPLOYER_KEY,
  SIMPLENET_PRICE,
  TOKEN,
  startInferenceNetwork,
  type InferenceNetwork,
  type RunningAgent,
} from "./inference-network.ts";
import { runAuditStep } from "./audit-step.ts";
import { getJson, waitFor } from "./network-demo.ts";
import { rpc } from "./local-chain.ts";
import { publishZkSimplenet, waitForVerdict } from "./zk-network.ts";

const CALLS = 3;
const ADMIN_TOKEN = randomBytes(16).toString("hex");
const SLASH = 100n * TOKEN;
const rewardClaimsAbi = parseAbi([
  "function claim(address account, uint256 cumulativeAmount, bytes32[] proof) returns (uint256 amount)",
]);

export interface ZkDemoSummary {
  version: string;
  verifier: Address;
  weightsCommitment: string;
  calls: number;
  verified: number;
  /** The bad proof's verdict: reason code and reason. */
  refused: { code: string | null; reason: string | null };
  settledEpoch: string;
  claimed: string;
  /** The challenge the honest node answered, and the one the cheating node could not. */
  answeredChallenge: { job: Hex; status: string };
  slashedChallenge: { job: Hex; badAnswer: string; slashed: string };
  proveMs: number[];
  /** `infra audit --all`'s verdict at the end: zk proofs included in what it checks. */
  audit: string;
}

async function postJob(agent: RunningAgent, call: unknown): Promise<{ job_id: Hex; output: string }> {
  const response = await fetch(`${agent.url}/v1/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(call),
  });
  const body = (await response.json()) as { job_id: Hex; output: string; error?: string; reason?: string };
  if (response.status !== 200) throw new Error(`job refused: ${response.status} ${body.error}: ${body.reason}`);
  return body;
}

/**
 * Runs the zkML scenario on its own fresh network, or on `options.net` (one whose contracts were
 * deployed by the current Ignition module and that runs no oracle of its own: this one settles).
 */
export async function runZkScenario(
  say: (text: string) => void,
  cleanups: (() => Promise<unknown>)[],
  options: { net?: InferenceNetwork } = {},
): Promise<ZkDemoSummary> {
  say("zkML: a zk-required simplenet version, proofs of inference verified by the oracle and on chain");
  let net = options.net;
  if (net === undefined) {
    net = await startInferenceNetwork("local-demo-zk");
    cleanups.push(() => net!.stop());
  }
  cleanups.push(() => releaseZkResources());
  const { publicClient, record } = net;
  const zkChallenge = record.contracts.zkChallenge;
  if (zkChallenge === undefined) throw new Error("the deployment record names no zkChallenge");
  const amount = (value: bigint) => formatUnits(value, 18);

  const zk = await publishZkSimplenet(net);
  console.log(
    `  simplenet version ${zk.version} ("1.0.0-zk") published and serving: zkVerifier ${zk.verifier} ` +
      `(ZkInferenceVerifier over SimplenetVerifier ${record.contracts.simplenetVerifier?.address}), ` +
      `weights commitment ${zk.weightsCommitment.toString().slice(0, 16)}…, verifying key sha256 ${zk.verifyingKeyHash}`,
  );

  const oracle = await startOracle(
    parseOracleConfig(
      {
        rpcUrl: net.chain.rpcUrl,
        deployment: net.deploymentFile,
        redisUrl: net.redis.url,
        dataDir: path.join(net.work, "zk-oracle"),
        port: 0,
        blobPeers: [net.blobPeerUrl],
        adminToken: ADMIN_TOKEN,
        settlementTickMs: 200,
        logLevel: "silent",
      },
      { INFRAMESH_ORACLE_KEY: DEPLOYER_KEY },
    ),
  );
  cleanups.push(() => oracle.close());
  const honestOperator = await net.addOperator(10_000n);
  const cheatOperator = await net.addOperator(10_000n);
  const honest = await net.startAgent(honestOperator, { oracles: [oracle.url] });
  const cheat = await net.startAgent(cheatOperator, {
    oracles: [oracle.url],
    env: { INFRAMESH_AGENT_TEST_BAD_PROOF: "1" },
  });
  console.log(
    `  oracle ${oracle.url} (zk verifiers registered at start-up); node-zk ${honestOperator.account.address} ` +
      `proves every job; node-cheat ${cheatOperator.account.address} runs with INFRAMESH_AGENT_TEST_BAD_PROOF=1`,
  );

  const client = privateKeyToAccount(`0x${randomBytes(32).toString("hex")}`);
  await rpc(net.chain.rpcUrl, "hardhat_setBalance", [client.address, "0x3635C9ADC5DEA00000"]);
  await transferStakeToken(net.staking, net.deployer, client.address, 10n * TOKEN);
  await deposit(
    {
      publicClient,
      paymentEscrow: record.contracts.paymentEscrow.address,
      paymentToken: record.contracts.stakeToken.address,
    },
    net.wallet(client),
    1n * TOKEN,
  );

  say(`Client: ${CALLS} signed calls to node-zk, one to node-cheat; each answer carries a Groth16 proof`);
  const proveMs: number[] = [];
  const honestJobs: { job: Hex; input: Uint8Array; output: Uint8Array }[] = [];
  for (let n = 0; n < CALLS; n++) {
    const input = encodeInferInput(Array.from({ length: 16 }, (_, i) => Math.cos(n * 16 + i)));
    const started = performance.now();
    const answer = await postJob(honest, await net.signedCall(client, input, { modelVersion: zk.version }));
    proveMs.push(Math.round(performance.now() - started));
    honestJobs.push({ job: answer.job_id, input, output: Buffer.from(answer.output, "base64") });
    console.log(
      `  call ${n}: job ${answer.job_id.slice(0, 10)}… answered with proof in ${proveMs[n]} ms: ` +
        Buffer.from(answer.output, "base64").toString("utf8"),
    );
  }
  const cheatInput = encodeInferInput(Array.from({ length: 16 }, (_, i) => Math.sin(i)));
  const cheatAnswer = await postJob(cheat, await net.signedCall(client, cheatInput, { modelVersion: zk.version }));
  const cheatOutput = Buffer.from(cheatAnswer.output, "base64");
  console.log(`  node-cheat answered job ${cheatAnswer.job_id.slice(0, 10)}… (its proof is of another input)`);

  say("Oracle: every receipt's proof checked against the version's commitment, the input and the output");
  const verdicts = await Promise.all(honestJobs.map((j) => waitForVerdict(oracle.url, j.job)));
  const verified = verdicts.filter((v) => v.status === "verified").length;
  if (verified !== CALLS) throw new Error(`expected ${CALLS} verified receipts: ${JSON.stringify(verdicts)}`);
  const refused = await waitForVerdict(oracle.url, cheatAnswer.job_id);
  if (refused.status !== "rejected") throw new Error(`the bad proof was not refused: ${JSON.stringify(refused)}`);
  console.log(`  node-zk: ${verified} of ${CALLS} receipts verified`);
  console.log(`  node-cheat: rejected, ${refused.reason_code}: ${refused.reason}`);

  say("Settlement: the epoch is closed, posted, final and funded; node-zk claims its earnings");
  const closed = await fetch(`${oracle.url}/v1/epochs/close`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  const epoch = (await closed.json()) as { epoch: string; error?: string; reason?: string };
  if (closed.status !== 200) throw new Error(`closing the epoch failed: ${epoch.error}: ${epoch.reason}`);
  await waitFor("the settlement to be posted", async () => {
    const row = await getJson<{ state: string }>(`${oracle.url}/v1/epochs/${epoch.epoch}`);
    return ["posted", "final", "funded"].includes(row.state) ? true : undefined;
  });
  await rpc(net.chain.rpcUrl, "evm_increaseTime", [Number(record.parameters.challengeWindow ?? 86_400) + 1]);
  await rpc(net.chain.rpcUrl, "evm_mine", []);
  const funded = await waitFor("the settlement to be funded", async () => {
    const row = await getJson<{ state: string; settlement: Record<string, string> }>(
      `${oracle.url}/v1/epochs/${epoch.epoch}`,
    );
    return row.state === "funded" ? row : undefined;
  });
  const account = honestOperator.account.address;
  const claim = await getJson<{ cumulative_amount: string; proof: Hex[] }>(
    `${oracle.url}/v1/epochs/${epoch.epoch}/claims/${account}`,
  );
  const claimHash = await net.wallet(honestOperator.account).writeContract({
    address: record.contracts.rewardClaims.address,
    abi: rewardClaimsAbi,
    functionName: "claim",
    args: [account, BigInt(claim.cumulative_amount), claim.proof],
  });
  const claimed = await publicClient.waitForTransactionReceipt({ hash: claimHash });
  if (claimed.status !== "success") throw new Error("node-zk's claim reverted");
  const cheatClaim = await fetch(`${oracle.url}/v1/epochs/${epoch.epoch}/claims/${cheatOperator.account.address}`);
  console.log(
    `  epoch ${epoch.epoch}: ${funded.settlement.receiptCount} receipts (${CALLS} × ${SIMPLENET_PRICE} wei debited); ` +
      `node-zk claimed ${claim.cumulative_amount} wei (gas ${claimed.gasUsed}); node-cheat has no claim ` +
      `(HTTP ${cheatClaim.status})`,
  );

  say("ZkChallenge: a challenged job is answered with a proof on chain, or its node is slashed");
  const challengeAbi = zkChallenge.abi as Abi;
  const challenger = net.deployer; // zkChallenger defaults to the deployer
  const send = async (wallet: typeof challenger, functionName: string, args: readonly unknown[]) => {
    const { request } = await publicClient.simulateContract({
      address: zkChallenge.address,
      abi: challengeAbi,
      functionName,
      args,
      account: wallet.account,
    });
    const hash = await wallet.writeContract(request as Parameters<typeof wallet.writeContract>[0]);
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new Error(`${functionName} reverted`);
    return receipt;
  };
  const open = (job: Hex, node: Address, input: Uint8Array, output: Uint8Array) =>
    send(challenger, "openChallenge", [
      job,
      node,
      net.modelId,
      zk.version,
      inputHashOfBody(input),
      outputHashOfBody(output),
      SLASH,
    ]);
  const statusOf = async (job: Hex) => {
    const c = (await publicClient.readContract({
      address: zkChallenge.address,
      abi: challengeAbi,
      functionName: "challengeOf",
      args: [job],
    })) as { status: number };
    return ["none", "open", "answered", "slashed"][c.status] ?? String(c.status);
  };

  // node-zk proves the challenged job again from its input (any valid proof of it will do).
  const prover = await SimplenetProver.load();
  const { weights } = await loadQuantisedSimplenet();
  const target = honestJobs[0]!;
  const opened = await open(target.job, account, target.input, target.output);
  const reproof = await prover.prove(weights, quantisedInputOfBody(target.input));
  const call = solidityCallData(reproof.zkProof);
  const answered = await send(net.wallet(honestOperator.account), "answerChallenge", [
    target.job,
    { a: call.a, b: call.b, c: call.c },
  ]);
  const answeredStatus = await statusOf(target.job);
  console.log(
    `  job ${target.job.slice(0, 10)}… of node-zk challenged (gas ${opened.gasUsed}); node-zk answered with a proof ` +
      `(gas ${answered.gasUsed}): challenge ${answeredStatus}, no slash`,
  );

  // node-cheat can only offer what it has: a proof of another input.
  await open(cheatAnswer.job_id, cheatOperator.account.address, cheatInput, cheatOutput);
  const other = Int32Array.from(quantisedInputOfBody(cheatInput));
  other[0] = (other[0] ?? 0) + 1;
  const badCall = solidityCallData((await prover.prove(weights, other)).zkProof);
  let badAnswer = "accepted";
  await send(net.wallet(cheatOperator.account), "answerChallenge", [
    cheatAnswer.job_id,
    { a: badCall.a, b: badCall.b, c: badCall.c },
  ]).catch((error: unknown) => {
    badAnswer = describeChainError(error);
  });
  if (!badAnswer.startsWith("InvalidProof")) throw new Error(`the bad answer was not refused: ${badAnswer}`);
  const window = (await publicClient.readContract({
    address: zkChallenge.address,
    abi: challengeAbi,
    functionName: "responseWindow",
  })) as bigint;
  await rpc(net.chain.rpcUrl, "evm_increaseTime", [Number(window) + 1]);
  await rpc(net.chain.rpcUrl, "evm_mine", []);
  const before = (await readNodeStatus(net.staking, cheatOperator.account.address)).activeStake;
  const slashedTx = await send(net.deployer, "executeSlash", [cheatAnswer.job_id]);
  const after = (await readNodeStatus(net.staking, cheatOperator.account.address)).activeStake;
  console.log(
    `  job ${cheatAnswer.job_id.slice(0, 10)}… of node-cheat challenged; its answer reverted ${badAnswer}; ` +
      `after the ${window} s response window executeSlash took ${amount(before - after)} INFRA (gas ${slashedTx.gasUsed})`,
  );

  const audit = await runAuditStep(say, net, oracle.url);

  const summary: ZkDemoSummary = {
    version: zk.version.toString(),
    verifier: zk.verifier,
    weightsCommitment: zk.weightsCommitment.toString(),
    calls: CALLS,
    verified,
    refused: { code: refused.reason_code, reason: refused.reason },
    settledEpoch: epoch.epoch,
    claimed: claim.cumulative_amount,
    answeredChallenge: { job: target.job, status: answeredStatus },
    slashedChallenge: { job: cheatAnswer.job_id, badAnswer, slashed: (before - after).toString() },
    proveMs,
    audit: audit.verdict,
  };
  console.log(
    `\nzkML summary: ${CALLS} proven calls verified and paid (epoch ${epoch.epoch}, ${claim.cumulative_amount} wei ` +
      `claimed), 1 bad proof refused (${refused.reason_code}: ${refused.reason?.split(":")[0]}), ` +
      `1 challenge answered with a proof, 1 slashed (${amount(before - after)} INFRA); ` +
      `job latency with proof ${proveMs.join(", ")} ms; ${audit.verdict}.`,
  );
  return summary;
}

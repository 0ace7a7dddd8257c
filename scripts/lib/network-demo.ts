// The demo's last part: the whole inference network on real parts. A fresh `hardhat node` with the
// contracts deployed and simplenet published (scripts/lib/inference-network.ts), a private Redis,
// the reward oracle, one gateway and three node agents serving simplenet with onnxruntime (one a
// child process). A client deposits into the escrow and makes 100 calls through the gateway; the
// child agent is SIGKILLed midway and the gateway fails over; it is restarted and its outbox
// delivers what it still held. The oracle verifies every receipt, settles the epoch on chain,
// the challenge window passes, the debits are collected and every node claims with the proof the
// oracle serves. Epochs are closed by the keeper on a short period (no hand-made close), and the
// keeper slashes the killed node for the jobs it dropped, from the gateway's attempt records, with
// the evidence published to the blob store.
import { randomBytes } from "node:crypto";
import path from "node:path";

import { pino } from "pino";
import { formatUnits, parseAbi, parseEventLogs, sha256, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { encodeInferInput } from "../../models/simplenet/contract.ts";
import { parseOracleConfig } from "../../oracle/config.ts";
import { startOracle } from "../../oracle/service.ts";
import { keeperConfig } from "../../keeper/config.ts";
import { startKeeper } from "../../keeper/service.ts";
import { deposit } from "../../sdk/escrow.ts";
import { nodeStakingAbi, readStakerPosition, stake, transferStakeToken } from "../../sdk/staking.ts";
import { runAuditStep } from "./audit-step.ts";
import { hasDockerd, startDockerEngine } from "./docker.ts";
import { DEPLOYER_KEY, SIMPLENET_PRICE, TOKEN, startInferenceNetwork, type RunningAgent } from "./inference-network.ts";
import { rpc } from "./local-chain.ts";
import { formatSection, formatTable } from "./table.ts";

const CALLS = 100;
const KILL_AT = 50;
const CONCURRENCY = 4;
const ADMIN_TOKEN = randomBytes(16).toString("hex");
/** The keeper's epoch period in the demo: short, so the run does not wait. */
const KEEPER_EPOCH_MS = 1_000;
/** node-c's SLA slash: 1% of its slashable stake (10,000 INFRA), so 100 INFRA. */
const SLA_SLASH_BPS = 100;
const epochSettlementAbi = parseAbi(["function nextEpoch() view returns (uint64)"]);
const slashedEventAbi = parseAbi([
  "event Slashed(address indexed node, bytes32 indexed evidenceHash, uint256 amount, uint256 fromActive, uint256 fromUnbonding, uint256 burned, uint256 redistributed, uint64 jailedUntil)",
]);
const rewardClaimsAbi = parseAbi([
  "function claim(address account, uint256 cumulativeAmount, bytes32[] proof) returns (uint256 amount)",
  "function claimed(address account) view returns (uint256)",
]);

/** Polls `check` every 100 ms until it returns a value, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`${url}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

export interface NetworkDemoSummary {
  calls: number;
  answered: number;
  answeredBy: Record<string, number>;
  receiptsVerified: number;
  settledEpoch: string;
  /** `infra audit --all`'s verdict on the network's chain at the end. */
  audit: string;
}

export async function runNetworkScenario(
  say: (text: string) => void,
  cleanups: (() => Promise<unknown>)[],
): Promise<NetworkDemoSummary> {
  say("Inference network: a fresh chain, simplenet published, Redis, oracle, gateway, three node agents");
  const net = await startInferenceNetwork("local-demo-network");
  cleanups.push(() => net.stop());
  const { publicClient, record } = net;
  const amount = (value: bigint) => formatUnits(value, 18);

  const oracle = await startOracle(
    parseOracleConfig(
      {
        rpcUrl: net.chain.rpcUrl,
        deployment: net.deploymentFile,
        redisUrl: net.redis.url,
        dataDir: path.join(net.work, "oracle"),
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
  const gateway = await net.startGateway({
    heartbeats: { max_age_ms: 3_000, max_future_ms: 2_000 },
    // A simplenet node's model server runs one inference at a time, so one call in flight is a full
    // node: the four callers spread over all three nodes instead of piling on the one with the best
    // latency average (a node whose first answers were slow would otherwise get no call to prove
    // itself, and so none to drop when it is killed).
    routing: {
      forward_timeout_ms: 2_000,
      max_attempts: 3,
      down_cooldown_ms: 5_000,
      node_refresh_ms: 200,
      node_capacity: 1,
    },
  });
  // node-b runs simplenet in a locked-down container where a Docker engine can be started (a
  // private dockerd, or DOCKER_HOST); elsewhere all three use the process runtime.
  const docker =
    hasDockerd() || process.env.DOCKER_HOST?.startsWith("unix://") === true ? await startDockerEngine() : undefined;
  if (docker !== undefined) cleanups.push(() => docker.stop());
  const labels = new Map<string, string>();
  const runtimes = new Map<string, string>();
  const agents: RunningAgent[] = [];
  for (const [i, name] of ["node-a", "node-b", "node-c"].entries()) {
    const operator = await net.addOperator(10_000n);
    labels.set(operator.account.address, name);
    const runtime = i === 1 && docker !== undefined ? "docker" : "process";
    runtimes.set(operator.account.address, runtime);
    agents.push(
      await net.startAgent(operator, {
        child: i === 2,
        oracles: [oracle.url],
        gateway: gateway.url,
        runtime,
        ...(runtime === "docker" ? { env: { DOCKER_HOST: docker!.host } } : {}),
      }),
    );
  }
  const [nodeA, , nodeC] = agents as [RunningAgent, RunningAgent, RunningAgent];
  console.log(`  oracle ${oracle.url}, gateway ${gateway.url}`);
  for (const agent of agents) {
    const address = agent.operator.account.address;
    console.log(`  ${labels.get(address)} ${address} at ${agent.url} (${runtimes.get(address)} runtime)`);
  }
  if (docker === undefined) console.log("  (no Docker engine here: node-b uses the process runtime too)");
  await waitFor("the gateway to see the three nodes' heartbeats", async () => {
    const nodes = await gateway.refreshNodes();
    return nodes.length === 3 ? true : undefined;
  });

  // A delegator shares node-a's rewards; the client funds its escrow.
  const delegator = privateKeyToAccount(`0x${randomBytes(32).toString("hex")}`);
  const client = privateKeyToAccount(`0x${randomBytes(32).toString("hex")}`);
  for (const account of [delegator, client]) {
    await rpc(net.chain.rpcUrl, "hardhat_setBalance", [account.address, "0x3635C9ADC5DEA00000"]);
    await transferStakeToken(net.staking, net.deployer, account.address, 1_000n * TOKEN);
  }
  labels.set(delegator.address, "delegator");
  labels.set(client.address, "client");
  await stake(net.staking, net.wallet(delegator), nodeA.operator.account.address, 1_000n * TOKEN);
  const delegatorBefore = (await readStakerPosition(net.staking, nodeA.operator.account.address, delegator.address))
    .activeStake;
  const escrow = {
    publicClient,
    paymentEscrow: record.contracts.paymentEscrow.address,
    paymentToken: record.contracts.stakeToken.address,
  };
  await deposit(escrow, net.wallet(client), 1n * TOKEN);
  console.log(
    `  delegator staked 1,000 INFRA on node-a; client deposited 1 INFRA (a call costs ${SIMPLENET_PRICE} wei)`,
  );

  say(`Client: ${CALLS} signed calls through the gateway; node-c is SIGKILLed after call ${KILL_AT}`);
  const answeredBy: Record<string, number> = {};
  const failed: string[] = [];
  let next = 0;
  let killed = false;
  const worker = async () => {
    while (next < CALLS) {
      const n = next++;
      if (n === KILL_AT && !killed) {
        killed = true;
        nodeC.kill();
        console.log(`  call ${n}: node-c killed (SIGKILL to its process group)`);
      }
      const input = encodeInferInput(Array.from({ length: 16 }, (_, i) => Math.sin(n + i)));
      const body = await net.signedCall(client, input);
      const response = await fetch(`${gateway.url}/inference/v1/model/simplenet`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const json = (await response.json()) as { node_id?: string; error?: string; reason?: string };
      if (response.status !== 200 || json.node_id === undefined) {
        failed.push(`call ${n}: ${response.status} ${json.error}: ${json.reason}`);
        continue;
      }
      const label = labels.get(json.node_id) ?? json.node_id;
      answeredBy[label] = (answeredBy[label] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const answered = CALLS - failed.length;
  console.log(
    `  ${answered} of ${CALLS} answered: ` +
      Object.entries(answeredBy)
        .sort()
        .map(([node, count]) => `${node} ${count}`)
        .join(", "),
  );
  if (failed.length > 0) throw new Error(`calls failed:\n${failed.join("\n")}`);

  say("node-c restarts: its outbox delivers the receipts it held when it was killed");
  await nodeC.restart?.();
  const verified = await waitFor(`the oracle to verify ${answered} receipts`, async () => {
    const stats = await getJson<{ receipts: Record<string, number> }>(`${oracle.url}/v1/stats`);
    const done = (stats.receipts.verified ?? 0) + (stats.receipts.rejected ?? 0);
    return done >= answered ? stats.receipts : undefined;
  });
  console.log(`  oracle: ${JSON.stringify(verified)}`);

  say("Keeper: closes an epoch every second, finalises what it closed, and watches the gateway's SLA records");
  const epoch = {
    epoch: String(
      await publicClient.readContract({
        address: record.contracts.epochSettlement.address,
        abi: epochSettlementAbi,
        functionName: "nextEpoch",
      }),
    ),
  };
  const keeper = await startKeeper(
    keeperConfig({
      INFRAMESH_NETWORK: "localhost",
      INFRAMESH_DEPLOYMENTS_DIR: path.dirname(net.deploymentFile),
      INFRAMESH_RPC_URL: net.chain.rpcUrl,
      INFRAMESH_DATA_DIR: path.join(net.work, "keeper"),
      INFRAMESH_CONFIRMATIONS: "0",
      INFRAMESH_INDEXER_POLL_MS: "500",
      REDIS_URL: net.redis.url,
      // The deployer holds SLASHER_ROLE (deploy parameter `slasher`, default the deployer).
      INFRAMESH_KEEPER_KEY: DEPLOYER_KEY,
      INFRAMESH_KEEPER_PORT: "0",
      INFRAMESH_KEEPER_FINALISE_EVERY_MS: "500",
      INFRAMESH_KEEPER_BACKOFF_MS: "200",
      INFRAMESH_KEEPER_LOCK_MS: "10000",
      INFRAMESH_KEEPER_EPOCH_MS: String(KEEPER_EPOCH_MS),
      INFRAMESH_KEEPER_ORACLE_URLS: oracle.url,
      INFRAMESH_KEEPER_ORACLE_ADMIN_TOKEN: ADMIN_TOKEN,
      INFRAMESH_KEEPER_SLA_EVERY_MS: "500",
      INFRAMESH_KEEPER_GATEWAY_PREFIX: net.gatewayPrefix,
      INFRAMESH_KEEPER_BLOB_PEER_URL: net.blobPeerUrl,
      INFRAMESH_KEEPER_SLASH_BPS: String(SLA_SLASH_BPS),
      INFRAMESH_KEEPER_INCIDENT_WINDOW_MS: "2000",
      INFRAMESH_KEEPER_SLA_GRACE_MS: "1000",
    }),
    pino({ level: "silent" }),
  );
  cleanups.push(() => keeper.stop());
  console.log(`  keeper ${keeper.url}: epoch period ${KEEPER_EPOCH_MS} ms, SLA scan every 500 ms`);
  await waitFor("the keeper's close to be posted", async () => {
    const row = await getJson<{ state: string }>(`${oracle.url}/v1/epochs/${epoch.epoch}`);
    return ["posted", "final", "funded"].includes(row.state) ? true : undefined;
  });
  console.log(`  epoch ${epoch.epoch} closed by the keeper and posted by the oracle; the challenge window passes`);
  await rpc(net.chain.rpcUrl, "evm_increaseTime", [Number(record.parameters.challengeWindow ?? 86_400) + 1]);
  await rpc(net.chain.rpcUrl, "evm_mine", []);
  const funded = await waitFor("the settlement to be final and funded", async () => {
    const row = await getJson<{
      state: string;
      tx_hash: Hex;
      settlement: Record<string, string>;
    }>(`${oracle.url}/v1/epochs/${epoch.epoch}`);
    return row.state === "funded" ? row : undefined;
  });
  const s = funded.settlement;
  console.log(
    `  epoch ${epoch.epoch}: ${s.receiptCount} receipts, debits ${s.totalDebits} wei, protocol fees ${s.fees}, ` +
      `royalties ${s.royalties}, batch sha256 ${s.batchSha256}, posted in ${funded.tx_hash}`,
  );

  const claims: string[][] = [];
  let claimGas = 0n;
  for (const agent of agents) {
    const account = agent.operator.account.address;
    const claim = await getJson<{ cumulative_amount: string; proof: Hex[] }>(
      `${oracle.url}/v1/epochs/${epoch.epoch}/claims/${account}`,
    );
    const wallet = net.wallet(agent.operator.account);
    const hash = await wallet.writeContract({
      address: record.contracts.rewardClaims.address,
      abi: rewardClaimsAbi,
      functionName: "claim",
      args: [account, BigInt(claim.cumulative_amount), claim.proof],
    });
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new Error(`claim of ${account} reverted`);
    claimGas += receipt.gasUsed;
    const [paid] = parseEventLogs({ abi: nodeStakingAbi, eventName: "EarningsPaid", logs: receipt.logs });
    claims.push([
      labels.get(account) ?? account,
      claim.cumulative_amount,
      String(paid?.args.commissionAccrued ?? 0n),
      String(paid?.args.toStakers ?? 0n),
      receipt.gasUsed.toLocaleString("en-US"),
    ]);
  }
  const delegatorAfter = (await readStakerPosition(net.staking, nodeA.operator.account.address, delegator.address))
    .activeStake;
  console.log(
    `\n${formatSection(
      "Claims (wei of INFRA; the commission accrues to the operator in staking, the rest joins the staking pool)",
      formatTable(
        [
          { header: "node" },
          { header: "cumulative earnings", align: "right" },
          { header: "commission accrued", align: "right" },
          { header: "to stakers", align: "right" },
          { header: "claim gas", align: "right" },
        ],
        claims,
      ),
    )}`,
  );
  console.log(
    `  delegator's stake on node-a: ${amount(delegatorBefore)} → ${amount(delegatorAfter)} INFRA ` +
      `(+${delegatorAfter - delegatorBefore} wei from node-a's claim)`,
  );

  say("SLA violation: node-c dropped jobs when it was killed; the keeper publishes the evidence and slashes");
  const nodeCAddress = nodeC.operator.account.address as Address;
  const slashLog = await waitFor("the keeper's slash of node-c", async () => {
    const logs = await publicClient.getContractEvents({
      address: record.contracts.nodeStaking.address,
      abi: slashedEventAbi,
      eventName: "Slashed",
      args: { node: nodeCAddress },
      fromBlock: 0n,
    });
    return logs[0];
  });
  const { amount: slashAmount, evidenceHash } = slashLog.args as { amount: bigint; evidenceHash: Hex };
  const evidence = await fetch(`${net.blobPeerUrl}/blob/${evidenceHash.slice(2)}`);
  if (evidence.status !== 200) throw new Error(`the slash evidence ${evidenceHash} is not in the blob store`);
  const evidenceBytes = new Uint8Array(await evidence.arrayBuffer());
  if (sha256(evidenceBytes) !== evidenceHash)
    throw new Error(`the published evidence does not hash to ${evidenceHash}`);
  const document = JSON.parse(new TextDecoder().decode(evidenceBytes)) as {
    attempts: Array<{ violation: string }>;
  };
  const kinds = document.attempts.map((a) => a.violation).join(", ");
  console.log(
    `  the keeper slashed node-c ${amount(slashAmount)} INFRA for evidence sha256 ${evidenceHash} ` +
      `(published to the blob store: ${document.attempts.length} unanswered call(s) in one incident: ${kinds}), ` +
      `tx ${slashLog.transactionHash}`,
  );

  // The keeper stops first, so the auditor reads a chain nobody is writing to.
  await keeper.stop();
  const audit = await runAuditStep(say, net, oracle.url);
  console.log(
    `\nNetwork summary: ${CALLS} calls, ${answered} answered (failover past the killed node), ` +
      `${verified.verified ?? 0} receipts verified and settled in epoch ${epoch.epoch}, ` +
      `${agents.length} claims (${claimGas.toLocaleString("en-US")} gas), 1 slash; ${audit.verdict}.`,
  );
  return {
    calls: CALLS,
    answered,
    answeredBy,
    receiptsVerified: verified.verified ?? 0,
    settledEpoch: epoch.epoch,
    audit: audit.verdict,
  };
}

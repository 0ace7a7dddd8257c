// `npm run demo`: Inframesh staking and model publishing end to end on a throwaway local chain.
//
// Starts `hardhat node` on a free port, deploys with `npx hardhat deploy --network localhost`,
// then three operators register and self-stake, delegators stake on them, one delegator
// partially unbonds, the slasher slashes a node for published evidence and releases the
// slashed stake. Prints the nodes, the stakers and every NodeStaking event, checks that the
// tokens are conserved. Then a publisher shards a model 10+4, uploads it to three blob-store
// peers, registers it and sets its serving version, and a fresh loader rebuilds it with 4
// shards lost (scripts/lib/model-demo.ts). Then a client pays for jobs of that model and the
// deployer, as the oracle committee, settles the epoch and everyone claims
// (scripts/lib/settlement-demo.ts). Last, the inference network on a fresh chain: the oracle, a
// gateway and three node agents serving simplenet; 100 calls with a node killed midway, the epoch
// closed by the keeper and settled by the oracle, claims, the keeper's SLA slash, and
// `infra audit --all` passing (scripts/lib/network-demo.ts). Then zkML on a network of its own:
// proven calls verified and paid, a bad proof refused, a challenge answered and one slashed, and
// the audit again (scripts/lib/zk-demo.ts). Stops every process and the chains (also on error
// and Ctrl-C).
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import {
  createPublicClient,
  createWalletClient,
  defineChain,
  formatUnits,
  http,
  type Address,
  type Hex,
  type PublicClient,
} from "viem";

import { parseDeploymentRecord, type DeploymentRecord } from "../sdk/deployment.ts";
import {
  DEFAULT_ADMIN_ROLE,
  PAUSER_ROLE,
  REWARDER_ROLE,
  SLASHER_ROLE,
  evidenceHash,
  readEvents,
  readNodeStatus,
  readStakerPosition,
  readTokenBalance,
  registerNode,
  releaseSlashedStake,
  slash,
  stake,
  transferStakeToken,
  unbond,
  type ChainEvent,
  type StakingContracts,
  type StakingWallet,
} from "../sdk/staking.ts";
import { readModel } from "../sdk/models.ts";
import { runModelScenario } from "./lib/model-demo.ts";
import { runNetworkScenario } from "./lib/network-demo.ts";
import { runSettlementScenario } from "./lib/settlement-demo.ts";
import { runZkScenario } from "./lib/zk-demo.ts";
import { PROJECT_ROOT, killAllChildren, runHardhat, startHardhatNode, type LocalChain } from "./lib/local-chain.ts";
import { formatSection, formatTable } from "./lib/table.ts";

const DEPLOYMENT_ID = "local-demo";
const INFRA = 10n ** 18n;
const BURN_ADDRESS: Address = "0x000000000000000000000000000000000000dEaD";

/** The demo could not complete. */
class DemoError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "DemoError";
  }
}

// ------------------------------------------------------------------ the cast

interface NodeSpec {
  label: string;
  registration: { endpoint: string; hardware: Record<string, unknown>; commissionBps: number };
  selfStake: bigint;
}

const NODES: readonly NodeSpec[] = [
  {
    label: "node-a",
    registration: {
      endpoint: "https://node-a.example.net/v1",
      hardware: { cpu: "32 vCPU", memoryGiB: 128, gpus: [{ model: "L4", memoryGiB: 24, count: 2 }] },
      commissionBps: 500,
    },
    selfStake: 20_000n * INFRA,
  },
  {
    label: "node-b",
    registration: {
      endpoint: "https://node-b.example.net/v1",
      hardware: { cpu: "64 vCPU", memoryGiB: 512, gpus: [{ model: "H100", memoryGiB: 80, count: 8 }] },
      commissionBps: 1_000,
    },
    selfStake: 60_000n * INFRA,
  },
  {
    label: "node-c",
    registration: {
      endpoint: "https://node-c.example.net/v1",
      hardware: { cpu: "16 vCPU", memoryGiB: 64, gpus: [] },
      commissionBps: 1_500,
    },
    selfStake: 12_000n * INFRA,
  },
];

/** [delegator index, node index, amount] */
const DELEGATIONS: readonly [number, number, bigint][] = [
  [0, 0, 100_000n * INFRA],
  [0, 1, 40_000n * INFRA],
  [1, 1, 200_000n * INFRA],
  [2, 2, 30_000n * INFRA],
];
const DELEGATOR_FUNDS = 250_000n * INFRA;
const UNBOND = { delegator: 0, node: 0, amount: 25_000n * INFRA };
const SLASHED_NODE = 0;
const SLASH_AMOUNT = 6_000n * INFRA;

// ------------------------------------------------------------------ formatting

function formatInfra(value: bigint): string {
  const hundredths = (value + 5n * 10n ** 15n) / 10n ** 16n; // round to 0.01
  const whole = (hundredths / 100n).toLocaleString("en-US");
  return `${whole}.${(hundredths % 100n).toString().padStart(2, "0")}`;
}

function formatBps(bps: number): string {
  return `${(bps / 100).toFixed(2)}%`;
}

function shortHex(hex: string): string {
  return `${hex.slice(0, 10)}…${hex.slice(-4)}`;
}

class Labels {
  readonly #names = new Map<string, string>();
  set(address: string, name: string): void {
    this.#names.set(address.toLowerCase(), name);
  }
  of(address: string): string {
    return this.#names.get(address.toLowerCase()) ?? shortHex(address);
  }
}

const ROLE_NAMES = new Map<string, string>([
  [DEFAULT_ADMIN_ROLE, "DEFAULT_ADMIN_ROLE"],
  [SLASHER_ROLE, "SLASHER_ROLE"],
  [PAUSER_ROLE, "PAUSER_ROLE"],
  [REWARDER_ROLE, "REWARDER_ROLE"],
]);
const TOKEN_FIELDS = new Set(["amount", "fromActive", "fromUnbonding", "burned", "redistributed", "minSelfStake"]);
const TIME_FIELDS = new Set(["withdrawableAt", "jailedUntil"]);
const HIDDEN_FIELDS = new Set(["shares", "activeShares", "unbondingShares"]);

function formatArg(name: string, value: unknown, labels: Labels, now: bigint): string {
  if (typeof value === "string" && /^0x[0-9a-fA-F]{40}$/.test(value)) return labels.of(value);
  if (typeof value === "string" && /^0x[0-9a-fA-F]{64}$/.test(value)) return ROLE_NAMES.get(value) ?? shortHex(value);
  if (typeof value === "bigint" && TOKEN_FIELDS.has(name)) return formatInfra(value);
  if (typeof value === "bigint" && TIME_FIELDS.has(name)) return `now+${formatDuration(value - now)}`;
  if (Array.isArray(value)) return `[${value.map((v) => formatArg(name, v, labels, now)).join(", ")}]`;
  if (typeof value === "object" && value !== null) {
    return Object.entries(value)
      .map(([k, v]) => `${k}=${formatArg(k, v, labels, now)}`)
      .join(" ");
  }
  return String(value);
}

function formatDuration(seconds: bigint): string {
  const s = Number(seconds);
  if (Math.abs(s) >= 86_400) return `${(s / 86_400).toFixed(1)}d`;
  if (Math.abs(s) >= 3_600) return `${(s / 3_600).toFixed(1)}h`;
  return `${s}s`;
}

function formatEvent(event: ChainEvent, labels: Labels, now: bigint): string[] {
  const details = Object.entries(event.args)
    .filter(([name]) => !HIDDEN_FIELDS.has(name) && !/^\d+$/.test(name))
    .map(([name, value]) => {
      const pretty =
        name === "tierThresholds" || name === "thresholds"
          ? `[${(value as bigint[]).map(formatInfra).join(", ")}]`
          : name === "parameters"
            ? formatParameters(value as Record<string, bigint | number>)
            : formatArg(name, value, labels, now);
      return `${name}=${pretty}`;
    })
    .join(" ");
  return [event.blockNumber.toString(), `${event.logIndex}`, event.eventName, details];
}

function formatParameters(p: Record<string, bigint | number>): string {
  const get = (k: string): bigint => BigInt(p[k] ?? 0);
  return [
    `minSelfStake=${formatInfra(get("minSelfStake"))}`,
    `unbondingPeriod=${formatDuration(get("unbondingPeriod"))}`,
    `jailPeriod=${formatDuration(get("jailPeriod"))}`,
    `maxSlashBps=${get("maxSlashBps")}`,
    `burnBps=${get("burnBps")}`,
  ].join(" ");
}

// ------------------------------------------------------------------ the scenario

function say(text: string): void {
  console.log(`\n> ${text}`);
}

async function runScenario(
  record: DeploymentRecord,
  rpcUrl: string,
  workDir: string,
  cleanups: (() => Promise<unknown>)[],
): Promise<void> {
  const chain = defineChain({
    id: record.chainId,
    name: "Local Hardhat node",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
  const transport = http(rpcUrl);
  const publicClient = createPublicClient({ chain, transport }) as PublicClient;
  // The node's unlocked dev accounts: #0 deployed (token holder, slasher), then operators, delegators.
  const accounts = await createWalletClient({ chain, transport }).getAddresses();
  const wallet = (index: number): StakingWallet => {
    const account = accounts[index];
    if (account === undefined) throw new DemoError(`the node has no account #${index}`);
    return createWalletClient({ account, chain, transport });
  };
  const contracts: StakingContracts = {
    publicClient,
    nodeStaking: record.contracts.nodeStaking.address,
    stakeToken: record.contracts.stakeToken.address,
  };

  const deployer = wallet(0);
  const operators = NODES.map((_, i) => wallet(1 + i));
  const delegators = [0, 1, 2].map((i) => wallet(1 + NODES.length + i));
  const labels = new Labels();
  labels.set(record.deployer, "deployer");
  labels.set(record.contracts.timelock.address, "timelock");
  labels.set(record.contracts.nodeStaking.address, "NodeStaking");
  labels.set(record.contracts.rewardClaims.address, "RewardClaims");
  labels.set(BURN_ADDRESS, "burn");
  NODES.forEach((node, i) => labels.set(operators[i]!.account.address, node.label));
  delegators.forEach((d, i) => labels.set(d.account.address, `delegator-${i + 1}`));
  const nodeAddress = (i: number): Address => operators[i]!.account.address;

  say("The deployer (token holder) funds three operators and three delegators");
  for (const [i, node] of NODES.entries()) {
    await transferStakeToken(contracts, deployer, nodeAddress(i), node.selfStake);
  }
  for (const delegator of delegators) {
    await transferStakeToken(contracts, deployer, delegator.account.address, DELEGATOR_FUNDS);
  }

  say("Operators register their nodes (endpoint, sha256 of the hardware description, commission)");
  for (const [i, node] of NODES.entries()) {
    const hardwareSpecHash = evidenceHash(new TextEncoder().encode(JSON.stringify(node.registration.hardware)));
    await registerNode(contracts, operators[i]!, {
      endpoint: node.registration.endpoint,
      hardwareSpecHash,
      commissionBps: node.registration.commissionBps,
    });
    console.log(`  ${node.label}  ${node.registration.endpoint}  hardware ${shortHex(hardwareSpecHash)}`);
  }

  say("Operators self-stake");
  for (const [i, node] of NODES.entries()) {
    const receipt = await stake(contracts, operators[i]!, nodeAddress(i), node.selfStake);
    console.log(`  ${node.label} stakes ${formatInfra(node.selfStake)} INFRA on itself (gas ${receipt.gasUsed})`);
  }

  say("Delegators stake on nodes");
  for (const [d, n, amount] of DELEGATIONS) {
    const receipt = await stake(contracts, delegators[d]!, nodeAddress(n), amount);
    console.log(
      `  delegator-${d + 1} stakes ${formatInfra(amount)} INFRA on ${NODES[n]!.label} (gas ${receipt.gasUsed})`,
    );
  }

  say(`delegator-${UNBOND.delegator + 1} unbonds part of its stake on ${NODES[UNBOND.node]!.label}`);
  const lock = await unbond(contracts, delegators[UNBOND.delegator]!, nodeAddress(UNBOND.node), UNBOND.amount);
  const nowAfterUnbond = (await publicClient.getBlock()).timestamp;
  console.log(
    `  ${formatInfra(UNBOND.amount)} INFRA into lock #${lock.lockId}, withdrawable at now+` +
      `${formatDuration(lock.withdrawableAt - nowAfterUnbond)} (still slashable until then)`,
  );

  const slashed = nodeAddress(SLASHED_NODE);
  say(`The slasher slashes ${NODES[SLASHED_NODE]!.label} for a missed SLA, citing published evidence`);
  const evidenceDocument = JSON.stringify(
    {
      kind: "missed-sla",
      node: slashed,
      epoch: 1,
      window: { from: "2025-01-06T00:00:00Z", to: "2025-01-06T01:00:00Z" },
      sla: { maxLatencyMs: 2_000, minSuccessRate: 0.99 },
      observed: { jobs: 412, failed: 37, p99LatencyMs: 9_840, successRate: 0.9102 },
      reporter: deployer.account.address,
    },
    null,
    2,
  );
  const evidenceBytes = new TextEncoder().encode(evidenceDocument);
  const evidence: Hex = evidenceHash(evidenceBytes);
  console.log(evidenceDocument.replace(/^/gm, "  "));
  console.log(`  evidence sha256 ${evidence}`);
  await slash(contracts, deployer, slashed, SLASH_AMOUNT, evidence);
  console.log(`  slashed ${formatInfra(SLASH_AMOUNT)} INFRA from ${NODES[SLASHED_NODE]!.label}, which is now jailed`);

  say("Anyone releases the slashed stake: part burned, the rest to RewardClaims for redistribution");
  await releaseSlashedStake(contracts, deployer);

  await printTables(record, contracts, labels, operators, delegators);

  // The next dev account after the delegators publishes the model.
  const publisher = wallet(1 + NODES.length + delegators.length);
  const modelContracts = { publicClient, modelRegistry: record.contracts.modelRegistry.address };
  await runModelScenario(modelContracts, publisher, path.join(workDir, "models"), cleanups);

  // Settlement: a client pays for jobs of that model, served by the nodes that are not jailed.
  const model = await readModel(modelContracts, 1n);
  if (model.serving === undefined) throw new DemoError("the model step left no serving version");
  const client = wallet(2 + NODES.length + delegators.length);
  labels.set(client.account.address, "client");
  labels.set(publisher.account.address, "publisher");
  await runSettlementScenario(
    publicClient,
    record,
    {
      oracle: deployer,
      client,
      nodes: NODES.map((node, i) => ({ label: node.label, wallet: operators[i]! })).filter(
        (_, i) => i !== SLASHED_NODE,
      ),
      model: {
        modelId: model.modelId,
        version: model.serving.version,
        price: model.serving.record.price,
        publisher: model.publisher,
      },
    },
    (address) => labels.of(address),
  );
}

async function printTables(
  record: DeploymentRecord,
  contracts: StakingContracts,
  labels: Labels,
  operators: StakingWallet[],
  delegators: StakingWallet[],
): Promise<void> {
  const now = (await contracts.publicClient.getBlock()).timestamp;
  const nodes = await Promise.all(operators.map((o) => readNodeStatus(contracts, o.account.address)));

  const nodeRows = nodes.map((n) => [
    labels.of(n.node),
    n.endpoint,
    formatBps(n.commissionBps),
    formatInfra(n.selfStake),
    formatInfra(n.delegated),
    formatInfra(n.activeStake),
    formatInfra(n.unbondingStake),
    String(n.tier),
    n.eligible ? "yes" : "no",
    n.jailed ? `jailed (now+${formatDuration(n.jailedUntil - now)})` : "active",
  ]);
  console.log(
    `\n${formatSection(
      "Nodes (INFRA)",
      formatTable(
        [
          { header: "node" },
          { header: "endpoint" },
          { header: "commission", align: "right" },
          { header: "self-stake", align: "right" },
          { header: "delegated", align: "right" },
          { header: "active", align: "right" },
          { header: "unbonding", align: "right" },
          { header: "tier", align: "right" },
          { header: "eligible" },
          { header: "status" },
        ],
        nodeRows,
      ),
    )}`,
  );

  const stakers = [...operators, ...delegators];
  const stakerRows: string[][] = [];
  for (const staker of stakers) {
    const address = staker.account.address;
    const balance = await readTokenBalance(contracts, address);
    for (const node of nodes) {
      const position = await readStakerPosition(contracts, node.node, address);
      if (position.activeStake === 0n && position.locks.length === 0) continue;
      const locks = position.locks
        .map((l) => `#${l.lockId} ${formatInfra(l.value)} at now+${formatDuration(l.withdrawableAt - now)}`)
        .join("; ");
      stakerRows.push([
        labels.of(address),
        labels.of(node.node),
        formatInfra(position.activeStake),
        locks === "" ? "-" : locks,
        formatInfra(balance),
      ]);
    }
  }
  console.log(
    `\n${formatSection(
      "Stakers (INFRA)",
      formatTable(
        [
          { header: "staker" },
          { header: "node" },
          { header: "active stake", align: "right" },
          { header: "unbonding locks" },
          { header: "wallet", align: "right" },
        ],
        stakerRows,
      ),
    )}`,
  );

  const nodeStaking = record.contracts.nodeStaking;
  const events = await readEvents(
    contracts.publicClient,
    nodeStaking.address,
    nodeStaking.abi,
    BigInt(nodeStaking.deployBlock ?? 0),
  );
  console.log(
    `\n${formatSection(
      `Events of NodeStaking since its deploy block ${nodeStaking.deployBlock} (amounts in INFRA, share counts omitted)`,
      formatTable(
        [
          { header: "block", align: "right" },
          { header: "log", align: "right" },
          { header: "event" },
          { header: "details" },
        ],
        events.map((e) => formatEvent(e, labels, now)),
      ),
    )}`,
  );

  // Invariant: NodeStaking holds exactly the pools plus what it still owes from slashes (none after release).
  const held = await readTokenBalance(contracts, contracts.nodeStaking);
  const pooled = nodes.reduce((sum, n) => sum + n.activeStake + n.unbondingStake, 0n);
  const burned = await readTokenBalance(contracts, BURN_ADDRESS);
  console.log(
    `\nTokens conserved: NodeStaking holds ${formatInfra(held)} INFRA = active + unbonding pools ` +
      `${formatInfra(pooled)} INFRA; burned so far ${formatInfra(burned)} INFRA`,
  );
  if (held !== pooled) throw new DemoError(`token accounting broken: holds ${held}, pools ${pooled}`);
}

// ------------------------------------------------------------------ lifecycle

async function deploy(chain: LocalChain, outDir: string): Promise<DeploymentRecord> {
  const result = await runHardhat(["deploy", "--network", "localhost"], {
    env: {
      ...process.env,
      INFRAMESH_RPC_URL: chain.rpcUrl,
      INFRAMESH_DEPLOYMENT_ID: DEPLOYMENT_ID,
      INFRAMESH_DEPLOYMENTS_DIR: outDir,
    },
  });
  if (result.code !== 0) throw new DemoError(`npx hardhat deploy --network localhost failed:\n${result.output}`);
  const summary = result.output.slice(Math.max(0, result.output.indexOf("Inframesh on")));
  console.log(summary.trimEnd().replace(/^/gm, "  "));
  const file = path.join(outDir, "localhost.json");
  return parseDeploymentRecord(JSON.parse(await readFile(file, "utf8")));
}

async function main(): Promise<void> {
  const cleanups: (() => Promise<unknown>)[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanUp = (): Promise<void> =>
    (cleaning ??= (async () => {
      for (const step of cleanups.reverse()) await step().catch(() => undefined);
    })());
  const onSignal = (signal: NodeJS.Signals, code: number) => {
    console.error(`\n${signal}: stopping the local chain`);
    killAllChildren(); // the node and a deploy in flight, before their files are removed
    void cleanUp().finally(() => process.exit(code));
  };
  process.once("SIGINT", () => onSignal("SIGINT", 130));
  process.once("SIGTERM", () => onSignal("SIGTERM", 143));
  process.once("SIGHUP", () => onSignal("SIGHUP", 129));

  try {
    say("Starting a local chain: hardhat node on a free port");
    const chain = await startHardhatNode();
    cleanups.push(() => chain.stop());
    console.log(`  ${chain.rpcUrl} (chain ${chain.chainId}), process group ${chain.node.pid}`);

    const outDir = await mkdtemp(path.join(tmpdir(), "inframesh-demo-"));
    cleanups.push(() => rm(outDir, { recursive: true, force: true }));
    cleanups.push(() =>
      rm(path.join(PROJECT_ROOT, "ignition", "deployments", DEPLOYMENT_ID), { recursive: true, force: true }),
    );

    say("Deploying: npx hardhat deploy --network localhost");
    const record = await deploy(chain, outDir);
    await runScenario(record, chain.rpcUrl, outDir, cleanups);
    // The staking/model/settlement chain is done with: stop it before the network starts its own.
    await chain.stop();
    await runNetworkScenario(say, cleanups);
    await runZkScenario(say, cleanups);
    console.log("\nDemo finished.");
  } finally {
    await cleanUp();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`\nDemo failed: ${message}`);
    if (error instanceof Error && error.cause !== undefined) console.error("Cause:", error.cause);
    process.exit(1);
  },
);

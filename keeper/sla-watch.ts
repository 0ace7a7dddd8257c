// The SLA watch: every INFRAMESH_KEEPER_SLA_EVERY_MS it reads the attempt records and quorum-dissent
// evidence the gateways keep in their shared Redis, turns each settled incident (one node, its
// unanswered attempts within one window; a node whose heartbeat stopped while it holds jobs counts
// at once, with its last signed heartbeat in the evidence) and each dissent into an evidence
// document, and queues one slash job per document, its id derived from the document's sha256. The
// slash job checks the chain first (NodeStaking.evidenceUsed), publishes the document to the blob
// store, then sends slash(node, amount, sha256): a repeated trigger, a Redis restart, an RPC outage
// or a crash between sending and recording all end with one slash per violation.
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { Redis } from "ioredis";
import { Counter } from "prom-client";
import { getAddress, type Address, type Hash, type Hex } from "viem";

import { ATTEMPT_TTL_MS, NodeStateStore, type SignedWorkUnitRecord } from "../gateway/node-state.ts";
import { putBlob } from "../sdk/blob/upload.ts";
import { describeRevert } from "../sdk/staking.ts";
import { CRASH_AFTER_SEND_FOR_TESTS, KeeperJobError, type KeeperContext, type KeeperJobGroup } from "./context.ts";
import {
  dissentEvidenceDocument,
  nodeStakingSlashAbi,
  settledIncidents,
  silentNodes,
  slaEvidence,
  slaViolations,
  slashAmount,
  slashJobId,
  violationId,
  type Evidence,
} from "./sla.ts";

/** What a slash job carries: the evidence's canonical text and what it covers. */
interface SlashJobData {
  [key: string]: unknown;
  kind: Evidence["kind"];
  node: Address;
  sha256: Hex;
  text: string;
  /** The attempts an SLA incident covers (none for a dissent). */
  attempts: Array<{ id: string; sentAt: number }>;
}

export function slaJobs(ctx: KeeperContext): KeeperJobGroup {
  const { config, chainId, publicClient, logger, db } = ctx;
  const nodeStaking = ctx.record.contracts.nodeStaking.address;
  const network = { chainId, nodeStaking };
  const slashes = new Counter({
    name: "inframesh_keeper_slashes_total",
    help: "slash transactions this keeper sent, by evidence kind",
    labelNames: ["kind"],
    registers: [ctx.registry],
  });
  const violationsSeen = new Counter({
    name: "inframesh_keeper_sla_incidents_total",
    help: "Settled SLA incidents and quorum dissents queued for a slash (repeats of one collapse into its job)",
    labelNames: ["kind"],
    registers: [ctx.registry],
  });
  let gatewayRedis: Redis | undefined;
  let store: NodeStateStore | undefined;
  const gatewayStore = (): NodeStateStore => {
    if (store === undefined) {
      gatewayRedis = new Redis(config.gatewayRedisUrl ?? config.redisUrl ?? "", { maxRetriesPerRequest: 2 });
      gatewayRedis.on("error", (error) => logger.warn({ err: error.message }, "gateway redis error"));
      store = new NodeStateStore(gatewayRedis, config.gatewayPrefix);
    }
    return store;
  };

  async function queueSlash(evidence: Evidence, attempts: SlashJobData["attempts"]): Promise<void> {
    const data: SlashJobData = {
      kind: evidence.kind,
      node: evidence.node,
      sha256: evidence.sha256,
      text: new TextDecoder().decode(evidence.bytes),
      attempts,
    };
    await ctx.queue.add("slash", data, { ...ctx.jobOptions, jobId: slashJobId(chainId, evidence.sha256) });
  }

  async function scan(): Promise<string> {
    const s = gatewayStore();
    const now = Date.now();
    const since = now - ATTEMPT_TTL_MS;
    // Nodes holding jobs whose heartbeat is lost: their open attempts count now, not at their deadline.
    const holders = await s.openAttemptHolders();
    const heartbeats = { last: await s.lastHeartbeats(holders), lossMs: config.heartbeatLossMs };
    const attempts = await s.attemptsToCheck(now - config.slaGraceMs, silentNodes(heartbeats, now));
    const violations = slaViolations(attempts, now, config.slaGraceMs, heartbeats);
    const covered = await db.query<{ attempt_id: string; node: string; sent_at: string }>(
      "select attempt_id, node, sent_at from sla_slashed_attempts where chain_id = $1 and sent_at > $2",
      [chainId, since],
    );
    const consumed = new Set(covered.map((row) => row.attempt_id));
    const slashedThrough = new Map<string, number>();
    for (const row of covered) {
      const node = row.node.toLowerCase();
      slashedThrough.set(node, Math.max(slashedThrough.get(node) ?? 0, Number(row.sent_at)));
    }
    const incidents = settledIncidents(violations, {
      windowMs: config.incidentWindowMs,
      graceMs: config.slaGraceMs,
      now,
      slashedThrough,
      consumed,
    });
    for (const incident of incidents) {
      const workUnits = new Map<string, SignedWorkUnitRecord>();
      for (const v of incident.violations) {
        const jobId = v.attempt.job_id.toLowerCase();
        if (workUnits.has(jobId)) continue;
        const signed = await s.signedWorkUnit(jobId);
        if (signed !== undefined) workUnits.set(jobId, signed);
      }
      const evidence = slaEvidence(network, incident, workUnits, config.incidentWindowMs);
      violationsSeen.inc({ kind: evidence.kind });
      await queueSlash(
        evidence,
        incident.violations.map((v) => ({ id: violationId(v.attempt), sentAt: v.attempt.sent_at })),
      );
    }
    let dissents = 0;
    for (const dissent of (await s.evidence()).values()) {
      const evidence = dissentEvidenceDocument(network, dissent);
      const done = await db.query("select 1 from keeper_actions where action_key = $1", [
        slashJobId(chainId, evidence.sha256),
      ]);
      if (done.length > 0) continue;
      dissents++;
      violationsSeen.inc({ kind: evidence.kind });
      await queueSlash(evidence, []);
    }
    return `${incidents.length} incident(s), ${dissents} dissent(s)`;
  }

  async function recordCovered(data: SlashJobData, txHash: Hash | null, detail: object): Promise<void> {
    await db.transaction(async (tx) => {
      for (const attempt of data.attempts) {
        await tx.query(
          `insert into sla_slashed_attempts (chain_id, attempt_id, node, sent_at, evidence_hash)
           values ($1, $2, $3, $4, $5) on conflict do nothing`,
          [chainId, attempt.id, data.node.toLowerCase(), attempt.sentAt, data.sha256],
        );
      }
      await tx.query(
        "insert into keeper_actions (action_key, kind, tx_hash, detail) values ($1, $2, $3, $4) on conflict (action_key) do nothing",
        [
          slashJobId(chainId, data.sha256),
          "slash",
          txHash,
          JSON.stringify({ node: data.node, evidence: data.sha256, kind: data.kind, ...detail }),
        ],
      );
    });
  }

  async function publish(data: SlashJobData): Promise<void> {
    const dir = path.join(tmpdir(), "inframesh-keeper-evidence");
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, data.sha256.slice(2));
    await writeFile(file, data.text);
    try {
      await putBlob(config.blobPeerUrl ?? "", data.sha256.slice(2), file, { timeoutMs: 30_000 });
    } catch (error) {
      throw new KeeperJobError(`evidence ${data.sha256} not published: ${(error as Error).message}`, { cause: error });
    }
  }

  async function slash(data: SlashJobData): Promise<string> {
    const digest = `0x${createHash("sha256").update(data.text).digest("hex")}`;
    if (digest !== data.sha256) throw new KeeperJobError(`slash job for ${data.sha256} carries other evidence`);
    const node = getAddress(data.node);
    const used = await publicClient.readContract({
      address: nodeStaking,
      abi: nodeStakingSlashAbi,
      functionName: "evidenceUsed",
      args: [data.sha256],
    });
    if (used) {
      // Slashed already: by this keeper before a crash, or by another slasher. Record, send nothing.
      await recordCovered(data, null, { observed: "evidence used on chain" });
      return "already slashed";
    }
    // An attempt is one violation whatever its kind, but not always one document: seen as
    // heartbeat_lost, then as no_answer after its deadline (the node came back before the first
    // slash was recorded, say an RPC outage), it is in two. Whichever slash is recorded first
    // covers it; the other sends nothing.
    for (const attempt of data.attempts) {
      const [other] = await db.query<{ evidence_hash: string }>(
        "select evidence_hash from sla_slashed_attempts where chain_id = $1 and attempt_id = $2 and evidence_hash <> $3",
        [chainId, attempt.id, data.sha256],
      );
      if (other !== undefined) return `attempt ${attempt.id} already slashed for ${other.evidence_hash}`;
    }
    const [slashable, maxSlash] = await Promise.all([
      publicClient.readContract({
        address: nodeStaking,
        abi: nodeStakingSlashAbi,
        functionName: "slashableStake",
        args: [node],
      }),
      publicClient.readContract({
        address: nodeStaking,
        abi: nodeStakingSlashAbi,
        functionName: "maxSlashOf",
        args: [node],
      }),
    ]);
    const amount = slashAmount(slashable, maxSlash, config.slashBps);
    if (amount === 0n) {
      await recordCovered(data, null, { observed: "nothing slashable" });
      return "nothing slashable";
    }
    await publish(data);
    await ctx.assertNothingPending();
    let hash: Hash;
    try {
      const { request } = await publicClient.simulateContract({
        address: nodeStaking,
        abi: nodeStakingSlashAbi,
        functionName: "slash",
        args: [node, amount, data.sha256],
        account: ctx.wallet.account,
      });
      hash = await ctx.wallet.writeContract(request);
    } catch (error) {
      throw new KeeperJobError(`slash of ${node} not sent: ${describeRevert(error) ?? (error as Error).message}`, {
        cause: error,
      });
    }
    slashes.inc({ kind: data.kind });
    logger.info({ node, amount: amount.toString(), evidence: data.sha256, kind: data.kind, tx: hash }, "slash sent");
    if (CRASH_AFTER_SEND_FOR_TESTS) process.kill(process.pid, "SIGKILL");
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new KeeperJobError(`slash transaction ${hash} reverted`);
    await recordCovered(data, hash, {
      observed: "sent",
      amount: amount.toString(),
      block: Number(receipt.blockNumber),
    });
    return `slashed ${node} ${amount} in ${hash}`;
  }

  return {
    schedulers: config.slaEveryMs === undefined ? [] : [{ id: "sla-scan", every: config.slaEveryMs }],
    handlers: {
      "sla-scan": async () => scan(),
      slash: async (job) => slash(job.data as SlashJobData),
    },
    async close() {
      gatewayRedis?.disconnect();
    },
  };
}

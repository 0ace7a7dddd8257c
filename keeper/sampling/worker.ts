// Validator sampling, the I/O part: a BullMQ queue of its own with a scheduler that reads the
// gateways' served-job stream and queues the jobs the secret picks, and a worker that re-runs
// each picked job on other qualified nodes as the keeper's own client and slashes a node whose
// signed output disagrees with two others (docs/keeper.md, "Validator sampling").
//
// Exactly one slash per mismatch: the check's job id derives from the sampled job id; every
// re-run answer is recorded in keeper_actions before it is used, so a retried check builds the
// same evidence bytes (canonical JSON of signed answers) and so the same evidence hash; the chain
// is read (evidenceUsed) before sending, and NodeStaking refuses an evidence hash twice.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { Queue, Worker, type Job } from "bullmq";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import {
  getAddress,
  parseAbi,
  sha256,
  type Address,
  type Hash,
  type Hex,
  type PublicClient,
  type TypedDataDomain,
  type WalletClient,
} from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";

import { classifyAnswer, postJson } from "../../gateway/forward.ts";
import { NodeStateStore, type ServedJob } from "../../gateway/node-state.ts";
import { putBlob } from "../../sdk/blob/upload.ts";
import type { DeploymentRecord } from "../../sdk/deployment.ts";
import {
  hashWorkUnit,
  inframeshDomain,
  payloadHash,
  recoverProofOfServingSigner,
  recoverWorkUnitSigner,
  signWorkUnit,
  type WorkUnit,
} from "../../sdk/eip712.ts";
import { proofOfServingOf, receiptJsonSchema, workUnitJson, workUnitOf } from "../../sdk/receipt.ts";
import { describeRevert } from "../../sdk/staking.ts";
import type { SqlClient } from "../indexer/db.ts";
import type { SamplingConfig } from "./config.ts";
import {
  evidenceBytes,
  isSampled,
  judge,
  sampleJobId,
  sampleScore,
  samplingEvidence,
  slashAmount,
  withoutInput,
  type SignedAnswer,
} from "./logic.ts";

export const SAMPLING_QUEUE = "inframesh-keeper-sampling";
/** Seconds the keeper's re-run work units stay valid. */
const RERUN_TTL_S = 300;
/** Stream entries read per pass, and passes per scan (the rest waits for the next scan). */
const SCAN_BATCH = 500;
const SCAN_PASSES = 20;

export const samplingStakingAbi = parseAbi([
  "function slash(address node, uint256 amount, bytes32 evidenceHash)",
  "function isEligible(address node) view returns (bool)",
  "function maxSlashOf(address node) view returns (uint256)",
  "function evidenceUsed(bytes32 evidenceHash) view returns (bool)",
  "error EvidenceAlreadyUsed(bytes32 evidenceHash)",
  "error SlashExceedsCap(uint256 amount, uint256 cap)",
  "error UnknownNode(address node)",
  "error ZeroAmount()",
  "error AccessControlUnauthorizedAccount(address account, bytes32 neededRole)",
]);

/** A check that cannot finish now (no other node, the chain or a blob peer unreachable): retried. */
export class SamplingJobError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "SamplingJobError";
  }
}

export interface SamplingDeps {
  sampling: SamplingConfig;
  chainId: number;
  record: DeploymentRecord;
  publicClient: PublicClient;
  /** The keeper's wallet (it holds SLASHER_ROLE). */
  wallet: WalletClient;
  account: PrivateKeyAccount;
  /** The keeper's BullMQ connection (maxRetriesPerRequest: null). */
  connection: Redis;
  /** The keeper's Redis URL: the gateways' too unless sampling names another. */
  redisUrl: string;
  db: SqlClient;
  registry: Registry;
  logger: Logger;
  attempts: number;
  backoffMs: number;
  lockMs: number;
}

export interface RunningSampling {
  stop(): Promise<void>;
}

/** Starts sampling; with fraction 0 it starts nothing and re-runs nothing. */
export async function startSampling(deps: SamplingDeps): Promise<RunningSampling> {
  const { sampling, chainId, record, publicClient, wallet, account, db, connection } = deps;
  if (sampling.fraction === 0) return { stop: async () => {} };
  const logger = deps.logger.child({ part: "sampling" });
  const nodeStaking = record.contracts.nodeStaking.address;
  const domain: TypedDataDomain = inframeshDomain(chainId, record.contracts.epochSettlement.address);
  const client = privateKeyToAccount(sampling.clientKey);
  const gatewayRedis = new Redis(sampling.gatewayRedisUrl ?? deps.redisUrl, { maxRetriesPerRequest: 3 });
  gatewayRedis.on("error", (error: Error) => logger.warn({ err: error.message }, "gateway redis error"));
  const store = new NodeStateStore(gatewayRedis, sampling.gatewayPrefix);
  const cursorKey = `inframesh-keeper:sampling:cursor:${chainId}`;

  const outcomes = new Counter({
    name: "inframesh_keeper_sampled_jobs_total",
    help: "Sampled jobs checked, by outcome (agree, slashed, expired, ...)",
    labelNames: ["outcome"],
    registers: [deps.registry],
  });
  const reruns = new Counter({
    name: "inframesh_keeper_sampling_reruns_total",
    help: "Re-runs the keeper paid for as a client, by outcome (served, node_fault)",
    labelNames: ["outcome"],
    registers: [deps.registry],
  });
  const slashes = new Counter({
    name: "inframesh_keeper_sampling_slash_transactions_total",
    help: "slash transactions sent for sampling mismatches",
    registers: [deps.registry],
  });

  const queue = new Queue<{ jobId?: string }>(SAMPLING_QUEUE, { connection });
  queue.on("error", (error) => logger.warn({ err: error }, "sampling queue error"));
  const jobOptions = {
    attempts: deps.attempts,
    backoff: { type: "exponential", delay: deps.backoffMs },
    removeOnComplete: true,
    removeOnFail: true,
  } as const;
  const ensureScheduler = () =>
    queue.upsertJobScheduler("sample-scan", { every: sampling.everyMs }, { name: "sample-scan", opts: jobOptions });
  const onReady = () => {
    ensureScheduler().catch((error: unknown) => logger.warn({ err: error }, "cannot create the sampling scheduler"));
  };
  connection.on("ready", onReady);

  async function actionOf(key: string): Promise<{ kind: string; detail: unknown } | undefined> {
    const [row] = await db.query<{ kind: string; detail: unknown }>(
      "select kind, detail from keeper_actions where action_key = $1",
      [key],
    );
    return row;
  }
  async function recordAction(key: string, kind: string, txHash: Hash | null, detail: object): Promise<void> {
    await db.query(
      "insert into keeper_actions (action_key, kind, tx_hash, detail) values ($1, $2, $3, $4) on conflict (action_key) do nothing",
      [key, kind, txHash, JSON.stringify(detail)],
    );
  }
  async function finish(key: string, outcome: string, txHash: Hash | null, detail: object): Promise<string> {
    await recordAction(key, `sample-${outcome}`, txHash, detail);
    outcomes.inc({ outcome });
    return outcome;
  }

  async function scan(): Promise<string> {
    let cursor = (await connection.get(cursorKey)) ?? "0";
    let queued = 0;
    for (let pass = 0; pass < SCAN_PASSES; pass++) {
      const batch = await store.servedSince(cursor, SCAN_BATCH);
      const picked = batch.jobIds.filter((j) => isSampled(sampling.secret, j, sampling.fraction));
      if (picked.length > 0) {
        await queue.addBulk(
          picked.map((j) => ({
            name: "sample",
            data: { jobId: j },
            opts: { ...jobOptions, jobId: sampleJobId(chainId, j) },
          })),
        );
      }
      queued += picked.length;
      // The cursor moves only after the picks are queued: a crash in between queues them again,
      // and the job id (or the recorded outcome) makes the repeat a no-op.
      if (batch.cursor !== cursor) await connection.set(cursorKey, batch.cursor);
      cursor = batch.cursor;
      if (batch.jobIds.length < SCAN_BATCH) break;
    }
    return `${queued} sampled`;
  }

  /** The original answer, checked as the oracle checks a receipt; a reason when it is not genuine. */
  async function originalAnswer(served: ServedJob): Promise<{ answer: SignedAnswer; input: Buffer } | string> {
    const parsed = receiptJsonSchema.safeParse({
      work_unit: served.work_unit,
      client_signature: served.client_signature,
      proof_of_serving: served.proof_of_serving,
    });
    if (!parsed.success) return "the kept job is not a valid receipt";
    const r = parsed.data;
    if (r.work_unit.input === undefined) return "the kept job has no input";
    const input = Buffer.from(r.work_unit.input, "base64");
    if (payloadHash(input) !== r.work_unit.input_hash) return "the input is not the input_hash";
    const unit = workUnitOf(r);
    const clientSigner = await recoverWorkUnitSigner(domain, unit, r.client_signature).catch(() => null);
    if (clientSigner !== unit.client) return "the work unit is not signed by its client";
    const proof = proofOfServingOf(r);
    if (proof.workUnitHash !== hashWorkUnit(domain, unit) || proof.jobId !== unit.jobId) {
      return "the proof of serving is not for this work unit";
    }
    const nodeSigner = await recoverProofOfServingSigner(domain, proof, r.proof_of_serving.signature).catch(() => null);
    if (nodeSigner !== proof.node) return "the proof of serving is not signed by its node";
    return {
      input,
      answer: {
        work_unit: withoutInput(served.work_unit),
        client_signature: r.client_signature,
        proof_of_serving: served.proof_of_serving,
      },
    };
  }

  /** Qualified nodes other than `exclude`: a live heartbeat serving the model, eligible on chain. */
  async function otherNodes(modelId: number, exclude: Set<string>, jobId: string) {
    const live = (await store.nodes()).filter(
      (n) => n.heartbeat.models.map(Number).includes(modelId) && !exclude.has(n.heartbeat.node.toLowerCase()),
    );
    const eligible = await Promise.all(
      live.map((n) =>
        publicClient.readContract({
          address: nodeStaking,
          abi: samplingStakingAbi,
          functionName: "isEligible",
          args: [n.heartbeat.node],
        }),
      ),
    );
    // Spread re-runs over nodes, in an order a node cannot predict either.
    return live
      .filter((_, i) => eligible[i])
      .map((n) => ({ node: getAddress(n.heartbeat.node), endpoint: n.heartbeat.endpoint }))
      .sort(
        (a, b) => sampleScore(sampling.secret, `${jobId}${a.node}`) - sampleScore(sampling.secret, `${jobId}${b.node}`),
      );
  }

  /** Re-runs the input on `node` as the keeper's client; the node's checked, signed answer. */
  async function rerun(original: SignedAnswer, input: Buffer, node: { node: Address; endpoint: string }) {
    const unit: WorkUnit = {
      ...workUnitOf({ work_unit: receiptJsonSchema.shape.work_unit.parse(original.work_unit) }),
      jobId: `0x${randomBytes(32).toString("hex")}`,
      client: client.address,
      expiresAt: BigInt(Math.floor(Date.now() / 1000) + RERUN_TTL_S),
    };
    const signature = await signWorkUnit(client, domain, unit);
    const body = JSON.stringify({ work_unit: workUnitJson(unit, input), client_signature: signature });
    const outcome = await postJson(`${node.endpoint}/v1/jobs`, body, sampling.rerunTimeoutMs)
      .then((raw) => classifyAnswer(raw, node.node, unit.jobId))
      .catch((error: unknown) => ({ kind: "node_fault" as const, reason: (error as Error).message }));
    if (outcome.kind !== "served") return { fault: `${node.node}: ${outcome.reason}` };
    const proof = outcome.served.proof;
    const checked = proofOfServingOf(
      receiptJsonSchema.pick({ proof_of_serving: true }).parse({ proof_of_serving: proof }),
    );
    const signer = await recoverProofOfServingSigner(domain, checked, proof.signature as Hex).catch(() => null);
    if (checked.workUnitHash !== hashWorkUnit(domain, unit) || signer !== node.node) {
      return { fault: `${node.node}: its proof of serving is not signed over the keeper's work unit` };
    }
    const answer: SignedAnswer = {
      work_unit: workUnitJson(unit),
      client_signature: signature,
      proof_of_serving: proof,
    };
    return { answer };
  }

  async function publish(evidence: Buffer, hash: string, input: Buffer, inputHash: string): Promise<string[]> {
    const dir = await mkdtemp(path.join(tmpdir(), "inframesh-sampling-"));
    try {
      const files = [
        { hash: inputHash.replace(/^0x/, ""), file: path.join(dir, "input"), bytes: input },
        { hash, file: path.join(dir, "evidence.json"), bytes: evidence },
      ];
      for (const f of files) await writeFile(f.file, f.bytes);
      const held: string[] = [];
      const failures: string[] = [];
      for (const peer of sampling.blobPeers) {
        try {
          for (const f of files) await putBlob(peer, f.hash, f.file, { timeoutMs: 30_000 });
          held.push(peer);
        } catch (error) {
          failures.push((error as Error).message);
        }
      }
      if (held.length === 0) throw new SamplingJobError(`no blob-store peer took the evidence: ${failures.join("; ")}`);
      return held;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async function sample(jobId: string): Promise<string> {
    const key = sampleJobId(chainId, jobId);
    const done = await actionOf(key);
    if (done !== undefined) return `already checked: ${done.kind}`;
    const served = await store.servedJob(jobId);
    if (served === undefined) return finish(key, "expired", null, { job_id: jobId });
    const original = await originalAnswer(served);
    if (typeof original === "string") return finish(key, "invalid", null, { job_id: jobId, reason: original });
    const { input } = original;

    // Answers so far: the original, then each re-run as recorded (a retried check reuses them).
    const answers: SignedAnswer[] = [original.answer];
    for (let i = 1; ; i++) {
      const stored = await actionOf(`${key}-rerun-${i}`);
      if (stored === undefined) break;
      const detail = typeof stored.detail === "string" ? (JSON.parse(stored.detail) as unknown) : stored.detail;
      answers.push(detail as SignedAnswer);
    }
    let verdict = judge(answers);
    while (answers.length < 2 || verdict.kind === "undecided") {
      const asked = new Set(answers.map((a) => a.proof_of_serving.node_id.toLowerCase()));
      const candidates = await otherNodes(original.answer.work_unit.model_ref.model_id, asked, jobId);
      const faults: string[] = [];
      let answer: SignedAnswer | undefined;
      for (const candidate of candidates) {
        const result = await rerun(original.answer, input, candidate);
        reruns.inc({ outcome: "answer" in result ? "served" : "node_fault" });
        if ("answer" in result) {
          answer = result.answer;
          break;
        }
        faults.push(result.fault);
      }
      if (answer === undefined) {
        throw new SamplingJobError(
          `no other qualified node answered job ${jobId}'s re-run${faults.length > 0 ? `: ${faults.join("; ")}` : " (none has a live heartbeat)"}`,
        );
      }
      // Recorded before use: a retry after a crash builds the same evidence from the same answers.
      await recordAction(`${key}-rerun-${answers.length}`, "sample-rerun", null, answer);
      answers.push(answer);
      verdict = judge(answers);
    }
    const hashes = answers.map((a) => ({
      node: a.proof_of_serving.node_id,
      output_hash: a.proof_of_serving.output_hash,
    }));
    if (verdict.kind === "agree") return finish(key, "agree", null, { job_id: jobId, answers: hashes });
    if (verdict.kind === "no_majority") return finish(key, "no_majority", null, { job_id: jobId, answers: hashes });

    const evidence = samplingEvidence(chainId, verdict);
    const bytes = evidenceBytes(evidence);
    const evidenceHash = sha256(bytes);
    const accused = getAddress(evidence.node);
    const peers = await publish(bytes, evidenceHash.slice(2), input, evidence.input_hash);
    const detail = { job_id: jobId, node: accused, evidence: evidenceHash, peers, answers: hashes };
    logger.warn({ job_id: jobId, node: accused, evidence: evidenceHash }, "sampled output mismatch: slashing");

    const used = await publicClient.readContract({
      address: nodeStaking,
      abi: samplingStakingAbi,
      functionName: "evidenceUsed",
      args: [evidenceHash],
    });
    if (used) return finish(key, "slashed", null, { ...detail, observed: "evidence already used on chain" });
    const maxSlash = await publicClient.readContract({
      address: nodeStaking,
      abi: samplingStakingAbi,
      functionName: "maxSlashOf",
      args: [accused],
    });
    const amount = slashAmount(maxSlash, sampling.slashBps);
    if (amount === 0n) return finish(key, "unslashable", null, { ...detail, reason: "nothing left to slash" });
    const [latest, pending] = await Promise.all([
      publicClient.getTransactionCount({ address: account.address, blockTag: "latest" }),
      publicClient.getTransactionCount({ address: account.address, blockTag: "pending" }),
    ]);
    if (pending > latest) {
      throw new SamplingJobError(`the keeper account has ${pending - latest} transaction(s) pending: waiting for them`);
    }
    let hash: Hash;
    try {
      const { request } = await publicClient.simulateContract({
        address: nodeStaking,
        abi: samplingStakingAbi,
        functionName: "slash",
        args: [accused, amount, evidenceHash],
        account,
      });
      hash = await wallet.writeContract(request);
    } catch (error) {
      const reason = describeRevert(error) ?? (error as Error).message;
      if (reason.startsWith("EvidenceAlreadyUsed")) {
        return finish(key, "slashed", null, { ...detail, observed: "evidence already used on chain" });
      }
      throw new SamplingJobError(`slash(${accused}) not sent: ${reason}`, { cause: error });
    }
    slashes.inc();
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new SamplingJobError(`slash transaction ${hash} reverted`);
    return finish(key, "slashed", hash, { ...detail, amount: amount.toString(), observed: "sent" });
  }

  const worker = new Worker<{ jobId?: string }>(
    SAMPLING_QUEUE,
    async (job: Job<{ jobId?: string }>) => {
      if (job.name === "sample-scan") return scan();
      if (job.name === "sample" && typeof job.data.jobId === "string" && /^0x[0-9a-fA-F]{64}$/.test(job.data.jobId)) {
        return sample(job.data.jobId.toLowerCase());
      }
      throw new SamplingJobError(`unknown sampling job ${job.name} ${JSON.stringify(job.data)}`);
    },
    { connection, concurrency: 1, lockDuration: deps.lockMs, stalledInterval: deps.lockMs, maxStalledCount: 5 },
  );
  worker.on("failed", (job, error) =>
    logger.warn({ job: job?.name, id: job?.id, attempt: job?.attemptsMade, err: error.message }, "sampling job failed"),
  );
  worker.on("completed", (job, result) => {
    if (job.name !== "sample-scan") logger.info({ id: job.id, result }, "sampled job checked");
  });
  worker.on("error", (error) => logger.warn({ err: error }, "sampling worker error"));
  await ensureScheduler();
  logger.info({ fraction: sampling.fraction, client: client.address }, "validator sampling on");

  return {
    async stop() {
      connection.off("ready", onReady);
      await worker.close();
      await queue.close();
      gatewayRedis.disconnect();
    },
  };
}

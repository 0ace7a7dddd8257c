// One epoch's settlement recomputed from its published receipt batch, with the oracle's own pure
// builder (oracle/settlement/builder.ts) and receipt rules (oracle/rules/), then compared with
// what the chain holds. No I/O: the caller passes the batch bytes, the on-chain settlement, the
// fee schedule, the model registry's history and the epoch's collected debits.
//
// The oracle builds with the slashed stake RewardClaims held at build time, a number the chain
// does not keep; the auditor takes the settlement's `redistributedSlash` as that input and checks
// its split (in the earnings root), and separately (balances.ts) that all redistributed slash was
// really received from NodeStaking.
import type { ZkRequirement } from "../oracle/rules/zk.ts";
import { type Address, type Hex, type TypedDataDomain, getAddress, sha256 } from "viem";

import type { Debit, EarningsEntry } from "../sdk/earnings.ts";
import type { Settlement } from "../sdk/eip712.ts";
import type { FeeSchedule } from "../sdk/fees.ts";
import { type Receipt, receiptJsonSchema } from "../sdk/receipt.ts";
import {
  type BuilderReceipt,
  type BuiltSettlement,
  SettlementBuildError,
  buildSettlement,
  parseBatch,
  settlementToJson,
} from "../oracle/settlement/builder.ts";
import {
  type ZkVerifierRegistry,
  checkConsistency,
  checkInputHash,
  checkSigners,
  checkZkProof,
  receiptDigests,
  recoverSigners,
} from "../oracle/rules/index.ts";
import { type Finding, finding } from "./findings.ts";

/** What the model registry's events say about models, over the whole history. */
export interface ModelHistory {
  /** Every price a version has had, keyed `modelId/version`. */
  prices: ReadonlyMap<string, ReadonlySet<bigint>>;
  /** Every publisher a model has had, keyed by model id. */
  publishers: ReadonlyMap<string, ReadonlySet<Address>>;
  /** The zk verifier a version names (null: none), keyed `modelId/version`. */
  zkVerifiers: ReadonlyMap<string, ZkRequirement | null>;
}

export const versionKey = (modelId: bigint | number | string, version: bigint | number | string) =>
  `${modelId}/${version}`;

export interface EpochAuditInput {
  epoch: bigint;
  /** The settlement as posted on chain (SettlementPosted). */
  onChain: Settlement;
  /** The bytes fetched for `onChain.batchSha256`. */
  batch: Uint8Array;
  /** Cumulative earnings after the previous epoch, as the auditor recomputed them. */
  previous: readonly EarningsEntry[];
  /** EpochSettlement.feeSchedule() in force when the settlement was posted. */
  fees: FeeSchedule;
  domain: TypedDataDomain;
  models: ModelHistory;
  zk: ZkVerifierRegistry;
  /** What the escrow debited for this epoch (DebitedPacked of its collectDebits); undefined: not funded yet. */
  collectedDebits: readonly Debit[] | undefined;
  /** Job ids settled by earlier epochs (a job is paid once). */
  settledJobs: ReadonlySet<string>;
  /** The SettlementPosted transaction, for the findings. */
  tx?: string;
}

export interface EpochAudit {
  findings: Finding[];
  receiptCount: number;
  /** The recomputed settlement; undefined when the batch could not be used. */
  built: BuiltSettlement | undefined;
  /** Job ids of this epoch's batch. */
  jobs: string[];
}

interface BatchLine {
  receipt: Receipt;
  raw: Record<string, unknown>;
  fee: bigint;
  publisher: Address;
  receivedAt: number;
  text: string;
}

const uint = (v: unknown): bigint | undefined => (typeof v === "string" && /^[0-9]+$/.test(v) ? BigInt(v) : undefined);

/** The batch's lines as receipts, or the first line that is not one. */
function readLines(batch: Uint8Array): { lines: BatchLine[] } | { error: string } {
  let parsed: Record<string, unknown>[];
  try {
    parsed = parseBatch(batch);
  } catch (error) {
    return { error: (error as Error).message };
  }
  const texts = new TextDecoder().decode(batch).split("\n");
  const lines: BatchLine[] = [];
  for (const [i, line] of parsed.entries()) {
    const receipt = receiptJsonSchema.safeParse(line.receipt);
    const fee = uint(line.fee);
    const publisher = typeof line.publisher === "string" ? line.publisher : "";
    if (!receipt.success) return { error: `line ${i + 1}: "receipt" is not a valid receipt` };
    if (fee === undefined) return { error: `line ${i + 1}: "fee" is not a whole number` };
    if (!/^0x[0-9a-fA-F]{40}$/.test(publisher)) return { error: `line ${i + 1}: "publisher" is not an address` };
    if (typeof line.received_at !== "number") return { error: `line ${i + 1}: "received_at" is not a number` };
    lines.push({
      receipt: receipt.data,
      raw: line.receipt as Record<string, unknown>,
      fee,
      publisher: getAddress(publisher),
      receivedAt: line.received_at,
      text: texts[i]!,
    });
  }
  return { lines };
}

/** Checks one receipt as the oracle did, against the registry's history instead of one block. */
async function checkReceipt(line: BatchLine, input: EpochAuditInput): Promise<Finding[]> {
  const out: Finding[] = [];
  const { receipt } = line;
  const job = receipt.work_unit.job_id;
  const where = { epoch: input.epoch, account: receipt.work_unit.requested_by, tx: input.tx };
  const digests = receiptDigests(input.domain, receipt);
  const inconsistent = checkInputHash(receipt) ?? checkConsistency(receipt, digests);
  if (inconsistent)
    out.push(
      finding(
        "receipt_inconsistent",
        `job ${job}: ${inconsistent.message}`,
        "a consistent receipt",
        inconsistent.code,
        where,
      ),
    );
  const signed = checkSigners(receipt, await recoverSigners(receipt, digests));
  if (signed)
    out.push(
      finding(
        signed.code === "bad_client_signature" ? "bad_client_signature" : "bad_node_signature",
        `job ${job}: ${signed.message}`,
        signed.code === "bad_client_signature" ? receipt.work_unit.requested_by : receipt.proof_of_serving.node_id,
        "another signer",
        signed.code === "bad_client_signature" ? where : { ...where, account: receipt.proof_of_serving.node_id },
      ),
    );
  const { model_id: modelId, version } = receipt.work_unit.model_ref;
  const key = versionKey(modelId, version);
  if (line.fee > receipt.work_unit.max_fee)
    out.push(
      finding(
        "fee_above_max_fee",
        `job ${job}: the client is debited more than the max_fee it signed`,
        `≤ ${receipt.work_unit.max_fee}`,
        line.fee,
        where,
      ),
    );
  const prices = input.models.prices.get(key);
  if (prices === undefined || !prices.has(line.fee))
    out.push(
      finding(
        "fee_not_a_price",
        `job ${job}: the fee is not a price model ${modelId} version ${version} ever had`,
        prices === undefined ? "a published version" : [...prices].join(" or "),
        line.fee,
        where,
      ),
    );
  const publishers = input.models.publishers.get(String(modelId));
  if (publishers === undefined || !publishers.has(line.publisher))
    out.push(
      finding(
        "wrong_publisher",
        `job ${job}: the royalty goes to an account that never published model ${modelId}`,
        publishers === undefined ? "a registered model" : [...publishers].join(" or "),
        line.publisher,
        { ...where, account: line.publisher },
      ),
    );
  const zk = await checkZkProof(receipt, input.models.zkVerifiers.get(key) ?? null, input.zk);
  if (zk) out.push(finding("zk_proof_rejected", `job ${job}: ${zk.message}`, "an accepted zk proof", zk.code, where));
  return out;
}

function compareDebits(input: EpochAuditInput, built: BuiltSettlement, lines: readonly BatchLine[]): Finding[] {
  const out: Finding[] = [];
  const where = { epoch: input.epoch };
  if (input.collectedDebits === undefined) return out;
  const expected = new Map(built.debits.map((d) => [getAddress(d.client), d.amount]));
  const actual = new Map<Address, bigint>();
  for (const d of input.collectedDebits)
    actual.set(getAddress(d.client), (actual.get(getAddress(d.client)) ?? 0n) + d.amount);
  const signed = new Map<Address, bigint>();
  for (const l of lines) {
    const client = l.receipt.work_unit.requested_by;
    signed.set(client, (signed.get(client) ?? 0n) + l.receipt.work_unit.max_fee);
  }
  for (const client of new Set([...expected.keys(), ...actual.keys()])) {
    const e = expected.get(client) ?? 0n;
    const a = actual.get(client) ?? 0n;
    if (e !== a)
      out.push(
        finding(
          "debit_mismatch",
          "the escrow debit of this client (DebitedPacked) is not the sum of its receipts' fees",
          e,
          a,
          {
            ...where,
            account: client,
          },
        ),
      );
    const limit = signed.get(client) ?? 0n;
    if (a > limit)
      out.push(
        finding(
          "fee_above_max_fee",
          "the client was debited more than the max_fee of its signed work units adds up to",
          `≤ ${limit}`,
          a,
          {
            ...where,
            account: client,
          },
        ),
      );
  }
  return out;
}

/** Recomputes one epoch's settlement from its batch and compares every field with the chain's. */
export async function auditEpoch(input: EpochAuditInput): Promise<EpochAudit> {
  const where = { epoch: input.epoch, tx: input.tx };
  const actualSha = sha256(input.batch);
  if (actualSha !== input.onChain.batchSha256.toLowerCase())
    return {
      findings: [
        finding(
          "batch_sha256_mismatch",
          "the receipt batch served is not the one the settlement commits to (batchSha256)",
          input.onChain.batchSha256,
          actualSha,
          where,
        ),
      ],
      receiptCount: 0,
      built: undefined,
      jobs: [],
    };
  const read = readLines(input.batch);
  if ("error" in read)
    return {
      findings: [
        finding("batch_invalid", "the receipt batch cannot be read", "canonical JSON receipt lines", read.error, where),
      ],
      receiptCount: 0,
      built: undefined,
      jobs: [],
    };
  const { lines } = read;
  const findings: Finding[] = [];
  const seen = new Set<string>();
  for (const line of lines) {
    const job = line.receipt.work_unit.job_id;
    if (seen.has(job) || input.settledJobs.has(job))
      findings.push(
        finding(
          "duplicate_job",
          `job ${job} is paid more than once`,
          "once",
          seen.has(job) ? "twice in this batch" : "also in an earlier epoch",
          where,
        ),
      );
    seen.add(job);
    findings.push(...(await checkReceipt(line, input)));
  }
  const receipts: BuilderReceipt[] = lines.map((l) => ({
    jobId: l.receipt.work_unit.job_id,
    body: l.raw,
    client: l.receipt.work_unit.requested_by,
    node: l.receipt.proof_of_serving.node_id,
    publisher: l.publisher,
    fee: l.fee,
    receivedAt: l.receivedAt,
  }));
  let built: BuiltSettlement;
  try {
    built = buildSettlement({
      epoch: input.epoch,
      receipts,
      previous: input.previous,
      fees: input.fees,
      slashToRedistribute: input.onChain.redistributedSlash,
      slashedNodes: [],
    });
  } catch (error) {
    if (!(error instanceof SettlementBuildError)) throw error;
    findings.push(
      finding(
        "batch_invalid",
        "the settlement cannot be rebuilt from the batch",
        "a buildable batch",
        error.message,
        where,
      ),
    );
    return { findings, receiptCount: lines.length, built: undefined, jobs: [...seen] };
  }
  // The batch's own amounts (fee split, order) must be what the builder writes for these receipts.
  const rebuilt = new TextDecoder().decode(built.batch).split("\n");
  for (const [i, line] of lines.entries())
    if (rebuilt[i] !== line.text)
      findings.push(
        finding(
          "batch_line_mismatch",
          `line ${i + 1} of the batch is not what the fee schedule makes of its receipt`,
          rebuilt[i],
          line.text,
          where,
        ),
      );
  const expected = settlementToJson(built.settlement);
  const actual = settlementToJson(input.onChain);
  for (const field of Object.keys(expected))
    if (expected[field] !== actual[field])
      findings.push(finding("settlement_mismatch", `settlement field ${field}`, expected[field], actual[field], where));
  findings.push(...compareDebits(input, built, lines));
  return { findings, receiptCount: lines.length, built, jobs: [...seen] };
}

/** Unpacks RewardClaims/PaymentEscrow packed debits (the inverse of sdk/earnings.ts packDebits). */
export function unpackDebits(words: readonly Hex[]): Debit[] {
  return words.map((w) => {
    const word = BigInt(w);
    return {
      client: getAddress(`0x${(word >> 96n).toString(16).padStart(40, "0")}`),
      amount: word & ((1n << 96n) - 1n),
    };
  });
}

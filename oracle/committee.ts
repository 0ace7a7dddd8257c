// Committee mode: n oracles, each with its own database and queue. The leader (the configured one,
// else the lowest address among the members that answer /healthz) builds the epoch, publishes its
// receipt batch and asks the others to sign. A follower fetches the batch from the blob store,
// re-verifies every receipt against the chain with the same rules, recomputes the settlement from
// its own record of the previous epochs and signs only an identical settlement.
import { readFile } from "node:fs/promises";
import path from "node:path";

import type { Logger } from "pino";
import { type Address, type Hex, type TypedDataDomain, getAddress } from "viem";

import { fetchBlob } from "../sdk/blob/client.ts";
import { type Settlement, hashSettlement, signSettlement } from "../sdk/eip712.ts";
import { receiptJsonSchema } from "../sdk/receipt.ts";
import type { OracleChain } from "./chain.ts";
import type { OracleConfig } from "./config.ts";
import { EpochError } from "./errors.ts";
import { type ZkVerifierRegistry, verifyReceipt } from "./rules/index.ts";
import {
  type BuilderReceipt,
  buildSettlement,
  parseBatch,
  settlementFromJson,
  settlementToJson,
} from "./settlement/builder.ts";
import { type SignatureSource, settlementSigner } from "./settlement/machine.ts";
import type { OracleStore } from "./store/store.ts";

type Committee = NonNullable<OracleConfig["committee"]>;

async function alive(url: string, timeoutMs: number): Promise<boolean> {
  try {
    const res = await fetch(new URL("/healthz", url), { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok;
  } catch {
    return false;
  }
}

/** The leader: the configured one, else the lowest live address (`self` is always live to itself). */
export async function electLeader(committee: Committee, self: Address, timeoutMs = 2_000): Promise<Address> {
  if (committee.leader !== undefined) return committee.leader;
  const sorted = [...committee.members].sort((a, b) => (BigInt(a.address) < BigInt(b.address) ? -1 : 1));
  for (const member of sorted) {
    if (getAddress(member.address) === getAddress(self)) return member.address;
    if (await alive(member.url, timeoutMs)) return member.address;
  }
  return self;
}

export function committeeClient(opts: {
  committee: Committee;
  self: Address;
  domain: TypedDataDomain;
  timeoutMs?: number;
}): SignatureSource {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return {
    async isLeader() {
      return getAddress(await electLeader(opts.committee, opts.self)) === getAddress(opts.self);
    },
    async gather(settlement) {
      const others = opts.committee.members.filter((m) => getAddress(m.address) !== getAddress(opts.self));
      const signatures: { signer: Address; signature: Hex }[] = [];
      const failures: string[] = [];
      await Promise.all(
        others.map(async (member) => {
          try {
            const res = await fetch(new URL(`/v1/epochs/${settlement.epoch}/sign`, member.url), {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ settlement: settlementToJson(settlement) }),
              signal: AbortSignal.timeout(timeoutMs),
            });
            const body = (await res.json().catch(() => ({}))) as { signature?: Hex; error?: string; reason?: string };
            if (!res.ok || body.signature === undefined) {
              failures.push(`${member.address}: ${body.error ?? res.status} ${body.reason ?? ""}`.trim());
              return;
            }
            const signer = await settlementSigner(opts.domain, settlement, body.signature);
            if (signer === null || getAddress(signer) !== getAddress(member.address)) {
              failures.push(`${member.address}: signature recovers to ${signer ?? "nothing"}`);
              return;
            }
            signatures.push({ signer: member.address, signature: body.signature });
          } catch (error) {
            failures.push(`${member.address}: unreachable (${error instanceof Error ? error.message : String(error)})`);
          }
        }),
      );
      return { signatures, failures };
    },
  };
}

export interface FollowerDeps {
  store: OracleStore;
  chain: OracleChain;
  domain: TypedDataDomain;
  zk: ZkVerifierRegistry;
  blobPeers: readonly string[];
  dataDir: string;
  expiryGraceSeconds: number;
  minTier: number;
  logger: Logger;
}

/** Follower: re-verifies the proposed settlement of `epoch` and signs it when it recomputes identically. */
export async function signAsFollower(
  deps: FollowerDeps,
  epoch: bigint,
  request: { settlement: Record<string, string> },
): Promise<{ signer: Address; signature: Hex }> {
  const proposed = settlementFromJson(request.settlement);
  if (proposed.epoch !== epoch)
    throw new EpochError("epoch_mismatch", `the settlement is for epoch ${proposed.epoch}, the URL names ${epoch}`);
  const next = await deps.chain.settlementNextEpoch();
  if (next !== epoch) throw new EpochError("not_next_epoch", `the chain expects epoch ${next}, not ${epoch}`);
  if (deps.blobPeers.length === 0)
    throw new EpochError("no_blob_peers", "this follower has no blob peers to fetch the receipt batch from");

  const dir = path.join(deps.dataDir, "batches");
  const hash = proposed.batchSha256.slice(2);
  let file: string;
  try {
    file = await fetchBlob(hash, {
      peers: deps.blobPeers,
      dir,
      rounds: 2,
      timeoutMs: 30_000,
      maxBytes: 512 * 1024 ** 2,
    });
  } catch (error) {
    throw new EpochError("batch_unavailable", `cannot fetch the receipt batch ${hash}: ${(error as Error).message}`);
  }
  const lines = parseBatch(await readFile(file));

  const block = await deps.chain.block();
  const receipts: BuilderReceipt[] = [];
  const perClient = new Map<Address, bigint>();
  for (const [i, line] of lines.entries()) {
    const parsed = receiptJsonSchema.safeParse(line.receipt);
    const receivedAt = line.received_at;
    if (!parsed.success || typeof receivedAt !== "number")
      throw new EpochError("batch_invalid", `line ${i + 1} of the batch is not a receipt`);
    const receipt = parsed.data;
    const verdict = await verifyReceipt(receipt, {
      domain: deps.domain,
      receivedAt,
      expiryGraceSeconds: deps.expiryGraceSeconds,
      minTier: deps.minTier,
      zk: deps.zk,
      facts: async (r) => ({
        node: await deps.chain.nodeFacts(r.proof_of_serving.node_id, block),
        model: await deps.chain.modelFacts(
          BigInt(r.work_unit.model_ref.model_id),
          BigInt(r.work_unit.model_ref.version),
          block,
        ),
      }),
    });
    if (!verdict.ok)
      throw new EpochError(
        "receipt_rejected",
        `job ${receipt.work_unit.job_id}: ${verdict.rejection.code}: ${verdict.rejection.message}`,
      );
    const client = receipt.work_unit.requested_by;
    perClient.set(client, (perClient.get(client) ?? 0n) + verdict.fee);
    receipts.push({
      jobId: receipt.work_unit.job_id,
      body: line.receipt as Record<string, unknown>,
      client,
      node: receipt.proof_of_serving.node_id,
      publisher: verdict.publisher,
      fee: verdict.fee,
      receivedAt,
    });
  }
  for (const [client, owed] of perClient) {
    const balance = await deps.chain.escrowBalance(client, block);
    if (owed > balance)
      throw new EpochError("insufficient_escrow", `client ${client} owes ${owed} this epoch but holds ${balance}`);
  }

  const previousRow = epoch === 0n ? undefined : await deps.store.getEpoch(epoch - 1n);
  if (epoch > 0n && previousRow?.earnings == null)
    throw new EpochError("missing_history", `this follower has no record of epoch ${epoch - 1n}'s earnings`);
  const [fees, slash] = await Promise.all([deps.chain.loadFeeSchedule(), deps.chain.loadUnallocatedSlash()]);
  const built = buildSettlement({
    epoch,
    receipts,
    previous: (previousRow?.earnings ?? []).map((e) => ({
      account: getAddress(e.account),
      cumulativeAmount: BigInt(e.cumulativeAmount),
    })),
    fees,
    slashToRedistribute: slash,
    slashedNodes: [],
  });
  const ours = hashSettlement(deps.domain, built.settlement);
  if (ours !== hashSettlement(deps.domain, proposed)) {
    const ourJson = settlementToJson(built.settlement);
    const differs = Object.keys(ourJson).filter((k) => ourJson[k] !== request.settlement[k]);
    throw new EpochError("settlement_mismatch", `recomputed settlement differs in ${differs.join(", ")}`);
  }
  const duplicate = await deps.store.recordSignedJobs(
    epoch,
    receipts.map((r) => r.jobId),
  );
  if (duplicate !== null)
    throw new EpochError("duplicate_job", `job ${duplicate} was already settled in another epoch`);
  await deps.store.putEpoch(epoch, "signed");
  await deps.store.updateEpoch(epoch, {
    settlement: settlementToJson(built.settlement),
    batchSha256: built.batchSha256,
    debits: built.debits.map((d) => ({ client: d.client, amount: d.amount.toString() })),
    earnings: built.earnings.map((e) => ({ account: e.account, cumulativeAmount: e.cumulativeAmount.toString() })),
  });
  const signature = await signSettlement(deps.chain.account as never, deps.domain, built.settlement as Settlement);
  deps.logger.info({ epoch: epoch.toString(), receipts: receipts.length }, "signed settlement as follower");
  return { signer: deps.chain.account.address, signature };
}

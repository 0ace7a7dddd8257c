// The epoch settlement state machine, persisted per epoch in the database:
//
//   building → signed → posted (tx hash) → final → funded
//
// Each step first asks the chain where the epoch stands (EpochSettlement.nextEpoch and
// settlementOf, RewardClaims.nextEpoch) and only then sends a transaction, so a step repeated
// after a kill -9 anywhere finds its work done and moves on: a settlement is never posted twice
// and debits are never collected twice (the contracts refuse both as well).
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";

import type { Logger } from "pino";
import { type Address, type Hex, type TypedDataDomain, getAddress, recoverTypedDataAddress } from "viem";

import { putBlob } from "../../sdk/blob/upload.ts";
import { type Settlement, hashSettlement, inframeshTypes, signSettlement } from "../../sdk/eip712.ts";
import type { OracleChain } from "../chain.ts";
import { EpochError } from "../errors.ts";
import type { EpochRow, OracleStore } from "../store/store.ts";
import { buildSettlement, settlementFromJson, settlementToJson } from "./builder.ts";

/** Asks the other committee members for their signatures (see oracle/committee.ts). */
export interface SignatureSource {
  /** Signatures of `settlement` by other members, each checked to recover to its member. */
  gather(settlement: Settlement): Promise<{ signatures: { signer: Address; signature: Hex }[]; failures: string[] }>;
  /** Whether this oracle leads now (only the leader builds and posts). */
  isLeader(): Promise<boolean>;
}

export interface SettlerDeps {
  store: OracleStore;
  chain: OracleChain;
  domain: TypedDataDomain;
  blobPeers: readonly string[];
  dataDir: string;
  logger: Logger;
  /** Signatures needed on chain (EpochSettlement.threshold()). */
  threshold: () => Promise<number>;
  committee?: SignatureSource;
  /** Called after each step (tests kill the process here; metrics). */
  onStep?: (row: EpochRow) => void;
}

export class EpochSettler {
  readonly #d: SettlerDeps;
  #running: Promise<unknown> = Promise.resolve();

  constructor(deps: SettlerDeps) {
    this.#d = deps;
  }

  /** Runs `fn` after every earlier call has finished: one step at a time per process. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#running.then(fn, fn);
    this.#running = next.catch(() => {});
    return next;
  }

  /**
   * Closes the open epoch: the latest unfinished epoch is driven first (a new one opens only after
   * it is funded); else the chain's next epoch is opened with every verified, unassigned receipt.
   * With `epoch`: an epoch this oracle already has is driven like `tick` does and reported (a
   * repeated close is a no-op); one it does not have is opened only if it is the chain's next.
   */
  closeEpoch(epoch?: bigint): Promise<EpochRow> {
    return this.#serial(async () => {
      if (epoch !== undefined) {
        const row = await this.#d.store.getEpoch(epoch);
        if (row !== undefined) {
          if (row.state === "funded" || row.state === "voided") return row;
          if (row.state === "building" && this.#d.committee && !(await this.#d.committee.isLeader())) return row;
          return this.#drive(epoch);
        }
      }
      if (this.#d.committee && !(await this.#d.committee.isLeader()))
        throw new EpochError("not_leader", "this oracle does not lead the committee now; ask the leader");
      const latest = await this.#d.store.latestEpoch();
      if (latest !== undefined && latest.state !== "funded" && latest.state !== "voided")
        return this.#drive(latest.epoch);
      const next = await this.#d.chain.settlementNextEpoch();
      if (epoch !== undefined && epoch !== next)
        throw new EpochError(
          "epoch_not_open",
          `epoch ${epoch} is not the open epoch: the chain's next epoch is ${next}`,
        );
      if (latest !== undefined && latest.epoch >= next && latest.state === "funded")
        throw new EpochError("chain_behind", `epoch ${latest.epoch} is funded here but the chain expects ${next}`);
      const opened = await this.#d.store.openEpoch(next);
      if (!opened) throw new EpochError("nothing_to_settle", `no verified receipts wait for epoch ${next}`);
      return this.#drive(next);
    });
  }

  /** Moves the latest unfinished epoch as far as it can go now (the timer and the keeper call this). */
  tick(): Promise<EpochRow | undefined> {
    return this.#serial(async () => {
      const latest = await this.#d.store.latestEpoch();
      if (latest === undefined || latest.state === "funded" || latest.state === "voided") return latest;
      if (latest.state === "building" && this.#d.committee && !(await this.#d.committee.isLeader())) return latest;
      return this.#drive(latest.epoch);
    });
  }

  async #drive(epoch: bigint): Promise<EpochRow> {
    for (;;) {
      const row = await this.#d.store.getEpoch(epoch);
      if (row === undefined) throw new EpochError("unknown_epoch", `no record of epoch ${epoch}`);
      let advanced: boolean;
      try {
        advanced = await this.#step(row);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        await this.#d.store.updateEpoch(epoch, { lastError: message });
        throw error instanceof EpochError ? error : new EpochError("step_failed", message, { cause: error });
      }
      const after = (await this.#d.store.getEpoch(epoch))!;
      this.#d.onStep?.(after);
      if (!advanced || after.state === "funded" || after.state === "voided") return after;
    }
  }

  /** One transition; false when the epoch must wait (challenge window open). */
  async #step(row: EpochRow): Promise<boolean> {
    const { store, chain } = this.#d;
    const epoch = row.epoch;
    switch (row.state) {
      case "building": {
        const built = await this.#build(epoch);
        await this.#publish(built.batchSha256, built.batch);
        const signatures = await this.#sign(built.settlement);
        await store.updateEpoch(epoch, {
          state: "signed",
          settlement: settlementToJson(built.settlement),
          batchSha256: built.batchSha256,
          debits: built.debits.map((d) => ({ client: d.client, amount: d.amount.toString() })),
          earnings: built.earnings.map((e) => ({
            account: e.account,
            cumulativeAmount: e.cumulativeAmount.toString(),
          })),
          carriedSlash: built.carriedSlash,
          signatures,
          lastError: null,
        });
        return true;
      }
      case "signed": {
        const settlement = settlementFromJson(row.settlement!);
        const digest = hashSettlement(this.#d.domain, settlement);
        const [next, record] = await Promise.all([chain.settlementNextEpoch(), chain.settlementOf(epoch)]);
        if (next > epoch || (record.status === "posted" && record.settlementHash === digest)) {
          await store.updateEpoch(epoch, { state: next > epoch ? "final" : "posted", lastError: null });
          return true;
        }
        if (record.status === "posted")
          throw new EpochError(
            "conflicting_settlement",
            `epoch ${epoch} is posted with settlement ${record.settlementHash}, not ours (${digest}): void it or stop this oracle`,
          );
        if (next < epoch)
          throw new EpochError("previous_epoch_open", `epoch ${next} is not final on chain yet; epoch ${epoch} waits`);
        // A follower's row has no signatures: it waits for the leader to post.
        if (row.signatures === null) return false;
        const txHash = await chain.post(settlement, row.signatures as Hex[]);
        await store.updateEpoch(epoch, { state: "posted", txHash, lastError: null });
        return true;
      }
      case "posted": {
        const [next, record] = await Promise.all([chain.settlementNextEpoch(), chain.settlementOf(epoch)]);
        if (next > epoch || record.status === "final") {
          await store.updateEpoch(epoch, { state: "final", lastError: null });
          return true;
        }
        if (record.status === "voided") {
          await store.updateEpoch(epoch, { state: "voided", lastError: "the settlement was voided on chain" });
          return false;
        }
        if ((await chain.latestTimestamp()) < record.finalisableAt) return false;
        await chain.finalise(epoch);
        await store.updateEpoch(epoch, { state: "final", lastError: null });
        return true;
      }
      case "final": {
        const debits = (row.debits ?? []).map((d) => ({ client: getAddress(d.client), amount: BigInt(d.amount) }));
        if ((await chain.claimsNextEpoch()) <= epoch) {
          await chain.collectDebits(settlementFromJson(row.settlement!), debits);
        }
        await store.markFunded(epoch, debits);
        return true;
      }
      case "funded":
      case "voided":
        return false;
    }
  }

  async #build(epoch: bigint) {
    const { store, chain } = this.#d;
    const receipts = await store.epochReceipts(epoch);
    const previous = await store.previousFunded(epoch);
    const [fees, slash] = await Promise.all([chain.loadFeeSchedule(), chain.loadUnallocatedSlash()]);
    return buildSettlement({
      epoch,
      receipts,
      previous: (previous?.earnings ?? []).map((e) => ({
        account: getAddress(e.account),
        cumulativeAmount: BigInt(e.cumulativeAmount),
      })),
      fees,
      slashToRedistribute: slash,
      // The slashed-node list comes with the slash redistribution work (NodeStaking Slashed events
      // of the epoch); until then every earning node shares the redistribution.
      slashedNodes: [],
    });
  }

  /** Publishes the receipt batch to every blob peer; at least one must hold it before posting. */
  async #publish(batchSha256: Hex, batch: Uint8Array): Promise<void> {
    const peers = this.#d.blobPeers;
    if (peers.length === 0)
      throw new EpochError(
        "no_blob_peers",
        "no blob-store peers configured (blobPeers): the receipt batch must be published",
      );
    const dir = path.join(this.#d.dataDir, "batches");
    await mkdir(dir, { recursive: true });
    const hash = batchSha256.slice(2);
    const file = path.join(dir, hash);
    await writeFile(file, batch);
    const results = await Promise.allSettled(peers.map((peer) => putBlob(peer, hash, file, { timeoutMs: 30_000 })));
    const ok = results.filter((r) => r.status === "fulfilled").length;
    if (ok === 0)
      throw new EpochError(
        "publish_failed",
        `no blob peer accepted the receipt batch ${hash}: ${results.map((r) => (r.status === "rejected" ? String(r.reason) : "")).join("; ")}`,
      );
  }

  /** This oracle's signature plus the committee's, sorted by signer ascending as EpochSettlement requires. */
  async #sign(settlement: Settlement): Promise<Hex[]> {
    const own = await signSettlement(this.#d.chain.account as never, this.#d.domain, settlement);
    const all = new Map<Address, Hex>([[getAddress(this.#d.chain.account.address), own]]);
    let failures: string[] = [];
    if (this.#d.committee) {
      const gathered = await this.#d.committee.gather(settlement);
      for (const s of gathered.signatures) all.set(getAddress(s.signer), s.signature);
      failures = gathered.failures;
    }
    const threshold = await this.#d.threshold();
    if (all.size < threshold)
      throw new EpochError(
        "committee_short",
        `epoch ${settlement.epoch}: ${all.size} of ${threshold} signatures (${failures.join("; ") || "no other member answered"})`,
      );
    return [...all].sort(([a], [b]) => (BigInt(a) < BigInt(b) ? -1 : 1)).map(([, signature]) => signature);
  }
}

/** The address that signed `settlement` under `domain`, or null when the signature is malformed. */
export async function settlementSigner(domain: TypedDataDomain, settlement: Settlement, signature: Hex) {
  try {
    return await recoverTypedDataAddress({
      domain,
      types: inframeshTypes,
      primaryType: "Settlement",
      message: settlement,
      signature,
    });
  } catch {
    return null;
  }
}

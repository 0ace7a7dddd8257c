// Epoch close on a schedule: every INFRAMESH_KEEPER_EPOCH_MS the keeper reads the chain's next
// epoch N and queues "close N" (job id close-<chainId>-<N>, so duplicate triggers collapse). The
// job asks each oracle of the committee to close exactly N ({ "epoch": "N" }): the oracle opens N
// only while it is the open epoch and otherwise reports N's state, so a repeated close is a no-op.
// Once N is posted, a finalise job for N is queued, delayed until its challenge window ends.
import { Counter, Gauge } from "prom-client";

import { KeeperJobError, type KeeperContext, type KeeperJobGroup } from "./context.ts";
import { closeOutcome, epochSettlementAbi, finaliseJobId, parseEpoch, type OracleCloseAnswer } from "./jobs.ts";
import { closeJobId } from "./sla.ts";

/** How long one oracle may take to answer a close (it builds, publishes and posts inside it). */
const ORACLE_CLOSE_TIMEOUT_MS = 120_000;

export interface EpochCloseGroup extends KeeperJobGroup {
  /** Queues "close N" for the chain's next epoch now (what the scheduler does each period). */
  closeNow(): Promise<{ jobId: string; epoch: string }>;
}

export function epochCloseJobs(
  ctx: KeeperContext,
  scheduleFinalise: (epoch: bigint, delayMs: number) => Promise<void>,
): EpochCloseGroup {
  const { config, chainId, publicClient, logger } = ctx;
  const settlement = ctx.record.contracts.epochSettlement.address;
  const lastClosed = new Gauge({
    name: "inframesh_keeper_last_closed_epoch",
    help: "Highest epoch an oracle reported closed (opened) at the keeper's request (-1: none yet)",
    registers: [ctx.registry],
  });
  lastClosed.set(-1);
  let highest = -1n;
  const closes = new Counter({
    name: "inframesh_keeper_epoch_closes_total",
    help: "Epoch close requests answered, by outcome",
    labelNames: ["outcome"],
    registers: [ctx.registry],
  });

  async function nextEpoch(): Promise<bigint> {
    return publicClient.readContract({ address: settlement, abi: epochSettlementAbi, functionName: "nextEpoch" });
  }

  async function closeNow(): Promise<{ jobId: string; epoch: string }> {
    const epoch = await nextEpoch();
    const jobId = closeJobId(chainId, epoch);
    await ctx.queue.add("epoch-close", { epoch: epoch.toString() }, { ...ctx.jobOptions, jobId });
    return { jobId, epoch: epoch.toString() };
  }

  async function askOracle(oracle: string, epoch: bigint): Promise<OracleCloseAnswer> {
    try {
      const response = await fetch(new URL("/v1/epochs/close", oracle), {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${config.oracleAdminToken ?? ""}` },
        body: JSON.stringify({ epoch: epoch.toString() }),
        signal: AbortSignal.timeout(ORACLE_CLOSE_TIMEOUT_MS),
      });
      const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
      return { oracle, status: response.status, body };
    } catch (error) {
      return { oracle, unreachable: (error as Error).message };
    }
  }

  async function close(epoch: bigint): Promise<string> {
    const key = closeJobId(chainId, epoch);
    // Past epochs are settled already: nothing to ask (a stale trigger).
    if ((await nextEpoch()) > epoch) return `epoch ${epoch} is already final on chain`;
    const answers: OracleCloseAnswer[] = [];
    for (const oracle of config.oracleUrls) {
      const answer = await askOracle(oracle, epoch);
      answers.push(answer);
      // The first oracle holding the epoch is enough: the leader drives the committee.
      if ("status" in answer && answer.status === 200 && answer.body.epoch === epoch.toString()) break;
    }
    const outcome = closeOutcome(epoch, answers);
    closes.inc({ outcome: outcome.action });
    if (outcome.action === "retry") throw new KeeperJobError(`close of epoch ${epoch}: ${outcome.reason}`);
    if (outcome.action === "nothing") return `nothing to close: ${outcome.reason}`;
    await ctx.recordAction(key, "epoch-close", null, {
      epoch: epoch.toString(),
      oracle: outcome.oracle,
      state: outcome.state,
    });
    if (epoch > highest) {
      highest = epoch;
      lastClosed.set(Number(epoch));
    }
    if (outcome.state === "building" || outcome.state === "signed") {
      // Opened, but not on chain yet (a committee member short, the RPC slow): ask again.
      throw new KeeperJobError(`epoch ${epoch} is ${outcome.state} at ${outcome.oracle}: waiting for it to be posted`);
    }
    if (outcome.state === "posted") {
      const record = await publicClient.readContract({
        address: settlement,
        abi: epochSettlementAbi,
        functionName: "settlementOf",
        args: [epoch],
      });
      const seconds = record.finalisableAt - (await ctx.chainTime());
      await scheduleFinalise(epoch, seconds > 0n ? Number(seconds) * 1000 : 0);
      logger.info({ epoch: epoch.toString(), job: finaliseJobId(chainId, epoch) }, "epoch posted: finalise scheduled");
    }
    return `epoch ${epoch} ${outcome.state} (${outcome.oracle})`;
  }

  return {
    schedulers: config.epochMs === undefined ? [] : [{ id: "epoch-close-tick", every: config.epochMs }],
    handlers: {
      "epoch-close-tick": async () => {
        const { jobId } = await closeNow();
        return jobId;
      },
      "epoch-close": async (job) => close(parseEpoch(job.data.epoch)),
    },
    closeNow,
  };
}

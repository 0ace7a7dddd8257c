// `npm run bench:oracle`: in one run on this machine, the raw rate of recovering the two EIP-712
// signatures of a receipt (viem, the code path the oracle uses) against the oracle's end-to-end
// rate from HTTP POST to a verdict durably recorded (API + BullMQ on a private Redis + workers +
// PGlite), then p50/p99 latency from POST to recorded verdict at half that peak rate. The oracle
// runs in this process; the load generator in a worker thread. Prints a table and writes
// bench/results/oracle.json.
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { Worker } from "node:worker_threads";

import { recoverTypedDataAddress } from "viem";

import { inframeshTypes } from "../sdk/eip712.ts";
import { type ReceiptJson, proofOfServingOf, receiptJsonSchema, workUnitOf } from "../sdk/receipt.ts";
import { startOracle } from "../oracle/service.ts";
import { ROLES, makeReceipt, startWorld } from "../test/oracle/world.ts";
import { PROJECT_ROOT } from "../scripts/lib/local-chain.ts";

const RAW_RECEIPTS = 2_000;
const PEAK_RECEIPTS = Number(process.env.BENCH_ORACLE_RECEIPTS ?? 4_000);
const HALF_SECONDS = 5;
const CONCURRENCY = 64;

const world = await startWorld();
try {
  console.log("signing receipts…");
  const make = async (n: number): Promise<ReceiptJson[]> => {
    const out: ReceiptJson[] = [];
    for (let i = 0; i < n; i++)
      out.push(
        await makeReceipt(world.domain, world, {
          client: ROLES.clients[i % 2]!,
          node: ROLES.nodes[Math.floor(i / 2) % 2]!,
        }),
      );
    return out;
  };
  const peakReceipts = await make(PEAK_RECEIPTS);

  // ---------------------------------------------------------------- raw two-signature recovery
  const parsed = peakReceipts.slice(0, RAW_RECEIPTS).map((r) => receiptJsonSchema.parse(r));
  const rawStart = performance.now();
  for (const r of parsed) {
    await recoverTypedDataAddress({
      domain: world.domain,
      types: inframeshTypes,
      primaryType: "WorkUnit",
      message: workUnitOf(r),
      signature: r.client_signature,
    });
    await recoverTypedDataAddress({
      domain: world.domain,
      types: inframeshTypes,
      primaryType: "ProofOfServing",
      message: proofOfServingOf(r),
      signature: r.proof_of_serving.signature,
    });
  }
  const rawRate = RAW_RECEIPTS / ((performance.now() - rawStart) / 1000);

  // ---------------------------------------------------------------- the oracle
  const verdictAt = new Map<string, number>();
  let waiter: { count: number; resolve: () => void } | undefined;
  const config = world.oracleConfig({ workerConcurrency: 32, logLevel: "warn" });
  const oracle = await startOracle(config, {
    onVerdict: (jobId) => {
      verdictAt.set(jobId, performance.timeOrigin + performance.now());
      if (waiter && verdictAt.size >= waiter.count) waiter.resolve();
    },
  });
  const load = (bodies: string[], opts: { concurrency?: number; rate?: number }) =>
    new Promise<{ sentAt: number[]; statuses: Record<string, number> }>((resolve, reject) => {
      const worker = new Worker(new URL("./oracle-load.ts", import.meta.url), {
        workerData: { url: oracle.url, bodies, ...opts },
      });
      worker.once("message", resolve);
      worker.once("error", reject);
    });
  const allVerdicts = (count: number) =>
    new Promise<void>((resolve) => {
      if (verdictAt.size >= count) resolve();
      else waiter = { count, resolve };
    });

  // Warm up (JIT, connections, caches) with a few hundred receipts.
  const warm = await make(300);
  await load(
    warm.map((r) => JSON.stringify(r)),
    { concurrency: CONCURRENCY },
  );
  await allVerdicts(warm.length);

  console.log("peak rate…");
  const base = verdictAt.size;
  const peakStart = performance.timeOrigin + performance.now();
  const peakLoad = load(
    peakReceipts.map((r) => JSON.stringify(r)),
    { concurrency: CONCURRENCY },
  );
  await allVerdicts(base + PEAK_RECEIPTS);
  const peakEnd = performance.timeOrigin + performance.now();
  const peak = await peakLoad;
  const e2eRate = PEAK_RECEIPTS / ((peakEnd - peakStart) / 1000);

  console.log("latency at half the peak rate…");
  const halfRate = Math.max(1, Math.floor(e2eRate / 2));
  const halfReceipts = await make(halfRate * HALF_SECONDS);
  const before = verdictAt.size;
  const half = await load(
    halfReceipts.map((r) => JSON.stringify(r)),
    { rate: halfRate },
  );
  await allVerdicts(before + halfReceipts.length);
  const latencies = halfReceipts
    .map((r, i) => verdictAt.get(r.work_unit.job_id)! - half.sentAt[i]!)
    .sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
  const counts = await oracle.store.countByStatus();
  await oracle.close();

  const results = {
    raw_two_signature_recoveries_per_s: Math.round(rawRate),
    e2e_receipts_per_s: Math.round(e2eRate),
    e2e_over_raw: Number((e2eRate / rawRate).toFixed(3)),
    half_load_rate_per_s: halfRate,
    half_load_p50_ms: Number(pct(50).toFixed(2)),
    half_load_p99_ms: Number(pct(99).toFixed(2)),
    receipts_verified: counts.verified,
    receipts_rejected: counts.rejected,
    http_non_2xx: Object.entries({ ...peak.statuses, ...half.statuses })
      .filter(([s]) => !s.startsWith("2"))
      .reduce((sum, [, n]) => sum + n, 0),
  };
  const rows: [string, string, string][] = [
    ["raw: recover 2 EIP-712 signatures (viem)", `${results.raw_two_signature_recoveries_per_s} receipts/s`, ""],
    [
      "end to end: POST → verdict in PGlite",
      `${results.e2e_receipts_per_s} receipts/s`,
      `${results.e2e_over_raw}× raw (target ≥ 0.5)`,
    ],
    ["p50 latency at half peak", `${results.half_load_p50_ms} ms`, `at ${halfRate}/s`],
    ["p99 latency at half peak", `${results.half_load_p99_ms} ms`, "target < 50 ms"],
    ["verified / rejected / non-2xx", `${counts.verified} / ${counts.rejected} / ${results.http_non_2xx}`, ""],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  console.log("\nOracle throughput (2 cores shared, PGlite, private Redis, hardhat node)\n" + "=".repeat(70));
  for (const [a, b, c] of rows) console.log(`${a.padEnd(width)}  ${b.padStart(18)}  ${c}`);
  const out = path.join(PROJECT_ROOT, "bench", "results", "oracle.json");
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(PROJECT_ROOT, out)}`);
} finally {
  await world.stop();
}

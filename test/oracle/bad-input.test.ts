// A generated corpus of over 10,000 malformed or hostile requests against a running oracle (real
// chain, Redis, PGlite): wrong types, missing and extra fields, huge bodies, broken JSON, forged and
// swapped signatures, other chain ids, replays, expired work units, unknown nodes and models, fees
// above max_fee. None may get a 5xx or crash the oracle; each gets a 4xx with a reason, or (when the
// shape is valid) a `rejected` verdict with a reason; and none is paid: the epoch settled after the
// corpus pays exactly the few good receipts sent among them.
//
// Slow: run alone with `npx hardhat test mocha test/oracle/bad-input.test.ts`.
import { randomBytes } from "node:crypto";

import { expect } from "chai";
import type { Hex } from "viem";

import { rewardClaimsAbi } from "../../oracle/chain.ts";
import { type RunningOracle, startOracle } from "../../oracle/service.ts";
import type { ReceiptJson } from "../../sdk/receipt.ts";
import { PRICE, ROLES, type World, makeReceipt, startWorld } from "./world.ts";

const ADMIN = { authorization: "Bearer test-admin-token-0123456789" };

/** A small deterministic PRNG (mulberry32), so a failing corpus entry can be reproduced. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOSTILE_VALUES: unknown[] = [
  null,
  0,
  -1,
  1.5,
  2 ** 64,
  Number.MAX_SAFE_INTEGER + 2,
  "",
  "x",
  "0x",
  `0x${"g".repeat(64)}`,
  `0x${"a".repeat(63)}`,
  `0x${"a".repeat(66)}`,
  "-1",
  "1e18",
  "01",
  "9".repeat(80),
  "💥".repeat(50),
  "A".repeat(10_000),
  true,
  [],
  [1, 2],
  {},
  { nested: { deeper: [null] } },
  "__proto__",
  "0x0000000000000000000000000000000000000000",
];

const PATHS: string[][] = [
  ["work_unit"],
  ["work_unit", "job_id"],
  ["work_unit", "model_ref"],
  ["work_unit", "model_ref", "model_id"],
  ["work_unit", "model_ref", "version"],
  ["work_unit", "input_hash"],
  ["work_unit", "input"],
  ["work_unit", "requested_by"],
  ["work_unit", "expires_at"],
  ["work_unit", "max_fee"],
  ["client_signature"],
  ["proof_of_serving"],
  ["proof_of_serving", "job_id"],
  ["proof_of_serving", "model_ref"],
  ["proof_of_serving", "work_unit_hash"],
  ["proof_of_serving", "output_hash"],
  ["proof_of_serving", "latency_ms"],
  ["proof_of_serving", "node_id"],
  ["proof_of_serving", "signature"],
  ["zk_proof"],
  ["zk_proof", "system"],
  ["extra_field"],
  ["work_unit", "extra_field"],
];

function mutate(receipt: ReceiptJson, rand: () => number): unknown {
  // A mutation that changes nothing (deleting an absent optional field) would send the valid,
  // genuinely signed template: mutate again until the request differs.
  const original = JSON.stringify(receipt);
  for (;;) {
    const mutated = mutateOnce(receipt, rand);
    if (JSON.stringify(mutated) !== original) return mutated;
  }
}

function mutateOnce(receipt: ReceiptJson, rand: () => number): unknown {
  const copy = JSON.parse(JSON.stringify(receipt)) as Record<string, unknown>;
  const mutations = 1 + Math.floor(rand() * 3);
  for (let m = 0; m < mutations; m++) {
    const path = PATHS[Math.floor(rand() * PATHS.length)]!;
    let target = copy as Record<string, unknown>;
    for (const key of path.slice(0, -1)) {
      if (typeof target[key] !== "object" || target[key] === null) target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    const last = path[path.length - 1]!;
    if (rand() < 0.15) delete target[last];
    else target[last] = HOSTILE_VALUES[Math.floor(rand() * HOSTILE_VALUES.length)];
  }
  return copy;
}

type Sent = { what: string; status: number; body: Record<string, unknown>; jobId?: string };

describe("oracle bad-input corpus (≥ 10,000 hostile requests)", function () {
  this.timeout(600_000);
  let world: World;
  let oracle: RunningOracle;
  const results: Sent[] = [];
  const good: ReceiptJson[] = [];
  const hostileShapeValid: { what: string; jobId: string }[] = [];
  /** Job ids of hostile requests the API recorded (2xx): every one must end rejected. */
  const accepted = new Set<string>();

  before(async function () {
    world = await startWorld();
    oracle = await startOracle(world.oracleConfig({ bodyLimitBytes: 64 * 1024, logLevel: "error" }));
  });

  after(async function () {
    await oracle?.close();
    await world?.stop();
  });

  async function send(
    what: string,
    init: { body: string; headers?: Record<string, string>; path?: string; method?: string },
    jobId?: string,
  ) {
    const res = await fetch(`${oracle.url}${init.path ?? "/v1/receipts"}`, {
      method: init.method ?? "POST",
      headers: { "content-type": "application/json", ...init.headers },
      ...(init.method === "GET" ? {} : { body: init.body }),
    });
    const text = await res.text();
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { unparsable: text.slice(0, 200) };
    }
    results.push({ what, status: res.status, body, ...(jobId ? { jobId } : {}) });
  }

  async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>) {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < items.length) await fn(items[next++]!);
      }),
    );
  }

  it("sends the corpus: no 5xx, every refusal a 4xx JSON {error, reason}", async function () {
    const rand = prng(20261122);
    const templates: ReceiptJson[] = [];
    for (let i = 0; i < 8; i++) templates.push(await makeReceipt(world.domain, world));
    const requests: {
      what: string;
      body: string;
      headers?: Record<string, string>;
      path?: string;
      method?: string;
      jobId?: string;
    }[] = [];

    // Shape mutations of valid receipts.
    for (let i = 0; i < 9_000; i++)
      requests.push({ what: "mutated", body: JSON.stringify(mutate(templates[i % templates.length]!, rand)) });
    // Not JSON, not an object, wrong media type, huge, deeply nested.
    const raw = [
      "",
      "{",
      "null",
      "[]",
      "[1,2,3]",
      '"string"',
      "42",
      "true",
      '{"a":',
      "\u0000\u0001",
      '{"work_unit":{}}',
    ];
    for (let i = 0; i < 300; i++) requests.push({ what: "not a receipt", body: raw[i % raw.length]! });
    for (let i = 0; i < 100; i++)
      requests.push({
        what: "wrong media type",
        body: JSON.stringify(templates[0]),
        headers: { "content-type": i % 2 ? "text/plain" : "application/x-www-form-urlencoded" },
      });
    for (let i = 0; i < 20; i++)
      requests.push({ what: "huge body", body: JSON.stringify({ ...templates[0], pad: "x".repeat(200_000 + i) }) });
    for (let i = 0; i < 50; i++)
      requests.push({ what: "deep nesting", body: `${"[".repeat(5_000 + i)}${"]".repeat(5_000 + i)}` });
    for (let i = 0; i < 100; i++)
      requests.push({
        what: "input not base64 or too big",
        body: JSON.stringify({
          ...templates[1],
          work_unit: { ...templates[1]!.work_unit, input: i % 2 ? "!!!" : "A".repeat(70_000) },
        }),
      });
    // Hostile GETs.
    const badIds = ["0x1", "x", "%00", "0x" + "z".repeat(64), "..%2F..%2Fetc%2Fpasswd", "1".repeat(500)];
    for (let i = 0; i < 120; i++)
      requests.push({ what: "bad job id", body: "", method: "GET", path: `/v1/receipts/${badIds[i % badIds.length]}` });
    for (let i = 0; i < 60; i++)
      requests.push({
        what: "bad epoch",
        body: "",
        method: "GET",
        path: `/v1/epochs/${["-1", "1.5", "abc", "99999999999999999999999"][i % 4]}`,
      });
    for (let i = 0; i < 60; i++)
      requests.push({ what: "unknown route", body: "{}", path: `/v1/${randomBytes(4).toString("hex")}` });
    for (let i = 0; i < 40; i++)
      requests.push({
        what: "close without token",
        body: "{}",
        path: "/v1/epochs/close",
        headers: i % 2 ? { authorization: "Bearer wrong-token-wrong-token" } : {},
      });
    for (let i = 0; i < 40; i++)
      requests.push({
        what: "bad sign request",
        body: JSON.stringify({ settlement: { epoch: "x" } }),
        path: `/v1/epochs/${i}/sign`,
      });

    // Shape-valid but hostile: each must end `rejected` with a reason, never paid.
    const valid = async (what: string, receipt: ReceiptJson) => {
      hostileShapeValid.push({ what, jobId: receipt.work_unit.job_id });
      requests.push({ what, body: JSON.stringify(receipt), jobId: receipt.work_unit.job_id });
    };
    for (let i = 0; i < 60; i++) {
      const r = await makeReceipt(world.domain, world);
      await valid("forged client signature", { ...r, client_signature: `0x${randomBytes(65).toString("hex")}` });
      const s = await makeReceipt(world.domain, world);
      await valid("forged node signature", {
        ...s,
        proof_of_serving: { ...s.proof_of_serving, signature: `0x${randomBytes(65).toString("hex")}` },
      });
      const w = await makeReceipt(world.domain, world);
      await valid("swapped signatures", {
        ...w,
        client_signature: w.proof_of_serving.signature,
        proof_of_serving: { ...w.proof_of_serving, signature: w.client_signature },
      });
    }
    for (let i = 0; i < 25; i++) {
      await valid("other chain id", await makeReceipt({ ...world.domain, chainId: 1 + i }, world));
      await valid(
        "other settlement contract",
        await makeReceipt({ ...world.domain, verifyingContract: `0x${randomBytes(20).toString("hex")}` }, world),
      );
      await valid("expired", await makeReceipt(world.domain, world, { expiresAt: BigInt(1_000 + i) }));
      await valid("unknown node", await makeReceipt(world.domain, world, { node: ROLES.stranger }));
      await valid("unknown model", await makeReceipt(world.domain, world, { modelId: 50n + BigInt(i) }));
      await valid("unknown version", await makeReceipt(world.domain, world, { version: 3n }));
      await valid("fee above max", await makeReceipt(world.domain, world, { maxFee: PRICE - 1n - BigInt(i) }));
      await valid(
        "client signs for someone else",
        await makeReceipt(world.domain, world, { clientSigner: ROLES.clients[1]! }),
      );
    }
    // A few good receipts among them, each also replayed identically and replayed with a changed body.
    for (let i = 0; i < 10; i++) {
      const r = await makeReceipt(world.domain, world, { client: ROLES.clients[i % 2]!, node: ROLES.nodes[i % 2]! });
      good.push(r);
      requests.push({ what: "good", body: JSON.stringify(r), jobId: r.work_unit.job_id });
    }

    // Order: shuffled, but every good receipt before its replays.
    for (let i = requests.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [requests[i], requests[j]] = [requests[j]!, requests[i]!];
    }
    await pool(requests, 32, (r) => send(r.what, r, r.jobId));
    for (const r of good) {
      await send("identical replay", { body: JSON.stringify(r) });
      const changed = await makeReceipt(world.domain, world, { jobId: r.work_unit.job_id as Hex });
      await send("replay with a changed body", { body: JSON.stringify(changed) });
    }

    expect(results.length).to.be.at.least(10_000);
    const fiveHundreds = results.filter((r) => r.status >= 500);
    expect(fiveHundreds, JSON.stringify(fiveHundreds.slice(0, 3))).to.have.length(0);
    for (const r of results) {
      if (r.what === "good") expect(r.status, JSON.stringify(r)).to.equal(202);
      else if (r.what === "identical replay") expect(r.status).to.equal(200);
      else if (r.status === 200 || r.status === 202) {
        // Shape-valid: recorded, and must end rejected with a reason (checked in the next test).
        expect(["queued", "rejected"], `${r.what}: ${JSON.stringify(r.body)}`).to.include(r.body.status);
        accepted.add(r.body.job_id as string);
      } else if (r.jobId !== undefined) expect.fail(`${r.what} got ${r.status} ${JSON.stringify(r.body)}`);
      else if (
        r.status < 400 ||
        r.status >= 500 ||
        typeof r.body.error !== "string" ||
        typeof r.body.reason !== "string"
      )
        expect.fail(`${r.what} got ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    }
    expect(results.filter((r) => r.what === "replay with a changed body").every((r) => r.status === 409)).to.equal(
      true,
    );
    expect(results.filter((r) => r.what === "huge body").every((r) => r.status === 413)).to.equal(true);
    expect(results.filter((r) => r.what === "wrong media type").every((r) => r.status === 415)).to.equal(true);
    // The oracle is still up and ready.
    expect((await fetch(`${oracle.url}/readyz`)).status).to.equal(200);
  });

  it("records every shape-valid hostile receipt as rejected with a reason", async function () {
    const deadline = Date.now() + 120_000;
    for (const h of hostileShapeValid) {
      for (;;) {
        const s = await oracle.store.getReceipt(h.jobId);
        if (s && s.status !== "queued") {
          expect(s.status, `${h.what}: ${s.reason}`).to.equal("rejected");
          expect(s.reasonCode).to.be.a("string");
          expect(s.reason).to.be.a("string").and.not.equal("");
          break;
        }
        if (Date.now() > deadline) expect.fail(`${h.what} ${h.jobId} still queued`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const goodIds = new Set(good.map((g) => g.work_unit.job_id));
    for (const jobId of accepted) {
      if (goodIds.has(jobId)) continue;
      for (;;) {
        const s = await oracle.store.getReceipt(jobId);
        if (s?.status === "rejected") break;
        expect(s?.status, `${jobId}: ${s?.reason}`).to.equal("queued");
        if (Date.now() > deadline) expect.fail(`${jobId} still queued`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const counts = await oracle.store.countByStatus();
    expect(counts.verified).to.equal(good.length);
  });

  it("pays exactly the good receipts on chain and nothing else", async function () {
    const close = () =>
      fetch(`${oracle.url}/v1/epochs/close`, { method: "POST", headers: ADMIN }).then((r) => r.json());
    expect(await close()).to.include({ state: "posted" });
    await world.increaseTime(3_601);
    expect(await close()).to.include({ state: "funded" });
    const [funded] = await world.publicClient.readContract({
      address: world.record.contracts.rewardClaims.address,
      abi: rewardClaimsAbi,
      functionName: "totals",
    });
    expect(funded).to.equal(PRICE * BigInt(good.length));
  });
});

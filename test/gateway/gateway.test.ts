// The gateway against real parts: a `hardhat node` deployed with the deploy task, simplenet
// published on chain, real node agents (process runtime, onnxruntime; one as a child process that
// is SIGKILLed), a real `redis-server` shared by two gateway instances, real signatures.
//
// Slow (child processes): run alone with `npx hardhat test mocha test/gateway/gateway.test.ts`.
import path from "node:path";
import { Writable } from "node:stream";

import { expect } from "chai";
import { pino } from "pino";
import { parseAbi, sha256, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { Wallet } from "ethers";
import { writeFile } from "node:fs/promises";

import { generateApiKey, parseApiKey } from "../../gateway/api-keys.ts";
import { KEYSTORE_PASSWORD_ENV } from "../../gateway/client-accounts.ts";
import { signHeartbeat } from "../../gateway/heartbeat.ts";
import type { Gateway } from "../../gateway/server.ts";
import { encodeInferInput } from "../../models/simplenet/contract.ts";
import {
  startInferenceNetwork,
  TOKEN,
  type InferenceNetwork,
  type Operator,
  type RunningAgent,
} from "../../scripts/lib/inference-network.ts";
import { hashWorkUnit, recoverProofOfServingSigner } from "../../sdk/eip712.ts";
import { proofOfServingOf, workUnitJsonSchema, workUnitOf, type ProofOfServingJson } from "../../sdk/receipt.ts";
import { publishVersion, setMatureModel, registerModel } from "../../sdk/models.ts";
import { transferStakeToken } from "../../sdk/staking.ts";

const MISBEHAVING = path.join(import.meta.dirname, "..", "agent", "fixtures", "misbehaving-model-server.ts");
const CLIENT_KEY = generatePrivateKey();
const KEYSTORE_PASSWORD = "gateway custodial keystore password";

interface CallResult {
  status: number;
  json: Record<string, unknown>;
  headers: Headers;
}

async function call(
  gateway: string,
  model: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<CallResult> {
  const response = await fetch(`${gateway}/inference/v1/model/${model}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return {
    status: response.status,
    json: (await response.json()) as Record<string, unknown>,
    headers: response.headers,
  };
}

const inputOf = (first: number) => encodeInferInput([first, ...Array.from({ length: 15 }, (_, i) => i / 4 - 2)]);
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const nodesOf = async (gateway: Gateway) => (await gateway.refreshNodes()).map((n) => n.node).sort();

describe("gateway (real agents, chain, Redis)", function () {
  this.timeout(300_000);

  let net: InferenceNetwork;
  let honest: RunningAgent[]; // [A (20k stake), B, C (child process)]
  let faulty: RunningAgent; // D: its model hangs, fails, answers garbage or crashes on demand
  let corrupt: RunningAgent; // E: the same model server, never asked to fail: a fixed wrong output
  let g1: Gateway;
  let g2: Gateway;
  let beats: { stop(): Promise<void> }[];
  const client = privateKeyToAccount(CLIENT_KEY);
  const keystoreClientKey = generatePrivateKey();
  const keystoreClient = privateKeyToAccount(keystoreClientKey);
  const key1 = generateApiKey();
  const key2 = generateApiKey();
  const tight = generateApiKey();
  const logLines: string[] = [];
  const logger = pino(
    { level: "debug" },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString());
        done();
      },
    }),
  );

  before(async function () {
    net = await startInferenceNetwork("local-test-gateway");
    const operators: Operator[] = [];
    for (const tokens of [20_000n, 10_000n, 10_000n, 10_000n, 10_000n]) operators.push(await net.addOperator(tokens));
    const [a, b, c, d, e] = operators as [Operator, Operator, Operator, Operator, Operator];
    honest = [await net.startAgent(a), await net.startAgent(b), await net.startAgent(c, { child: true })];
    faulty = await net.startAgent(d, { agentOptions: { modelServer: MISBEHAVING } });
    corrupt = await net.startAgent(e, { agentOptions: { modelServer: MISBEHAVING } });

    const keystore = path.join(net.work, "client-keystore.json");
    await writeFile(keystore, await new Wallet(keystoreClientKey).encrypt(KEYSTORE_PASSWORD));
    const env = { CLIENT_KEY, [KEYSTORE_PASSWORD_ENV]: KEYSTORE_PASSWORD };
    const config = {
      api_keys: [
        // Room for the 200-call test at any speed: the default bucket (100, +50/s) is its own test.
        {
          ...key1.record,
          client: { private_key_env: "CLIENT_KEY" },
          rate_limit: { capacity: 1_000, refill_per_second: 500 },
        },
        { ...key2.record, client: { keystore } },
        {
          ...tight.record,
          client: { private_key_env: "CLIENT_KEY" },
          rate_limit: { capacity: 3, refill_per_second: 0.01 },
        },
      ],
      heartbeats: { max_age_ms: 1_500, max_future_ms: 2_000 },
      routing: {
        forward_timeout_ms: 1_000,
        max_attempts: 3,
        down_cooldown_ms: 2_000,
        node_refresh_ms: 100,
        max_redundancy: 3,
      },
    };
    g1 = await net.startGateway(config, { env, logger });
    g2 = await net.startGateway(config, { env, logger });
    beats = honest.map((agent) => net.heartbeats(agent, [g1.url], 250));
    const expected = honest.map((h) => h.operator.account.address).sort();
    await waitFor("both gateways to see the three honest nodes", async () => {
      const [s1, s2] = [await nodesOf(g1), await nodesOf(g2)];
      return JSON.stringify(s1) === JSON.stringify(expected) && JSON.stringify(s2) === JSON.stringify(expected);
    });
  });

  after(async function () {
    for (const b of beats ?? []) await b.stop();
    await net?.stop();
  });

  it("serves a call made with an API key: the gateway signs the work unit for the key's client", async function () {
    const input = inputOf(0.5);
    const { status, json } = await call(
      g1.url,
      "simplenet",
      { input: b64(input) },
      { authorization: `Bearer ${key1.key}` },
    );
    expect(status, JSON.stringify(json)).to.equal(200);
    const output = Buffer.from(json.output as string, "base64");
    expect((JSON.parse(output.toString()) as { output: number[] }).output).to.have.length(8);
    expect(json.output_hash).to.equal(sha256(output));
    const proof = json.proof_of_serving as ProofOfServingJson;
    expect(json.node_id).to.be.oneOf(honest.map((h) => h.operator.account.address));
    const signer = await recoverProofOfServingSigner(
      net.domain,
      proofOfServingOf({ proof_of_serving: proof as never }),
      proof.signature as Hex,
    );
    expect(signer).to.equal(json.node_id);
    expect(proof.job_id).to.equal(json.job_id);
  });

  it("unlocks a custodial client key from an encrypted keystore", async function () {
    const { status, json } = await call(g2.url, "simplenet", { input: b64(inputOf(1.5)) }, { "x-api-key": key2.key });
    expect(status, JSON.stringify(json)).to.equal(200);
  });

  it("serves a client-signed work unit unchanged, and the same input gives every honest node the same output hash", async function () {
    const body = await net.signedCall(client, inputOf(0.25));
    const first = await call(g2.url, "simplenet", body);
    expect(first.status, JSON.stringify(first.json)).to.equal(200);
    expect(first.json.job_id).to.equal(body.work_unit.job_id);
    const hashes = new Set<unknown>();
    for (let i = 0; i < 6; i++) {
      hashes.add((await call(g1.url, "simplenet", await net.signedCall(client, inputOf(0.25)))).json.output_hash);
    }
    expect([...hashes]).to.deep.equal([first.json.output_hash]);
  });

  it("serves 200 calls through two instances with one agent SIGKILLed midway, every call answered", async function () {
    const victim = honest[2]!;
    // A and B report themselves fully loaded, so the victim ranks first and the kill interrupts
    // calls it is serving (with equal loads, A's larger stake would take every call).
    const loaded = async (load: number) => {
      for (const i of [0, 1]) {
        await beats[i]!.stop();
        beats[i] = net.heartbeats(honest[i]!, [g1.url], 250, load);
      }
      await waitFor(`the gateways to see A and B at load ${load}`, async () => {
        const nodes = await g1.refreshNodes();
        return [0, 1].every((i) => nodes.find((n) => n.node === honest[i]!.operator.account.address)?.load === load);
      });
    };
    await loaded(1);
    try {
      const byNode = (rs: CallResult[]) =>
        rs.reduce<Record<string, number>>(
          (m, r) => ({ ...m, [String(r.json.node_id)]: (m[String(r.json.node_id)] ?? 0) + 1 }),
          {},
        );
      const results: CallResult[] = [];
      let done = 0;
      let killedAt = -1;
      const worker = async (w: number) => {
        while (done + 0 < 200) {
          const i = done++;
          if (i === 100) {
            victim.kill();
            await beats[2]!.stop();
            killedAt = i;
          }
          const gateway = (i + w) % 2 === 0 ? g1 : g2;
          results.push(
            await call(
              gateway.url,
              "simplenet",
              { input: b64(inputOf(i / 10)) },
              { authorization: `Bearer ${key1.key}` },
            ),
          );
        }
      };
      await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
      expect(killedAt).to.equal(100);
      expect(results).to.have.length(200);
      const failed = results.filter((r) => r.status !== 200);
      expect(
        failed.map((r) => r.json),
        "every call answered",
      ).to.deep.equal([]);
      const servedBy = new Set(results.map((r) => r.json.node_id));
      expect(
        servedBy.has(victim.operator.account.address),
        `the victim served calls before it died: ${JSON.stringify(byNode(results))}`,
      ).to.equal(true);
      expect(
        results.some((r) => (r.json.attempts as number) > 1),
        "some calls failed over",
      ).to.equal(true);
      expect(await victim.process!.exited).to.deep.include({ signal: "SIGKILL" });
      // Each forward is recorded for the keeper's SLA watch: the calls the victim took and dropped
      // (or could not take) are failed attempts, with the client-signed work unit kept beside them.
      const victimId = victim.operator.account.address;
      const victimFaults = async () => (await g1.store.attemptsToCheck(Date.now())).filter((r) => r.node === victimId);
      await waitFor("the victim's failed attempts to be recorded", async () => {
        const records = await victimFaults();
        return records.length > 0 && records.every((r) => r.status === "failed");
      });
      for (const record of await victimFaults()) {
        expect(["dropped", "unreachable", "timeout"], JSON.stringify(record)).to.include(record.failure);
        expect(record.deadline - record.sent_at).to.be.greaterThan(0);
        expect(record.work_unit_hash).to.match(/^0x[0-9a-f]{64}$/);
        const signed = await g1.store.signedWorkUnit(record.job_id);
        expect(signed?.work_unit.job_id, "the signed work unit is kept").to.equal(record.job_id);
        expect(signed?.client_signature).to.match(/^0x[0-9a-f]{130}$/);
      }
      await waitFor(
        "the dead node's heartbeat to expire",
        async () => !(await nodesOf(g1)).includes(victim.operator.account.address),
      );
    } finally {
      await loaded(0);
    }
  });

  describe("fails over transparently when a node's model fails", function () {
    // Each case on a fresh instance (own Redis prefix, so fresh statistics): D reports itself idle
    // and A fully loaded, so D ranks first; D's model server misbehaves on the first input value
    // (test/agent/fixtures/misbehaving-model-server.ts).
    const cases: [string, number][] = [
      ["hangs past the deadline", 2],
      ["answers 500", 4],
      ["answers 200 with garbage", 3],
      ["crashes", 1],
      ["runs out of memory", 5],
    ];
    // After a crash the agent restarts D's model server with a backoff: wait, so each case meets
    // its own failure rather than the restart's 503.
    beforeEach(async function () {
      await waitFor(
        "D's model server to be up",
        async () => (await fetch(`${faulty.url}/healthz`)).status === 200,
        30_000,
      );
    });
    for (const [what, first] of cases) {
      it(`the model ${what}: answered by the next node`, async function () {
        const prefix = `fo-${first}:`;
        const gateway = await net.startGateway({
          redis: { url: net.redis.url, prefix },
          heartbeats: { max_age_ms: 60_000, max_future_ms: 2_000 },
          routing: {
            forward_timeout_ms: 1_000,
            max_attempts: 3,
            down_cooldown_ms: 60_000,
            node_refresh_ms: 100,
            max_redundancy: 3,
          },
        });
        await net.heartbeatOnce(faulty, [gateway.url], 0);
        await net.heartbeatOnce(honest[0]!, [gateway.url], 1);
        await gateway.refreshNodes();
        const signed = await net.signedCall(client, inputOf(first));
        const { status, json } = await call(gateway.url, "simplenet", signed);
        expect(status, JSON.stringify(json)).to.equal(200);
        expect(json.node_id).to.equal(honest[0]!.operator.account.address);
        expect(json.attempts).to.equal(2);
        // Both forwards are recorded for the keeper, after the answer (off the call's path), with
        // the EIP-712 digest the client signed.
        const jobId = signed.work_unit.job_id;
        const digest = hashWorkUnit(
          gateway.domain,
          workUnitOf({ work_unit: workUnitJsonSchema.parse(signed.work_unit) }),
        );
        await waitFor("both attempts to be recorded", async () => {
          const a = await gateway.store.attempt(jobId, faulty.operator.account.address);
          const b = await gateway.store.attempt(jobId, honest[0]!.operator.account.address);
          return a?.status === "failed" && b?.status === "answered";
        });
        for (const node of [faulty, honest[0]!]) {
          const record = (await gateway.store.attempt(jobId, node.operator.account.address))!;
          expect(record.work_unit_hash, JSON.stringify(record)).to.equal(digest);
          expect(record.finished_at).to.be.at.least(record.sent_at);
        }
        expect((await gateway.store.signedWorkUnit(jobId))?.client_signature).to.equal(signed.client_signature);
        const down = (await gateway.refreshNodes()).find((n) => n.node === faulty.operator.account.address)!;
        expect(down.stats.failures).to.equal(1);
        expect(down.downUntil).to.be.greaterThan(Date.now());
        await gateway.stop();
      });
    }
  });

  describe("quorum", function () {
    it("r=3: answers with the honest majority and records the dissenting node's signed proof", async function () {
      const gateway = await net.startGateway({
        redis: { url: net.redis.url, prefix: "q3:" },
        heartbeats: { max_age_ms: 60_000, max_future_ms: 2_000 },
      });
      for (const agent of [honest[0]!, honest[1]!, corrupt]) await net.heartbeatOnce(agent, [gateway.url]);
      await gateway.refreshNodes();
      const { status, json } = await call(gateway.url, "simplenet", {
        ...(await net.signedCall(client, inputOf(7))),
        redundancy: 3,
      });
      expect(status, JSON.stringify(json)).to.equal(200);
      const quorum = json.quorum as { nodes: string[]; dissenting: string[]; evidence: string[] };
      expect(quorum.nodes.sort()).to.deep.equal([honest[0]!, honest[1]!].map((h) => h.operator.account.address).sort());
      expect(quorum.dissenting).to.deep.equal([corrupt.operator.account.address]);
      expect(json.node_id).to.not.equal(corrupt.operator.account.address);
      const evidence = await gateway.store.evidence();
      expect([...evidence.keys()]).to.deep.equal(quorum.evidence);
      const record = evidence.get(quorum.evidence[0]!)!;
      expect(record.node).to.equal(corrupt.operator.account.address);
      expect(record.majority_output_hash).to.equal(json.output_hash);
      expect(record.output_hash).to.not.equal(json.output_hash);
      const signer = await recoverProofOfServingSigner(
        net.domain,
        proofOfServingOf({ proof_of_serving: record.proof_of_serving as never }),
        record.proof_of_serving.signature as Hex,
      );
      expect(signer).to.equal(corrupt.operator.account.address);
      await gateway.stop();
    });

    it("r=2: the node with more stake wins (A 20k vs E 10k), E's proof is evidence", async function () {
      const gateway = await net.startGateway({
        redis: { url: net.redis.url, prefix: "q2:" },
        heartbeats: { max_age_ms: 60_000, max_future_ms: 2_000 },
      });
      for (const agent of [honest[0]!, corrupt]) await net.heartbeatOnce(agent, [gateway.url]);
      await gateway.refreshNodes();
      const { status, json } = await call(gateway.url, "simplenet", {
        ...(await net.signedCall(client, inputOf(9))),
        redundancy: 2,
      });
      expect(status, JSON.stringify(json)).to.equal(200);
      expect(json.node_id).to.equal(honest[0]!.operator.account.address);
      expect((json.quorum as { dissenting: string[] }).dissenting).to.deep.equal([corrupt.operator.account.address]);
      expect((await gateway.store.evidence()).size).to.equal(1);
      await gateway.stop();
    });

    it("refuses a redundancy above the node count with a 503 and above the maximum with a 400", async function () {
      const many = await call(
        g1.url,
        "simplenet",
        { input: b64(inputOf(1)), redundancy: 3 },
        { authorization: `Bearer ${key1.key}` },
      );
      expect([many.status, many.json.error]).to.deep.equal([503, "quorum_unavailable"]);
      const over = await call(
        g1.url,
        "simplenet",
        { input: b64(inputOf(1)), redundancy: 4 },
        { authorization: `Bearer ${key1.key}` },
      );
      expect([over.status, over.json.error]).to.deep.equal([400, "bad_request"]);
    });
  });

  describe("bad input: a 4xx with a reason, never a 5xx", function () {
    const auth = () => ({ authorization: `Bearer ${key1.key}` });
    it("at POST /inference/v1/model/:name", async function () {
      const signed = await net.signedCall(client, inputOf(1));
      const forged = await net.signedCall(privateKeyToAccount(generatePrivateKey()), inputOf(1));
      const cases: [string, () => Promise<CallResult>, number, string][] = [
        ["unknown model", async () => call(g1.url, "nosuch", { input: b64(inputOf(1)) }, auth()), 404, "unknown_model"],
        ["bad model name", async () => call(g1.url, "Bad%20Name", { input: "AA==" }, auth()), 400, "bad_model_name"],
        [
          "wrong API key",
          async () => call(g1.url, "simplenet", { input: "AA==" }, { authorization: `Bearer ${generateApiKey().key}` }),
          401,
          "bad_api_key",
        ],
        [
          "malformed API key",
          async () => call(g1.url, "simplenet", { input: "AA==" }, { "x-api-key": "letmein" }),
          401,
          "bad_api_key",
        ],
        ["no credentials", async () => call(g1.url, "simplenet", { input: "AA==" }), 401, "unauthenticated"],
        ["not JSON", async () => call(g1.url, "simplenet", "{oops", auth()), 400, "bad_json"],
        ["empty body", async () => call(g1.url, "simplenet", "", auth()), 400, "bad_json"],
        ["input not base64", async () => call(g1.url, "simplenet", { input: "!!!" }, auth()), 400, "bad_request"],
        [
          "unknown field",
          async () => call(g1.url, "simplenet", { input: "AA==", extra: 1 }, auth()),
          400,
          "bad_request",
        ],
        [
          "redundancy 0",
          async () => call(g1.url, "simplenet", { input: "AA==", redundancy: 0 }, auth()),
          400,
          "bad_request",
        ],
        [
          "model the node rejects",
          async () => call(g1.url, "simplenet", { input: b64(Buffer.from("[1,2]")) }, auth()),
          400,
          "model_rejected_input",
        ],
        [
          "signed unit, bad signature",
          async () => call(g1.url, "simplenet", { ...signed, client_signature: "0x1234" }),
          400,
          "bad_request",
        ],
        [
          "signed unit, forged signature",
          async () =>
            call(g1.url, "simplenet", { ...forged, work_unit: { ...forged.work_unit, requested_by: client.address } }),
          401,
          "bad_signature",
        ],
        [
          "signed unit, expired",
          async () => call(g1.url, "simplenet", await net.signedCall(client, inputOf(1), { expiresAt: 1n })),
          400,
          "expired",
        ],
        [
          "signed unit, fee too low",
          async () => call(g1.url, "simplenet", await net.signedCall(client, inputOf(1), { maxFee: 1n })),
          402,
          "fee_too_low",
        ],
        [
          "signed unit, other model id",
          async () => call(g1.url, "simplenet", await net.signedCall(client, inputOf(1), { modelId: 99n })),
          400,
          "wrong_model",
        ],
        [
          "signed unit, other version",
          async () => call(g1.url, "simplenet", await net.signedCall(client, inputOf(1), { modelVersion: 5n })),
          409,
          "wrong_version",
        ],
        [
          "signed unit, input not its hash",
          async () =>
            call(g1.url, "simplenet", { ...signed, work_unit: { ...signed.work_unit, input: b64(inputOf(2)) } }),
          400,
          "input_hash_mismatch",
        ],
        [
          "signed unit, no input",
          async () => call(g1.url, "simplenet", { ...signed, work_unit: { ...signed.work_unit, input: undefined } }),
          400,
          "missing_input",
        ],
        [
          "body too large",
          async () => call(g1.url, "simplenet", JSON.stringify({ input: "A".repeat(13 * 1024 * 1024) }), auth()),
          413,
          "entity.too.large",
        ],
        [
          "body too large, streamed without a length",
          async () => {
            const chunk = new TextEncoder().encode("A".repeat(1024 * 1024));
            let sent = 0;
            const body = new ReadableStream<Uint8Array>({
              pull(controller) {
                if (sent++ < 13) controller.enqueue(chunk);
                else controller.close();
              },
            });
            const response = await fetch(`${g1.url}/inference/v1/model/simplenet`, {
              method: "POST",
              headers: { "content-type": "application/json", ...auth() },
              body,
              duplex: "half",
            } as RequestInit);
            return {
              status: response.status,
              json: (await response.json()) as Record<string, unknown>,
              headers: response.headers,
            };
          },
          413,
          "entity.too.large",
        ],
      ];
      for (const [what, run, status, code] of cases) {
        const r = await run();
        expect([r.status, r.json.error], `${what}: ${JSON.stringify(r.json)}`).to.deep.equal([status, code]);
        expect(r.json.reason, what).to.be.a("string").and.not.equal("");
      }
    });

    it("at POST /v1/heartbeats: forged, replayed, unregistered, malformed", async function () {
      const post = async (body: unknown) => {
        const r = await fetch(`${g1.url}/v1/heartbeats`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: typeof body === "string" ? body : JSON.stringify(body),
        });
        return { status: r.status, json: (await r.json()) as Record<string, unknown> };
      };
      const a = honest[0]!.operator.account;
      const hb = {
        chain_id: net.record.chainId,
        node: a.address,
        endpoint: honest[0]!.url,
        models: [1],
        load: 0,
        hardware: { cpus: 1, memory_bytes: 1, gpus: [] },
        timestamp: Date.now(),
      };
      const signed = await signHeartbeat(a, hb);
      expect((await post(signed)).status).to.equal(202);
      expect(await post(signed)).to.deep.include({ status: 409 });
      const forged = await signHeartbeat(privateKeyToAccount(generatePrivateKey()), { ...hb, timestamp: Date.now() });
      expect((await post(forged)).json.error).to.equal("bad_signature");
      const stranger = privateKeyToAccount(generatePrivateKey());
      const unregistered = await signHeartbeat(stranger, { ...hb, node: stranger.address });
      expect((await post(unregistered)).json).to.deep.include({ error: "unregistered_node" });
      for (const body of [
        "nope",
        {},
        { heartbeat: hb },
        { heartbeat: { ...hb, load: "high" }, signature: signed.signature },
      ]) {
        const r = await post(body);
        expect(r.status, JSON.stringify(r.json)).to.equal(400);
        expect(r.json.reason).to.be.a("string");
      }
    });

    it("at unknown routes", async function () {
      const r = await fetch(`${g1.url}/inference/v2/x`, { method: "POST" });
      expect(r.status).to.equal(404);
    });
  });

  it("rate-limits per key across both instances: 429 with Retry-After once the shared bucket is empty", async function () {
    const headers = { authorization: `Bearer ${tight.key}` };
    // Calls to an unknown model still draw from the bucket (the limit comes first) and load no node.
    expect((await call(g1.url, "nosuch", { input: "AA==" }, headers)).status).to.equal(404);
    expect((await call(g2.url, "nosuch", { input: "AA==" }, headers)).status).to.equal(404);
    expect((await call(g1.url, "nosuch", { input: "AA==" }, headers)).status).to.equal(404);
    for (const g of [g2, g1]) {
      const r = await call(g.url, "simplenet", { input: b64(inputOf(1)) }, headers);
      expect([r.status, r.json.error]).to.deep.equal([429, "rate_limited"]);
      expect(Number(r.headers.get("retry-after"))).to.be.greaterThan(0);
    }
    // Another key is not affected.
    expect(
      (await call(g2.url, "simplenet", { input: b64(inputOf(1)) }, { authorization: `Bearer ${key1.key}` })).status,
    ).to.equal(200);
  });

  describe("access policy from ModelRegistry, enforced before routing", function () {
    const registryWrite = parseAbi(["function setAllowlisted(uint256 modelId, address[] accounts, bool allowed)"]);
    const publishGated = async (name: string, access: { kind: number; token: Address; threshold: bigint }) => {
      const contracts = { publicClient: net.publicClient, modelRegistry: net.record.contracts.modelRegistry.address };
      const { modelId } = await registerModel(contracts, net.deployer, name);
      const manifestHash = "ab".repeat(32);
      await publishVersion(contracts, net.deployer, modelId, {
        version: "1.0.0",
        descriptorHash: `0x${"01".repeat(32)}`,
        manifestHash,
        shardRoot: `0x${"02".repeat(32)}`,
        shardCount: 1,
        price: 1n,
        zkVerifier: "0x0000000000000000000000000000000000000000",
        verifyingKeyHash: `0x${"00".repeat(32)}`,
        access,
      });
      await setMatureModel(contracts, net.deployer, modelId, manifestHash, 1n);
      return modelId;
    };

    it("allowlist: 403 until the publisher allowlists the client, then routed (no node serves it: 503)", async function () {
      const modelId = await publishGated("gated", {
        kind: 1,
        token: "0x0000000000000000000000000000000000000000",
        threshold: 0n,
      });
      const denied = await call(g1.url, "gated", { input: "AA==" }, { authorization: `Bearer ${key1.key}` });
      expect([denied.status, denied.json.error]).to.deep.equal([403, "access_denied"]);
      const hash = await net.deployer.writeContract({
        address: net.record.contracts.modelRegistry.address,
        abi: registryWrite,
        functionName: "setAllowlisted",
        args: [modelId, [client.address], true],
      });
      await net.publicClient.waitForTransactionReceipt({ hash });
      await waitFor(
        "the allowlist to reach the gateway",
        async () =>
          (await call(g1.url, "gated", { input: "AA==" }, { authorization: `Bearer ${key1.key}` })).status === 503,
      );
    });

    it("ERC-20 holders: 403 below the threshold, routed once the client holds enough", async function () {
      await publishGated("holders", { kind: 2, token: net.staking.stakeToken, threshold: 5n * TOKEN });
      const denied = await call(g2.url, "holders", { input: "AA==" }, { "x-api-key": key2.key });
      expect([denied.status, denied.json.error]).to.deep.equal([403, "access_denied"]);
      expect(denied.json.reason).to.include("holds 0");
      await transferStakeToken(net.staking, net.deployer, keystoreClient.address, 5n * TOKEN);
      await waitFor(
        "the balance to reach the gateway",
        async () => (await call(g2.url, "holders", { input: "AA==" }, { "x-api-key": key2.key })).status === 503,
      );
    });
  });

  it("never writes an API key or a client key to its logs, and tags every line of a call with its request id", async function () {
    const text = logLines.join("");
    expect(text.length).to.be.greaterThan(0);
    for (const secret of [key1.key, key2.key, tight.key, CLIENT_KEY.slice(2), parseApiKey(key1.key).secret]) {
      expect(text.includes(secret)).to.equal(false);
    }
    const warn = logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === "node failed; failing over");
    expect(warn?.request_id).to.be.a("string");
  });

  it("serves /healthz and /metrics", async function () {
    const health = await fetch(`${g1.url}/healthz`);
    expect(health.status).to.equal(200);
    const metrics = await (await fetch(`${g1.url}/metrics`)).text();
    expect(metrics).to.match(/inframesh_gateway_calls_total\{model="simplenet",outcome="served"\} \d+/);
    expect(metrics).to.match(/inframesh_gateway_failovers_total \d+/);
  });
});

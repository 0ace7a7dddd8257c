// The keeper's SLA watch and epoch close, pure parts: which attempts are violations, how they
// group into incidents, evidence bytes and hashes, slash amounts, the committee's close answers,
// the configuration of both.
import { expect } from "chai";
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { heartbeatSigner, signHeartbeat, type SignedHeartbeatRecord } from "../../gateway/heartbeat.ts";
import type { AttemptRecord } from "../../gateway/node-state.ts";
import { attemptFailureOf } from "../../gateway/node-state.ts";
import type { DissentEvidence } from "../../gateway/quorum.ts";
import { ConfigError, keeperConfig } from "../../keeper/config.ts";
import { closeOutcome } from "../../keeper/jobs.ts";
import {
  closeJobId,
  dissentEvidenceDocument,
  settledIncidents,
  silentNodes,
  slaEvidence,
  slaViolations,
  slashAmount,
  slashJobId,
  violationId,
  type HeartbeatWatch,
  type IncidentOptions,
} from "../../keeper/sla.ts";

const KEY = `0x${"11".repeat(32)}`;
const NODE_C = "0x90F79bf6EB2c4f870365E785982E1f101E93b906" as Address;
/** Hardhat's account 3: NODE_C's key, so its heartbeats carry a real signature. */
const NODE_C_KEY = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
const NODE_B = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC" as Address;
const NETWORK = { chainId: 31337, nodeStaking: "0x5FbDB2315678afecb367f032d93F642f64180aa3" as Address };
const TIMEOUT = 2_000;

function attempt(n: number, node: Address, sentAt: number, patch: Partial<AttemptRecord> = {}): AttemptRecord {
  return {
    job_id: `0x${n.toString(16).padStart(64, "0")}` as Hex,
    work_unit_hash: `0x${(n + 1000).toString(16).padStart(64, "0")}` as Hex,
    node,
    sent_at: sentAt,
    deadline: sentAt + TIMEOUT,
    status: "failed",
    failure: "dropped",
    reason: "socket hang up",
    finished_at: sentAt + 5,
    ...patch,
  };
}

const options = (now: number, patch: Partial<IncidentOptions> = {}): IncidentOptions => ({
  windowMs: 10_000,
  graceMs: 1_000,
  now,
  slashedThrough: new Map(),
  consumed: new Set(),
  ...patch,
});

describe("keeper SLA logic", function () {
  describe("slaViolations", function () {
    it("counts unanswered attempts, not bad answers, answered ones, or open ones inside their grace", function () {
      const records = [
        attempt(1, NODE_C, 1_000),
        attempt(2, NODE_C, 1_000, { failure: "timeout" }),
        attempt(3, NODE_C, 1_000, { failure: "unreachable" }),
        attempt(4, NODE_C, 1_000, { failure: "bad_answer" }),
        attempt(5, NODE_C, 1_000, { status: "answered", failure: undefined }),
        attempt(6, NODE_C, 1_000, { status: "sent", failure: undefined }),
        attempt(7, NODE_C, 9_000, { status: "sent", failure: undefined }),
      ];
      const found = slaViolations(records, 4_000, 1_000);
      expect(found.map((v) => [Number(v.attempt.job_id), v.kind])).to.deep.equal([
        [1, "dropped"],
        [2, "timeout"],
        [3, "unreachable"],
        [6, "no_answer"],
      ]);
    });

    it("sorts a forward's errors: timeout, refused, dropped", function () {
      expect(attemptFailureOf(new Error("no answer within 2000 ms"))).to.equal("timeout");
      expect(attemptFailureOf(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }))).to.equal(
        "unreachable",
      );
      expect(attemptFailureOf(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }))).to.equal("dropped");
    });
  });

  describe("settledIncidents", function () {
    const killed = [
      attempt(1, NODE_C, 10_000),
      attempt(2, NODE_C, 10_040),
      attempt(3, NODE_C, 10_100, { failure: "unreachable" }),
      attempt(4, NODE_C, 10_150),
    ];

    it("makes one incident of a node's calls dropped together, once the window has passed", function () {
      const violations = slaViolations(killed, 100_000, 1_000);
      // Last deadline 12,150 + grace 1,000 + window 10,000 = 23,150.
      expect(settledIncidents(violations, options(23_149))).to.deep.equal([]);
      const [incident, ...rest] = settledIncidents(violations, options(23_150));
      expect(rest).to.deep.equal([]);
      expect(incident!.node).to.equal(NODE_C);
      expect(incident!.violations).to.have.length(4);
      expect([incident!.from, incident!.to]).to.deep.equal([10_000, 10_150]);
    });

    it("splits a node's violations further apart than the window, and keeps nodes apart", function () {
      const records = [...killed, attempt(9, NODE_C, 30_000), attempt(8, NODE_B, 10_050)];
      const incidents = settledIncidents(slaViolations(records, 100_000, 1_000), options(100_000));
      expect(incidents.map((i) => [i.node, i.violations.length, i.from])).to.deep.equal([
        [NODE_C, 4, 10_000],
        [NODE_B, 1, 10_050],
        [NODE_C, 1, 30_000],
      ]);
    });

    it("never counts attempts an earlier slash covered, nor those inside its window", function () {
      const violations = slaViolations([...killed, attempt(5, NODE_C, 15_000)], 100_000, 1_000);
      const consumed = new Set(killed.map(violationId));
      expect(settledIncidents(violations, options(100_000, { consumed })).map((i) => i.from)).to.deep.equal([15_000]);
      // The keeper passes both: what was covered, and through when (a late straggler is the same incident).
      const slashedThrough = new Map([[NODE_C.toLowerCase(), 10_150]]);
      expect(settledIncidents(violations, options(100_000, { consumed, slashedThrough }))).to.deep.equal([]);
    });
  });

  describe("evidence", function () {
    it("gives the same bytes and sha256 for the same attempts in any order, whoever builds it", function () {
      const [incident] = settledIncidents(slaViolations(killed(), 100_000, 1_000), options(100_000));
      const reversed = { ...incident!, violations: [...incident!.violations].reverse() };
      const a = slaEvidence(NETWORK, incident!, new Map(), 10_000);
      const b = slaEvidence(NETWORK, reversed, new Map(), 10_000);
      expect(a.sha256).to.equal(b.sha256);
      expect(a.sha256).to.match(/^0x[0-9a-f]{64}$/);
      const text = new TextDecoder().decode(a.bytes);
      expect(text.startsWith('{"attempts":[{"attempt":{"deadline":')).to.equal(true);
      expect(JSON.parse(text)).to.deep.include({ kind: "sla-violation", node: NODE_C, chain_id: 31337 });
      expect(slashJobId(31337, a.sha256)).to.equal(`slash-31337-${a.sha256}`);
    });

    it("includes the signed work unit when the gateway still holds it", function () {
      const [incident] = settledIncidents(slaViolations(killed().slice(0, 1), 100_000, 1_000), options(100_000));
      const jobId = incident!.violations[0]!.attempt.job_id;
      const signed = {
        work_unit: {
          job_id: jobId,
          model_ref: { model_id: "1", version: "0" },
          input_hash: `0x${"ab".repeat(32)}`,
          requested_by: NODE_B,
          expires_at: 99,
          max_fee: "25",
        },
        client_signature: `0x${"cd".repeat(65)}` as Hex,
      };
      const without = slaEvidence(NETWORK, incident!, new Map(), 10_000);
      const withUnit = slaEvidence(NETWORK, incident!, new Map([[jobId, signed as never]]), 10_000);
      expect(withUnit.sha256).to.not.equal(without.sha256);
      const doc = JSON.parse(new TextDecoder().decode(withUnit.bytes)) as { attempts: Array<Record<string, unknown>> };
      expect(doc.attempts[0]).to.deep.include({ client_signature: signed.client_signature, violation: "dropped" });
    });

    it("seals a quorum dissent without the gateway's clock", function () {
      const dissent = {
        kind: "quorum-dissent",
        node: NODE_B,
        job_id: `0x${"01".repeat(32)}`,
      } as unknown as DissentEvidence;
      const early = dissentEvidenceDocument(NETWORK, { ...dissent, recorded_at: 1 });
      const late = dissentEvidenceDocument(NETWORK, { ...dissent, recorded_at: 2 });
      expect(early.sha256).to.equal(late.sha256);
      expect(early.node).to.equal(NODE_B);
    });

    function killed(): AttemptRecord[] {
      return [attempt(1, NODE_C, 10_000), attempt(2, NODE_C, 10_040)];
    }
  });

  describe("heartbeat loss", function () {
    const LOSS = 15_000;
    const FAR = 600_000;
    /** NODE_C's heartbeat signed at `timestamp`, as the gateway keeps it under hb-last. */
    const heartbeatAt = (timestamp: number): Promise<SignedHeartbeatRecord> =>
      signHeartbeat(privateKeyToAccount(NODE_C_KEY), {
        chain_id: 31337,
        node: NODE_C,
        endpoint: "http://127.0.0.1:9001",
        models: [1],
        load: 0.5,
        hardware: { cpus: 2, memory_bytes: 2 ** 30, gpus: [] },
        timestamp,
      });
    const watch = async (timestamp: number): Promise<HeartbeatWatch> => ({
      last: new Map([[NODE_C.toLowerCase(), await heartbeatAt(timestamp)]]),
      lossMs: LOSS,
    });
    /** NODE_C holds job 1, sent at 20,000 with a deadline ten minutes on; job 2 it answered. */
    const held = [
      attempt(1, NODE_C, 20_000, { status: "sent", failure: undefined, deadline: 20_000 + FAR }),
      attempt(2, NODE_C, 20_000, { status: "answered", failure: undefined, finished_at: 20_500 }),
      attempt(3, NODE_B, 20_000, { status: "sent", failure: undefined, deadline: 20_000 + FAR }),
    ];

    it("counts a held job as heartbeat_lost once the node's last heartbeat is older than the loss, before its deadline", async function () {
      const heartbeats = await watch(21_000); // alive after the job was sent, then silent
      expect(slaViolations(held, 21_000 + LOSS - 1, 1_000, heartbeats)).to.deep.equal([]);
      const found = slaViolations(held, 21_000 + LOSS, 1_000, heartbeats);
      // Not the answered job, and not NODE_B's: no heartbeat of it is kept, so it waits for its deadline.
      expect(found.map((v) => [Number(v.attempt.job_id), v.kind])).to.deep.equal([[1, "heartbeat_lost"]]);
      expect(found[0]!.heartbeat).to.deep.equal({ last: heartbeats.last.get(NODE_C.toLowerCase()), lossMs: LOSS });
      // The scan reads every open attempt of exactly these nodes, whatever its deadline.
      expect([...silentNodes(heartbeats, 21_000 + LOSS - 1)]).to.deep.equal([]);
      expect([...silentNodes(heartbeats, 21_000 + LOSS)]).to.deep.equal([NODE_C.toLowerCase()]);
    });

    it("counts nothing while the heartbeat is alive, nor a failure any differently", async function () {
      const alive = await watch(60_000);
      expect(slaViolations(held, 60_000 + LOSS - 1, 1_000, alive)).to.deep.equal([]);
      const dropped = attempt(4, NODE_C, 20_000);
      expect(slaViolations([dropped], 21_000 + LOSS, 1_000, await watch(21_000)).map((v) => v.kind)).to.deep.equal([
        "dropped",
      ]);
    });

    it("settles the incident a window after the loss, without waiting for the deadline", async function () {
      const heartbeats = await watch(21_000);
      const at = (now: number) => settledIncidents(slaViolations(held, now, 1_000, heartbeats), options(now));
      const lostAt = 21_000 + LOSS;
      expect(at(lostAt + 10_000 - 1)).to.deep.equal([]);
      const [incident, ...rest] = at(lostAt + 10_000);
      expect(rest).to.deep.equal([]);
      expect(incident!.violations.map((v) => v.kind)).to.deep.equal(["heartbeat_lost"]);
    });

    it("is one violation with one evidence hash before and after the deadline passes", async function () {
      const heartbeats = await watch(21_000);
      const evidenceAt = (now: number) => {
        const incidents = settledIncidents(slaViolations(held, now, 1_000, heartbeats), options(now));
        // (Late, NODE_B's held job is a no_answer incident of its own.)
        const incident = incidents.find((i) => i.node === NODE_C);
        expect(incident!.violations.map((v) => v.kind)).to.deep.equal(["heartbeat_lost"]);
        return slaEvidence(NETWORK, incident!, new Map(), 10_000);
      };
      const early = evidenceAt(21_000 + LOSS + 10_000);
      const late = evidenceAt(20_000 + FAR + 1_000 + 10_000 + 1);
      expect(late.sha256).to.equal(early.sha256);
      // Once the first slash is recorded, the attempt is consumed: nothing is left to slash later.
      const now = 20_000 + FAR + 60_000;
      const violations = slaViolations(held, now, 1_000, heartbeats);
      expect(violations.map((v) => [violationId(v.attempt), v.kind])).to.deep.equal([
        [violationId(held[0]!), "heartbeat_lost"],
        [violationId(held[2]!), "no_answer"],
      ]);
      const consumed = new Set([violationId(held[0]!)]);
      expect(settledIncidents(violations, options(now, { consumed })).map((i) => i.node)).to.deep.equal([NODE_B]);
    });

    it("puts the node's last signed heartbeat in the evidence, which anyone can check against the node", async function () {
      const heartbeats = await watch(21_000);
      const now = 21_000 + LOSS + 10_000;
      const [incident] = settledIncidents(slaViolations(held, now, 1_000, heartbeats), options(now));
      const evidence = slaEvidence(NETWORK, incident!, new Map(), 10_000);
      const doc = JSON.parse(new TextDecoder().decode(evidence.bytes)) as {
        last_heartbeat: SignedHeartbeatRecord;
        heartbeat_loss_ms: number;
        attempts: Array<{ violation: string; attempt: AttemptRecord }>;
      };
      expect(doc.heartbeat_loss_ms).to.equal(LOSS);
      expect(doc.last_heartbeat).to.deep.equal(heartbeats.last.get(NODE_C.toLowerCase()));
      expect(await heartbeatSigner(doc.last_heartbeat)).to.equal(NODE_C);
      expect(doc.last_heartbeat.heartbeat.timestamp).to.be.lessThan(now - LOSS);
      expect(doc.attempts.map((a) => [a.violation, a.attempt.status])).to.deep.equal([["heartbeat_lost", "sent"]]);
      // An incident without a lost heartbeat carries none.
      const [dropped] = settledIncidents(
        slaViolations([attempt(4, NODE_C, 20_000)], now, 1_000, heartbeats),
        options(now),
      );
      const plain = JSON.parse(new TextDecoder().decode(slaEvidence(NETWORK, dropped!, new Map(), 10_000).bytes));
      expect(plain).to.not.have.property("last_heartbeat");
    });
  });

  describe("slashAmount", function () {
    it("takes the configured share, at least 1 wei, never above the cap, nothing from nothing", function () {
      expect(slashAmount(10_000n, 5_000n, 1_000)).to.equal(1_000n);
      expect(slashAmount(10_000n, 500n, 1_000)).to.equal(500n);
      expect(slashAmount(5n, 2n, 1_000)).to.equal(1n);
      expect(slashAmount(0n, 0n, 1_000)).to.equal(0n);
      expect(slashAmount(10_000n, 0n, 1_000)).to.equal(0n);
    });
  });

  describe("closeOutcome", function () {
    it("is closed when one oracle holds the epoch, whatever the others say", function () {
      expect(
        closeOutcome(3n, [
          { oracle: "a", status: 409, body: { error: "not_leader", reason: "ask the leader" } },
          { oracle: "b", status: 200, body: { epoch: "3", state: "posted" } },
        ]),
      ).to.deep.equal({ action: "closed", oracle: "b", state: "posted" });
    });

    it("is nothing when no receipts wait or the chain moved on, and a retry otherwise", function () {
      expect(
        closeOutcome(3n, [{ oracle: "a", status: 409, body: { error: "nothing_to_settle", reason: "none" } }]),
      ).to.deep.equal({ action: "nothing", reason: "nothing_to_settle: none" });
      expect(
        closeOutcome(3n, [
          { oracle: "a", unreachable: "fetch failed" },
          { oracle: "b", status: 200, body: { epoch: "2", state: "final" } },
        ]),
      ).to.deep.equal({
        action: "retry",
        reason: "a: unreachable (fetch failed); b: still settling epoch 2 (final)",
      });
      expect(closeJobId(31337, 3n)).to.equal("close-31337-3");
    });
  });

  describe("configuration", function () {
    it("has epoch close and the SLA watch off by default", function () {
      expect(keeperConfig({ INFRAMESH_KEEPER_KEY: KEY })).to.deep.include({
        epochMs: undefined,
        oracleUrls: [],
        slaEveryMs: undefined,
        slashBps: 1_000,
        incidentWindowMs: 60_000,
        heartbeatLossMs: 15_000,
        gatewayPrefix: "inframesh:gw:",
      });
      expect(
        keeperConfig({ INFRAMESH_KEEPER_KEY: KEY, INFRAMESH_KEEPER_HEARTBEAT_LOSS_MS: "4000" }).heartbeatLossMs,
      ).to.equal(4_000);
      expect(() => keeperConfig({ INFRAMESH_KEEPER_KEY: KEY, INFRAMESH_KEEPER_HEARTBEAT_LOSS_MS: "10" })).to.throw(
        ConfigError,
        /INFRAMESH_KEEPER_HEARTBEAT_LOSS_MS must be a whole number ≥ 100, got "10"/,
      );
    });

    it("names what epoch close and the SLA watch need, and bad values", function () {
      expect(() =>
        keeperConfig({
          INFRAMESH_KEEPER_KEY: KEY,
          INFRAMESH_KEEPER_EPOCH_MS: "1000",
          INFRAMESH_KEEPER_SLA_EVERY_MS: "500",
          INFRAMESH_KEEPER_SLASH_BPS: "20000",
        }),
      )
        .to.throw(ConfigError)
        .with.property("message")
        .that.matches(/INFRAMESH_KEEPER_ORACLE_URLS is not: the oracles to ask/)
        .and.matches(/INFRAMESH_KEEPER_ORACLE_ADMIN_TOKEN is not/)
        .and.matches(/INFRAMESH_KEEPER_BLOB_PEER_URL is not/)
        .and.matches(/INFRAMESH_KEEPER_SLASH_BPS must be at most 10000, got 20000/);
      expect(() =>
        keeperConfig({ INFRAMESH_KEEPER_KEY: KEY, INFRAMESH_KEEPER_ORACLE_URLS: "http://a:1,ftp://b" }),
      ).to.throw(ConfigError, /INFRAMESH_KEEPER_ORACLE_URLS must be comma-separated http\(s\) URLs, got "ftp:\/\/b"/);
      const ok = keeperConfig({
        INFRAMESH_KEEPER_KEY: KEY,
        INFRAMESH_KEEPER_EPOCH_MS: "1000",
        INFRAMESH_KEEPER_ORACLE_URLS: "http://a:1, http://b:2",
        INFRAMESH_KEEPER_ORACLE_ADMIN_TOKEN: "secret",
      });
      expect(ok).to.deep.include({ epochMs: 1_000, oracleUrls: ["http://a:1", "http://b:2"] });
    });
  });
});

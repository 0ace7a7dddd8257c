// The auditor's pure recomputation: a batch of really signed receipts built by the oracle's own
// builder audits clean; each kind of tampering gives its specific finding. Also the balance
// replay (staking pools, shares, locks, claims, escrow) against views that agree or do not.
import { expect } from "chai";
import { type Address, type Hex, getAddress, sha256 } from "viem";

import { type AuditEvent, type ChainBalances, compareBalances, replayBalances } from "../../auditor/balances.ts";
import { modelHistory, settlementsFromEvents } from "../../auditor/audit.ts";
import { findingsCsv, formatFinding } from "../../auditor/findings.ts";
import {
  type EpochAuditInput,
  type ModelHistory,
  auditEpoch,
  unpackDebits,
  versionKey,
} from "../../auditor/settlement.ts";
import { type BuilderReceipt, buildSettlement, canonicalJson } from "../../oracle/settlement/builder.ts";
import { ZkVerifierRegistry } from "../../oracle/rules/zk.ts";
import { packDebits } from "../../sdk/earnings.ts";
import { inframeshDomain } from "../../sdk/eip712.ts";
import { receiptJsonSchema } from "../../sdk/receipt.ts";
import { PRICE, ROLES, devAccount, makeReceipt } from "../oracle/world.ts";

const domain = inframeshDomain(31337, getAddress("0x5fbdb2315678afecb367f032d315f642f64180aa"));
const MODEL = { modelId: 1n, version: 0n };
const publisher = devAccount(ROLES.publisher).address;
const treasury = devAccount(ROLES.treasury).address;
const fees = { treasury, protocolFeeBps: 500, royaltyBps: 1_000 };
const models: ModelHistory = {
  prices: new Map([[versionKey(1, 0), new Set([PRICE])]]),
  publishers: new Map([["1", new Set([publisher])]]),
  zkVerifiers: new Map([[versionKey(1, 0), null]]),
};

async function signedReceipts(n: number, options: Parameters<typeof makeReceipt>[2] = {}): Promise<BuilderReceipt[]> {
  const out: BuilderReceipt[] = [];
  for (let i = 0; i < n; i++) {
    const json = await makeReceipt(domain, MODEL, {
      client: ROLES.clients[i % 2],
      node: ROLES.nodes[i % 2],
      ...options,
    });
    const r = receiptJsonSchema.parse(json);
    out.push({
      jobId: r.work_unit.job_id,
      body: JSON.parse(JSON.stringify(json)) as Record<string, unknown>,
      client: r.work_unit.requested_by,
      node: r.proof_of_serving.node_id,
      publisher,
      fee: PRICE,
      receivedAt: 1_800_000_000,
    });
  }
  return out;
}

function inputFor(receipts: BuilderReceipt[], overrides: Partial<EpochAuditInput> = {}): EpochAuditInput {
  const built = buildSettlement({ epoch: 0n, receipts, previous: [], fees, slashToRedistribute: 0n, slashedNodes: [] });
  return {
    epoch: 0n,
    onChain: built.settlement,
    batch: built.batch,
    previous: [],
    fees,
    domain,
    models,
    zk: new ZkVerifierRegistry(),
    collectedDebits: built.debits,
    settledJobs: new Set(),
    tx: "0xabc",
    ...overrides,
  };
}

const codes = (findings: { code: string }[]) => findings.map((f) => f.code);

/** Rewrites one line of a batch (a tampered copy, as a dishonest blob peer or oracle would serve). */
function editLine(batch: Uint8Array, index: number, edit: (line: Record<string, unknown>) => void): Uint8Array {
  const lines = new TextDecoder().decode(batch).split("\n");
  const line = JSON.parse(lines[index]!) as Record<string, unknown>;
  edit(line);
  lines[index] = canonicalJson(line);
  return new TextEncoder().encode(lines.join("\n"));
}

describe("auditor: settlement recomputation (pure)", function () {
  let receipts: BuilderReceipt[];

  before(async function () {
    receipts = await signedReceipts(4);
  });

  it("finds nothing when the batch, the settlement and the debits are the oracle's", async function () {
    const audit = await auditEpoch(inputFor(receipts));
    expect(audit.findings).to.deep.equal([]);
    expect(audit.receiptCount).to.equal(4);
    expect(audit.built!.earnings.map((e) => e.account)).to.include(treasury);
  });

  it("refuses a batch whose sha256 is not the settlement's batchSha256", async function () {
    const input = inputFor(receipts);
    const tampered = editLine(input.batch, 0, (l) => (l.fee = "1"));
    const audit = await auditEpoch({ ...input, batch: tampered });
    expect(codes(audit.findings)).to.deep.equal(["batch_sha256_mismatch"]);
    expect(audit.findings[0]).to.include({ expected: input.onChain.batchSha256, actual: sha256(tampered), epoch: "0" });
    expect(audit.built).to.equal(undefined);
  });

  it("recomputes a settlement whose committed batch overcharges a client: fee above max_fee, not a price", async function () {
    // The committee signed a batch (and its sha256) in which one fee is 10× the price and above max_fee.
    const cheated = receipts.map((r, i) => (i === 0 ? { ...r, fee: PRICE * 10n } : r));
    const built = buildSettlement({
      epoch: 0n,
      receipts: cheated,
      previous: [],
      fees,
      slashToRedistribute: 0n,
      slashedNodes: [],
    });
    const audit = await auditEpoch(
      inputFor(receipts, { onChain: built.settlement, batch: built.batch, collectedDebits: built.debits }),
    );
    expect(codes(audit.findings)).to.have.members(["fee_above_max_fee", "fee_not_a_price", "fee_above_max_fee"]);
    const perClient = audit.findings.find((f) => f.account !== undefined && f.what.includes("max_fee of its signed"));
    expect(perClient?.account).to.equal(cheated[0]!.client);
  });

  it("names each settlement field that differs from the recomputation", async function () {
    const input = inputFor(receipts);
    const onChain = { ...input.onChain, fees: input.onChain.fees + 1n, earningsRoot: `0x${"11".repeat(32)}` as Hex };
    const audit = await auditEpoch({ ...input, onChain });
    expect(codes(audit.findings)).to.deep.equal(["settlement_mismatch", "settlement_mismatch"]);
    expect(audit.findings.map((f) => f.what)).to.deep.equal(["settlement field earningsRoot", "settlement field fees"]);
    expect(audit.findings[1]).to.include({ expected: input.onChain.fees.toString(), actual: onChain.fees.toString() });
  });

  it("catches a batch line whose fee split is not the fee schedule's", async function () {
    const input = inputFor(receipts);
    // A committed batch (its sha256 on chain) whose first line pays the node more than the schedule says.
    const batch = editLine(input.batch, 0, (l) => (l.node_amount = String(PRICE)));
    const audit = await auditEpoch({ ...input, batch, onChain: { ...input.onChain, batchSha256: sha256(batch) } });
    expect(codes(audit.findings)).to.deep.equal(["batch_line_mismatch", "settlement_mismatch"]);
    expect(audit.findings[1]!.what).to.equal("settlement field batchSha256");
  });

  it("catches a receipt not signed by its client, and one not signed by its node", async function () {
    const forged = [
      ...(await signedReceipts(1, { clientSigner: ROLES.stranger })),
      ...(await signedReceipts(1, { nodeSigner: ROLES.stranger })),
      ...receipts,
    ];
    const audit = await auditEpoch(inputFor(forged));
    expect(codes(audit.findings)).to.have.members(["bad_client_signature", "bad_node_signature"]);
  });

  it("catches debits collected on chain that are not the receipts' sums, and a job paid twice", async function () {
    const input = inputFor(receipts);
    const debits = input.collectedDebits!.map((d, i) => (i === 0 ? { ...d, amount: d.amount + 5n } : d));
    const audit = await auditEpoch({ ...input, collectedDebits: debits, settledJobs: new Set([receipts[1]!.jobId]) });
    expect(codes(audit.findings)).to.have.members(["debit_mismatch", "duplicate_job"]);
    const debit = audit.findings.find((f) => f.code === "debit_mismatch")!;
    expect(BigInt(debit.actual) - BigInt(debit.expected)).to.equal(5n);
  });

  it("unpacks packed debits back to clients and amounts", function () {
    const debits = [{ client: getAddress(devAccount(4).address), amount: 123n }];
    expect(unpackDebits(packDebits(debits))).to.deep.equal(debits);
  });

  it("prints a finding as a diff and exports CSV with quoting", function () {
    const f = {
      code: "settlement_mismatch" as const,
      what: 'field "fees", quoted',
      expected: "1",
      actual: "2",
      epoch: "3",
      tx: "0xab",
    };
    expect(formatFinding(f)).to.equal(
      '✗ settlement_mismatch: field "fees", quoted (epoch 3, tx 0xab)\n  - expected: 1\n  + actual:   2',
    );
    expect(findingsCsv([f])).to.equal(
      'code,epoch,account,tx,what,expected,actual\r\nsettlement_mismatch,3,,0xab,"field ""fees"", quoted",1,2\r\n',
    );
  });
});

describe("auditor: balances from events (pure)", function () {
  const node = getAddress(devAccount(1).address);
  const staker = getAddress(devAccount(2).address);
  const client = getAddress(devAccount(4).address);
  const claims = getAddress(devAccount(9).address);
  let n = 0;
  const ev = (contract: AuditEvent["contract"], event: string, args: Record<string, string>): AuditEvent => ({
    contract,
    event,
    args,
    blockNumber: ++n,
    logIndex: 0,
    txHash: `0x${n.toString(16).padStart(64, "0")}`,
  });
  const events: AuditEvent[] = [
    ev("nodeStaking", "NodeRegistered", { node }),
    ev("nodeStaking", "Staked", { node, staker: node, amount: "1000", shares: "1000000" }),
    ev("nodeStaking", "Staked", { node, staker, amount: "500", shares: "500000" }),
    ev("nodeStaking", "Unbonded", {
      node,
      staker,
      lockId: "0",
      amount: "100",
      activeShares: "100000",
      unbondingShares: "100000",
      withdrawableAt: "99",
    }),
    ev("nodeStaking", "Slashed", { node, fromActive: "70", fromUnbonding: "5" }),
    ev("nodeStaking", "RewardsAdded", { node, amount: "20" }),
    ev("nodeStaking", "SlashedStakeReleased", { recipient: claims, redistributed: "60", burned: "15" }),
    ev("paymentEscrow", "Deposited", { client, amount: "1000" }),
    ev("paymentEscrow", "DebitedPacked", { to: claims, debits: packDebits([{ client, amount: 300n }]) as never }),
    ev("rewardClaims", "DebitsCollected", { epoch: "0", redistributedSlash: "60" }),
    ev("nodeStaking", "EarningsFunded", { from: claims, amount: "360" }),
    ev("rewardClaims", "Claimed", { account: node, cumulativeAmount: "250", amount: "250" }),
    ev("nodeStaking", "EarningsPaid", { account: node, amount: "250", toStakers: "0", commissionAccrued: "250" }),
  ];
  const matching = (): ChainBalances => ({
    pools: new Map([
      [
        node,
        { activeStake: 1_350n, activeShares: 1_400_000n, unbondingStake: 95n, unbondingShares: 100_000n, scale: 0n },
      ],
    ]),
    shares: new Map([
      [`${node}/${node}`, 1_000_000n],
      [`${node}/${staker}`, 400_000n],
    ]),
    lockCounts: new Map([
      [`${node}/${node}`, 0n],
      [`${node}/${staker}`, 1n],
    ]),
    locks: new Map([[`${node}/${staker}/0`, { shares: 100_000n, withdrawableAt: 99n }]]),
    claimed: new Map([[node, 250n]]),
    commissionOwed: new Map([[node, 250n]]),
    earningsReserve: 110n,
    escrow: new Map([[client, 700n]]),
  });
  const earned = new Map([[0n, new Map<Address, bigint>([[node, 300n]])]]);

  it("replays pools, shares, locks, claims and escrow that match the chain's views", function () {
    const replayed = replayBalances(events, claims);
    expect(compareBalances(replayed, matching(), earned)).to.deep.equal([]);
    expect(replayed.slashReceived).to.equal(60n);
    expect(replayed.slashAllocated).to.equal(60n);
  });

  it("reports a staker's shares changed behind the events' back", function () {
    const actual = matching();
    actual.shares.set(`${node}/${staker}`, 400_001n);
    const findings = compareBalances(replayBalances(events, claims), actual, earned);
    expect(findings).to.have.length(1);
    expect(findings[0]).to.include({ code: "stake_mismatch", expected: "400000", actual: "400001", account: staker });
  });

  it("reports a claim above the recomputed earnings and more slash allocated than released", function () {
    const overAllocated = [...events, ev("rewardClaims", "DebitsCollected", { epoch: "1", redistributedSlash: "1" })];
    const findings = compareBalances(
      replayBalances(overAllocated, claims),
      matching(),
      new Map([[0n, new Map([[node, 200n]])]]),
    );
    expect(codes(findings)).to.deep.equal(["overclaimed", "slash_overallocated"]);
    expect(findings[0]).to.include({ expected: "≤ 200", actual: "250", epoch: "0" });
  });

  it("reports an earnings reserve that is not what was funded less what was paid", function () {
    const actual = matching();
    actual.earningsReserve = 100n;
    const findings = compareBalances(replayBalances(events, claims), actual, earned);
    expect(findings).to.have.length(1);
    expect(findings[0]).to.include({ code: "reserve_mismatch", expected: "110", actual: "100" });
  });

  it("divides lock shares by the unbonding pool's redenomination", function () {
    const redenominated = [...events, ev("nodeStaking", "UnbondingPoolRedenominated", { node, bits: "4", scale: "4" })];
    const replayed = replayBalances(redenominated, claims);
    expect(replayed.locks.get(`${node}/${staker}/0`)).to.deep.equal({ shares: 100_000n >> 4n, withdrawableAt: 99n });
    expect(replayed.pools.get(node)!.unbondingShares).to.equal(100_000n >> 4n);
  });
});

describe("auditor: settlements and model history from events (pure)", function () {
  const settlementArgs = (epoch: string, hash: string, fees: string) => ({
    epoch,
    settlementHash: hash,
    settlement: {
      epoch,
      earningsRoot: `0x${"aa".repeat(32)}`,
      totalDebits: "10",
      fees,
      royalties: "1",
      redistributedSlash: "0",
      receiptCount: "1",
      batchSha256: `0x${"bb".repeat(32)}`,
    },
  });
  let n = 0;
  const ev = (contract: AuditEvent["contract"], event: string, args: Record<string, unknown>): AuditEvent => ({
    contract,
    event,
    args: args as AuditEvent["args"],
    blockNumber: ++n,
    logIndex: 0,
    txHash: `0x${n.toString(16).padStart(64, "0")}`,
  });

  it("takes the last settlement posted per epoch: funded, final, a voided one replaced, a voided one alone", function () {
    const h = (c: string) => `0x${c.repeat(64)}`;
    const events = [
      ev("epochSettlement", "SettlementPosted", settlementArgs("0", h("1"), "5")),
      ev("epochSettlement", "SettlementFinalised", { epoch: "0", settlementHash: h("1") }),
      ev("rewardClaims", "DebitsCollected", { epoch: "0" }),
      ev("epochSettlement", "SettlementPosted", settlementArgs("1", h("2"), "6")),
      ev("epochSettlement", "SettlementVoided", { epoch: "1", settlementHash: h("2") }),
      ev("epochSettlement", "SettlementPosted", settlementArgs("1", h("3"), "7")),
      ev("epochSettlement", "SettlementFinalised", { epoch: "1", settlementHash: h("3") }),
      ev("epochSettlement", "SettlementPosted", settlementArgs("2", h("4"), "8")),
      ev("epochSettlement", "SettlementVoided", { epoch: "2", settlementHash: h("4") }),
    ];
    const settled = settlementsFromEvents(events);
    expect(settled.map((s) => [s.epoch, s.status, s.settlement.fees])).to.deep.equal([
      [0n, "funded", 5n],
      [1n, "final", 7n],
      [2n, "voided", 8n],
    ]);
    expect(settled[1]!.tx).to.equal(events[5]!.txHash);
  });

  it("collects every price, publisher and zk verifier a model version had", function () {
    const p1 = getAddress(devAccount(3).address);
    const p2 = getAddress(devAccount(6).address);
    const history = modelHistory([
      ev("modelRegistry", "ModelRegistered", { modelId: "1", publisher: p1 }),
      ev("modelRegistry", "VersionPublished", {
        modelId: "1",
        version: "0",
        input: { price: "100", zkVerifier: "0x0000000000000000000000000000000000000000" },
      }),
      ev("modelRegistry", "VersionPriceSet", { modelId: "1", version: "0", price: "120" }),
      ev("modelRegistry", "MatureModelSet", { modelId: "1", version: "0", price: "130" }),
      ev("modelRegistry", "PublisherTransferred", { modelId: "1", newPublisher: p2 }),
      ev("modelRegistry", "VersionPublished", {
        modelId: "1",
        version: "1",
        input: { price: "5", zkVerifier: p2, verifyingKeyHash: `0x${"ab".repeat(32)}` },
      }),
    ]);
    expect([...history.prices.get("1/0")!]).to.deep.equal([100n, 120n, 130n]);
    expect([...history.publishers.get("1")!]).to.deep.equal([p1, p2]);
    expect(history.zkVerifiers.get("1/0")).to.equal(null);
    expect(history.zkVerifiers.get("1/1")).to.deep.equal({
      verifier: p2,
      verifyingKeyHash: `0x${"ab".repeat(32)}`,
      weightsCommitment: null,
    });
  });
});

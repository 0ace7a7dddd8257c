// The epoch settlement builder: fee split, cumulative earnings, debits, slash redistribution and
// the canonical receipt batch, on hand-computed examples.
import { expect } from "chai";
import { type Address, getAddress, sha256 } from "viem";

import { buildEarningsTree } from "../../sdk/earnings.ts";
import {
  type BuilderReceipt,
  buildSettlement,
  canonicalJson,
  parseBatch,
  proRata,
  settlementFromJson,
  settlementToJson,
  splitFee,
} from "../../oracle/settlement/builder.ts";

const A = (n: number): Address => getAddress(`0x${n.toString(16).padStart(40, "0")}`);
const [nodeA, nodeB, nodeC, publisher, treasury, client1, client2] = [1, 2, 3, 4, 5, 6, 7].map(A) as Address[];
const fees = { treasury: treasury!, protocolFeeBps: 500, royaltyBps: 1_000 };

const receipt = (job: number, node: Address, client: Address, fee: bigint): BuilderReceipt => ({
  jobId: `0x${job.toString(16).padStart(64, "0")}`,
  body: { job },
  client,
  node,
  publisher: publisher!,
  fee,
  receivedAt: 1_700_000_000 + job,
});

describe("settlement builder", function () {
  it("splits a fee: protocol and royalty floored, the node gets the rest", function () {
    expect(splitFee(1_000n, fees)).to.deep.equal({ fee: 1_000n, protocolFee: 50n, royalty: 100n, node: 850n });
    expect(splitFee(19n, fees)).to.deep.equal({ fee: 19n, protocolFee: 0n, royalty: 1n, node: 18n });
    expect(splitFee(0n, fees)).to.deep.equal({ fee: 0n, protocolFee: 0n, royalty: 0n, node: 0n });
  });

  it("builds totals, cumulative earnings on top of the previous epoch, and per-client debits", function () {
    const built = buildSettlement({
      epoch: 3n,
      receipts: [
        receipt(2, nodeB!, client2!, 1_000n),
        receipt(1, nodeA!, client1!, 1_000n),
        receipt(3, nodeA!, client1!, 19n),
      ],
      previous: [
        { account: nodeA!, cumulativeAmount: 10n },
        { account: nodeC!, cumulativeAmount: 7n },
      ],
      fees,
      slashToRedistribute: 0n,
      slashedNodes: [],
    });
    expect(built.settlement).to.deep.include({
      epoch: 3n,
      totalDebits: 2_019n,
      fees: 100n,
      royalties: 201n,
      redistributedSlash: 0n,
      receiptCount: 3n,
    });
    expect(built.debits).to.deep.equal([
      { client: client1, amount: 1_019n },
      { client: client2, amount: 1_000n },
    ]);
    const expected = [
      { account: nodeA!, cumulativeAmount: 10n + 850n + 18n },
      { account: nodeB!, cumulativeAmount: 850n },
      { account: nodeC!, cumulativeAmount: 7n },
      { account: publisher!, cumulativeAmount: 201n },
      { account: treasury!, cumulativeAmount: 100n },
    ];
    expect(built.earnings).to.deep.equal(expected);
    expect(built.settlement.earningsRoot).to.equal(buildEarningsTree(expected).root);
    // Conservation: this epoch's new earnings equal its debits.
    const before = 17n;
    const after = built.earnings.reduce((s, e) => s + e.cumulativeAmount, 0n);
    expect(after - before).to.equal(built.settlement.totalDebits);
  });

  it("writes the batch as canonical JSON lines sorted by job id, and hashes those bytes", function () {
    const input = {
      epoch: 0n,
      receipts: [receipt(9, nodeA!, client1!, 5n), receipt(4, nodeA!, client1!, 5n)],
      previous: [],
      fees,
      slashToRedistribute: 0n,
      slashedNodes: [],
    };
    const built = buildSettlement(input);
    const lines = parseBatch(built.batch);
    expect(lines.map((l) => (l.receipt as { job: number }).job)).to.deep.equal([4, 9]);
    expect(lines[0]).to.deep.include({
      fee: "5",
      node_amount: "5",
      royalty: "0",
      protocol_fee: "0",
      received_at: 1_700_000_004,
    });
    expect(built.batchSha256).to.equal(sha256(built.batch));
    // Order of the input does not matter.
    const again = buildSettlement({ ...input, receipts: [...input.receipts].reverse() });
    expect(again.batchSha256).to.equal(built.batchSha256);
    expect(again.settlement).to.deep.equal(built.settlement);
  });

  it("redistributes slashed stake pro rata to the nodes not slashed, dust to the largest earner", function () {
    const built = buildSettlement({
      epoch: 1n,
      receipts: [
        receipt(1, nodeA!, client1!, 1_000n),
        receipt(2, nodeB!, client1!, 2_000n),
        receipt(3, nodeC!, client1!, 1_000n),
      ],
      previous: [],
      fees,
      slashToRedistribute: 100n,
      slashedNodes: [nodeC!],
    });
    // A earned 850, B 1700: shares 33 and 66, dust 1 to B.
    const of = (a: Address) => built.earnings.find((e) => e.account === a)!.cumulativeAmount;
    expect(of(nodeA!)).to.equal(850n + 33n);
    expect(of(nodeB!)).to.equal(1_700n + 67n);
    expect(of(nodeC!)).to.equal(850n);
    expect(built.settlement.redistributedSlash).to.equal(100n);
    expect(built.carriedSlash).to.equal(0n);
  });

  it("carries the slash over when every earning node was slashed", function () {
    const built = buildSettlement({
      epoch: 1n,
      receipts: [receipt(1, nodeA!, client1!, 1_000n)],
      previous: [],
      fees,
      slashToRedistribute: 100n,
      slashedNodes: [nodeA!],
    });
    expect(built.settlement.redistributedSlash).to.equal(0n);
    expect(built.carriedSlash).to.equal(100n);
  });

  it("shares pro rata with ties broken by the lowest address", function () {
    const shares = proRata(
      10n,
      new Map([
        [nodeB!, 1n],
        [nodeA!, 1n],
        [nodeC!, 1n],
      ]),
    );
    expect([...shares.entries()]).to.deep.equal([
      [nodeA, 4n],
      [nodeB, 3n],
      [nodeC, 3n],
    ]);
    expect(proRata(10n, new Map()).size).to.equal(0);
  });

  it("refuses an empty epoch, a job twice and fee bps over 100%", function () {
    const base = { epoch: 0n, previous: [], fees, slashToRedistribute: 0n, slashedNodes: [] };
    expect(() => buildSettlement({ ...base, receipts: [] })).to.throw(/no receipts/);
    const r = receipt(1, nodeA!, client1!, 1n);
    expect(() => buildSettlement({ ...base, receipts: [r, r] })).to.throw(/appears twice/);
    expect(() =>
      buildSettlement({ ...base, receipts: [r], fees: { ...fees, protocolFeeBps: 9_000, royaltyBps: 2_000 } }),
    ).to.throw(/exceeds 10000/);
  });

  it("round-trips the settlement through JSON and writes canonical JSON with sorted keys", function () {
    const built = buildSettlement({
      epoch: 2n,
      receipts: [receipt(1, nodeA!, client1!, 1n)],
      previous: [],
      fees,
      slashToRedistribute: 0n,
      slashedNodes: [],
    });
    expect(settlementFromJson(settlementToJson(built.settlement))).to.deep.equal(built.settlement);
    expect(canonicalJson({ b: 1, a: [{ d: 2n, c: null }] })).to.equal('{"a":[{"c":null,"d":"2"}],"b":1}');
  });
});

// The fee split the oracle, the demo and auditors share (sdk/fees.ts), without a chain.
import { expect } from "chai";

import { InvalidFeeError, MAX_FEE_BPS, checkFeeSchedule, splitFee } from "../../sdk/fees.ts";

const TREASURY = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

describe("sdk/fees", function () {
  it("splits a fee: floor(fee × bps / 10,000) each to treasury and publisher, the rest to the node", function () {
    const schedule = { protocolFeeBps: 500, royaltyBps: 1_000 };
    expect(splitFee(25n, schedule)).to.deep.equal({ fee: 25n, protocolFee: 1n, royalty: 2n, node: 22n });
    expect(splitFee(10n ** 18n, schedule)).to.deep.equal({
      fee: 10n ** 18n,
      protocolFee: 5n * 10n ** 16n,
      royalty: 10n ** 17n,
      node: 85n * 10n ** 16n,
    });
    expect(splitFee(0n, schedule)).to.deep.equal({ fee: 0n, protocolFee: 0n, royalty: 0n, node: 0n });
    expect(splitFee(9n, { protocolFeeBps: 0, royaltyBps: 0 }).node).to.equal(9n);
  });

  it("never creates or loses a unit: node + protocol fee + royalty == fee, the node keeps at least half", function () {
    for (const [protocolFeeBps, royaltyBps] of [
      [500, 1_000],
      [1, 1],
      [2_500, 2_500],
      [0, MAX_FEE_BPS],
      [3_333, 1_667],
    ] as const) {
      for (let fee = 0n; fee < 2_000n; fee += 7n) {
        const s = splitFee(fee, { protocolFeeBps, royaltyBps });
        expect(s.node + s.protocolFee + s.royalty).to.equal(fee);
        expect(s.protocolFee).to.equal((fee * BigInt(protocolFeeBps)) / 10_000n);
        expect(2n * s.node >= fee).to.equal(true);
      }
    }
  });

  it("refuses a negative fee", function () {
    expect(() => splitFee(-1n, { protocolFeeBps: 1, royaltyBps: 1 }))
      .to.throw(InvalidFeeError)
      .with.property("message")
      .that.matches(/cannot be negative, got -1/);
  });

  it("checks a schedule as EpochSettlement does and checksums the treasury", function () {
    expect(
      checkFeeSchedule({ treasury: TREASURY.toLowerCase(), protocolFeeBps: 500, royaltyBps: 1_000 }),
    ).to.deep.equal({ treasury: TREASURY, protocolFeeBps: 500, royaltyBps: 1_000 });
    expect(checkFeeSchedule({ treasury: TREASURY, protocolFeeBps: 0, royaltyBps: MAX_FEE_BPS }).royaltyBps).to.equal(
      MAX_FEE_BPS,
    );
    const bad: [Parameters<typeof checkFeeSchedule>[0], RegExp][] = [
      [{ treasury: "0x0000000000000000000000000000000000000000", protocolFeeBps: 1, royaltyBps: 1 }, /non-zero/],
      [{ treasury: "treasury", protocolFeeBps: 1, royaltyBps: 1 }, /treasury must be a non-zero address/],
      [{ treasury: TREASURY, protocolFeeBps: 2_501, royaltyBps: 2_500 }, /at most 5000, got 2501 \+ 2500/],
      [{ treasury: TREASURY, protocolFeeBps: -1, royaltyBps: 0 }, /protocolFeeBps must be a non-negative integer/],
      [{ treasury: TREASURY, protocolFeeBps: 0, royaltyBps: 1.5 }, /royaltyBps must be a non-negative integer/],
    ];
    for (const [schedule, message] of bad) {
      expect(() => checkFeeSchedule(schedule))
        .to.throw(InvalidFeeError)
        .with.property("message")
        .that.matches(message);
    }
  });
});

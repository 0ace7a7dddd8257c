// Packed debits (sdk/earnings.ts packDebits), the words RewardClaims.collectDebits takes.
import { expect } from "chai";

import { packDebits } from "../../sdk/earnings.ts";

const ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

describe("sdk/earnings packDebits", function () {
  it("puts the address in the high 160 bits and the amount in the low 96", function () {
    const [word] = packDebits([{ client: ALICE, amount: 0x1234n }]);
    expect(word).to.equal(`${ALICE.toLowerCase()}${"1234".padStart(24, "0")}`);
    const [max] = packDebits([{ client: ALICE, amount: (1n << 96n) - 1n }]);
    expect(max).to.equal(`${ALICE.toLowerCase()}${"f".repeat(24)}`);
    expect(packDebits([])).to.deep.equal([]);
  });

  it("refuses a zero, negative or too large amount, naming the debit", function () {
    for (const amount of [0n, -1n, 1n << 96n]) {
      expect(() =>
        packDebits([
          { client: ALICE, amount: 1n },
          { client: ALICE, amount },
        ]),
      ).to.throw(new RegExp(`debit 1 \\(${ALICE}\\): amount ${amount} must be between 1 and 2\\^96 - 1`));
    }
  });

  it("refuses a malformed client address", function () {
    expect(() => packDebits([{ client: "0x1234", amount: 1n }])).to.throw(/Address "0x1234" is invalid/);
  });
});

// The demo oracle's split of redistributed slashed stake over the nodes of the epoch.
import { expect } from "chai";

import { splitByWeight } from "../../scripts/lib/settlement-demo.ts";

describe("settlement demo: splitByWeight", function () {
  it("splits by weight, the rounding remainder to the first, and never loses a unit", function () {
    expect(splitByWeight(3_000n, [3n, 3n])).to.deep.equal([1_500n, 1_500n]);
    expect(splitByWeight(10n, [1n, 1n, 1n])).to.deep.equal([4n, 3n, 3n]);
    expect(splitByWeight(7n, [0n, 2n, 5n])).to.deep.equal([0n, 2n, 5n]);
    for (const total of [0n, 1n, 999n, 10n ** 21n + 7n]) {
      const parts = splitByWeight(total, [5n, 3n, 1n]);
      expect(parts.reduce((a, b) => a + b, 0n)).to.equal(total);
    }
  });

  it("refuses to split a positive total when no node served (it would be lost), splits 0 into zeros", function () {
    expect(() => splitByWeight(5n, [0n, 0n])).to.throw(/cannot split 5 over no weight/);
    expect(splitByWeight(0n, [0n, 0n])).to.deep.equal([0n, 0n]);
  });
});

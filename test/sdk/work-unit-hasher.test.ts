// sdk/eip712.ts's workUnitHasher (the gateway's per-call work-unit digest) against viem's generic
// EIP-712 hashTypedData (hashWorkUnit), which test/contracts/TypedData.test.ts holds to the chain.
import { randomBytes } from "node:crypto";

import { expect } from "chai";
import type { Address, Hex } from "viem";

import {
  WorkUnitEncodingError,
  hashWorkUnit,
  inframeshDomain,
  workUnitHasher,
  type WorkUnit,
} from "../../sdk/eip712.ts";

const hex = (bytes: number): Hex => `0x${randomBytes(bytes).toString("hex")}`;
const randomUint = (bits: number): bigint => BigInt(hex(bits / 8)) >> BigInt(Math.floor(Math.random() * bits));

function randomUnit(): WorkUnit {
  return {
    jobId: hex(32),
    modelId: randomUint(256),
    modelVersion: randomUint(64),
    inputHash: hex(32),
    maxFee: randomUint(256),
    client: hex(20) as Address,
    expiresAt: randomUint(64),
  };
}

describe("sdk/eip712 workUnitHasher", function () {
  it("gives hashWorkUnit's digest for random work units on several domains", function () {
    for (const chainId of [1, 31337, 2 ** 40]) {
      const domain = inframeshDomain(chainId, hex(20) as Address);
      const hash = workUnitHasher(domain);
      for (let i = 0; i < 200; i++) {
        const unit = randomUnit();
        expect(hash(unit)).to.equal(hashWorkUnit(domain, unit));
      }
    }
  });

  it("gives hashWorkUnit's digest at the edges: zeros, type maxima, checksummed and uppercase hex", function () {
    const domain = inframeshDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
    const hash = workUnitHasher(domain);
    const units: WorkUnit[] = [
      {
        jobId: `0x${"00".repeat(32)}`,
        modelId: 0n,
        modelVersion: 0n,
        inputHash: `0x${"00".repeat(32)}`,
        maxFee: 0n,
        client: "0x0000000000000000000000000000000000000000",
        expiresAt: 0n,
      },
      {
        jobId: `0x${"FF".repeat(32)}`,
        modelId: (1n << 256n) - 1n,
        modelVersion: (1n << 256n) - 1n,
        inputHash: `0x${"Ab".repeat(32)}`,
        maxFee: (1n << 256n) - 1n,
        client: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        expiresAt: (1n << 64n) - 1n,
      },
    ];
    for (const unit of units) expect(hash(unit)).to.equal(hashWorkUnit(domain, unit));
  });

  it("refuses what the types cannot hold, with a typed error", function () {
    const hash = workUnitHasher(inframeshDomain(1, hex(20) as Address));
    const unit = randomUnit();
    for (const bad of [
      { ...unit, expiresAt: 1n << 64n },
      { ...unit, maxFee: -1n },
      { ...unit, modelId: 1n << 256n },
      { ...unit, jobId: hex(31) },
      { ...unit, inputHash: "0x1234" as Hex },
      { ...unit, client: hex(32) as Address },
    ]) {
      expect(() => hash(bad)).to.throw(WorkUnitEncodingError);
    }
  });
});

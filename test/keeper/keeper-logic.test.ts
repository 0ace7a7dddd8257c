// The keeper's pure parts: finalise decisions, job ids, the webhook body, configuration.
import { expect } from "chai";

import { ConfigError, indexerConfig, keeperConfig } from "../../keeper/config.ts";
import {
  epochLengthProblem,
  finaliseDecision,
  finaliseJobId,
  parseEpoch,
  settlementStatus,
  unbondingJobId,
  unbondingNotice,
} from "../../keeper/jobs.ts";

const KEY = `0x${"11".repeat(32)}`;

describe("keeper logic", function () {
  describe("finaliseDecision", function () {
    it("sends once the challenge window is over, not a second before", function () {
      expect(finaliseDecision({ status: 1, finalisableAt: 100n }, 99n)).to.deep.equal({
        action: "wait",
        finalisableAt: 100n,
      });
      expect(finaliseDecision({ status: 1, finalisableAt: 100n }, 100n)).to.deep.equal({ action: "send" });
    });

    it("sends nothing for a final, voided or unposted settlement", function () {
      expect(finaliseDecision({ status: 3, finalisableAt: 100n }, 500n)).to.deep.equal({ action: "done" });
      expect(finaliseDecision({ status: 2, finalisableAt: 100n }, 500n)).to.deep.equal({
        action: "nothing",
        status: "Voided",
      });
      expect(finaliseDecision({ status: 0, finalisableAt: 0n }, 500n)).to.deep.equal({
        action: "nothing",
        status: "None",
      });
    });

    it("refuses a status the contract does not have", function () {
      expect(() => settlementStatus(4)).to.throw(RangeError, /unknown settlement status 4/);
    });
  });

  it("derives job ids from the action, without the ':' BullMQ refuses", function () {
    expect(finaliseJobId(31337, 7n)).to.equal("finalise-31337-7");
    const lock = { node: "0xAbC", staker: "0xDeF", lockId: "3" };
    expect(unbondingJobId(1, lock)).to.equal("unbonding-1-0xabc-0xdef-3");
    expect(unbondingJobId(1, { ...lock, node: "0xabc" })).to.equal(unbondingJobId(1, lock));
    expect(finaliseJobId(1, 2n)).to.not.include(":");
  });

  it("builds the unbonding notice with amounts as decimal strings", function () {
    expect(
      unbondingNotice(5, { node: "0xa", staker: "0xb", lockId: "0", amount: "10", withdrawableAt: 2n ** 63n }),
    ).to.deep.equal({
      type: "unbonding.matured",
      chainId: 5,
      node: "0xa",
      staker: "0xb",
      lockId: "0",
      amount: "10",
      withdrawableAt: "9223372036854775808",
    });
  });

  it("parses an epoch from a number or a decimal string, and nothing else", function () {
    expect(parseEpoch(3)).to.equal(3n);
    expect(parseEpoch("18446744073709551615")).to.equal(2n ** 64n - 1n);
    for (const bad of [-1, 1.5, "18446744073709551616", "0x10", "", null, undefined, {}]) {
      expect(() => parseEpoch(bad), JSON.stringify(bad)).to.throw(RangeError, /epoch must be a whole number/);
    }
  });

  describe("epochLengthProblem", function () {
    it("accepts epochs whose length plus the challenge window fits in the withdrawal delay", function () {
      expect(epochLengthProblem(1_000, 86_400n, 7n * 86_400n)).to.equal(null);
      expect(epochLengthProblem(6 * 86_400_000, 86_400n, 7n * 86_400n)).to.equal(null); // exactly fits
    });

    it("refuses longer epochs, naming the three figures and the longest safe epoch", function () {
      const problem = epochLengthProblem(6 * 86_400_000 + 1, 86_400n, 7n * 86_400n);
      expect(problem).to.include("INFRAMESH_KEEPER_EPOCH_MS=518400001 is too long");
      expect(problem).to.include("an epoch (518401 s) plus the challenge window (86400 s)");
      expect(problem).to.include("withdrawal delay (604800 s)");
      expect(problem).to.include("epochs of at most 518400000 ms");
    });

    it("says no epoch is safe when the challenge window alone exceeds the delay", function () {
      expect(epochLengthProblem(1_000, 7_200n, 3_600n)).to.include("epochs of at most 0 ms");
    });
  });

  describe("configuration", function () {
    it("has defaults for everything but the key", function () {
      const config = keeperConfig({ INFRAMESH_KEEPER_KEY: KEY });
      expect(config).to.deep.include({
        network: "localhost",
        confirmations: 2,
        blockSpan: 2_000,
        attempts: 12,
        host: "127.0.0.1",
        port: 8700,
        redisUrl: undefined,
        webhookUrl: undefined,
      });
      expect(config.dataDir).to.match(/\.inframesh\/indexer-localhost$/);
    });

    it("lists every bad variable in one error", function () {
      expect(() =>
        keeperConfig({
          INFRAMESH_CONFIRMATIONS: "two",
          INFRAMESH_RPC_URL: "not a url",
          INFRAMESH_UNBONDING_WEBHOOK_URL: "ftp://x",
        }),
      )
        .to.throw(ConfigError)
        .with.property("message")
        .that.matches(/INFRAMESH_CONFIRMATIONS must be a whole number ≥ 0, got "two"/)
        .and.matches(/INFRAMESH_RPC_URL must be a URL, got "not a url"/)
        .and.matches(/INFRAMESH_KEEPER_KEY is not set/)
        .and.matches(/INFRAMESH_UNBONDING_WEBHOOK_URL must be a http: or https: URL/);
    });

    it("refuses a network name that could name another file", function () {
      expect(() => indexerConfig({ INFRAMESH_NETWORK: "../x" })).to.throw(
        ConfigError,
        /INFRAMESH_NETWORK must be a network name/,
      );
    });
  });
});

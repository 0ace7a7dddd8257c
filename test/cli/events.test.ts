// `infra events`' pure parts: argument checks, argument order, the table.
import { expect } from "chai";
import { parseAbi } from "viem";

import {
  checkEventName,
  checkRange,
  eventNames,
  formatEvents,
  orderArgs,
  parseBlock,
  parseContractKey,
} from "../../scripts/cli/events.ts";
import { CliError } from "../../scripts/cli/format.ts";

const abi = parseAbi([
  "struct S { uint64 epoch; bytes32 root; uint256 total; }",
  "event Posted(uint64 indexed epoch, S settlement, S[] history, address by)",
  "event Staked(address indexed node, address indexed staker, uint256 amount, uint256 shares)",
]);

describe("infra events (pure)", function () {
  it("accepts the deployment's contract keys and lists them otherwise", function () {
    expect(parseContractKey("epochSettlement")).to.equal("epochSettlement");
    expect(() => parseContractKey("NodeStaking")).to.throw(
      CliError,
      /unknown contract "NodeStaking": use one of stakeToken, /,
    );
  });

  it("checks block numbers and ranges", function () {
    expect(parseBlock("--from-block")("0")).to.equal(0);
    for (const bad of ["-1", "1.5", "1e3", "", "9007199254740993"]) {
      expect(() => parseBlock("--from-block")(bad), bad).to.throw(CliError, /--from-block must be a block number/);
    }
    expect(() => checkRange(5, 5)).to.not.throw();
    expect(() => checkRange(undefined, 1)).to.not.throw();
    expect(() => checkRange(6, 5)).to.throw(CliError, "bad block range: --from-block 6 is after --to-block 5");
  });

  it("checks an event name against the ABI", function () {
    expect(eventNames(abi)).to.deep.equal(["Posted", "Staked"]);
    expect(() => checkEventName("nodeStaking", abi, "Staked")).to.not.throw();
    expect(() => checkEventName("nodeStaking", abi, undefined)).to.not.throw();
    expect(() => checkEventName("nodeStaking", abi, "staked")).to.throw(
      CliError,
      'nodeStaking has no event "staked": use one of Posted, Staked',
    );
  });

  it("puts JSONB-ordered arguments back in declaration order, structs and struct arrays too", function () {
    const s = { total: "3", root: "0xab", epoch: "1" };
    const fromDb = { by: "0x1", history: [s, s], settlement: s, epoch: "1" };
    const ordered = orderArgs(abi, "Posted", fromDb);
    expect(JSON.stringify(ordered)).to.equal(
      JSON.stringify({
        epoch: "1",
        settlement: { epoch: "1", root: "0xab", total: "3" },
        history: [
          { epoch: "1", root: "0xab", total: "3" },
          { epoch: "1", root: "0xab", total: "3" },
        ],
        by: "0x1",
      }),
    );
    expect(orderArgs(abi, null, { b: "1", a: "2" })).to.deep.equal({ b: "1", a: "2" });
  });

  it("prints a table, marking unconfirmed events", function () {
    expect(formatEvents([])).to.equal("no events");
    const table = formatEvents([
      {
        blockNumber: 12,
        logIndex: 3,
        event: "Staked",
        args: { node: "0xa", amount: "10", list: ["1", "2"], s: { x: "1" } },
        txHash: "0x1",
        blockHash: "0x2",
        confirmed: false,
      },
      { blockNumber: 9, logIndex: 0, event: null, args: {}, txHash: "0x1", blockHash: "0x2", confirmed: null },
    ]);
    expect(table.split("\n")).to.deep.equal([
      "block  log  event      args",
      "-----  ---  ---------  ---------------------------------------",
      "   12    3  Staked *   node=0xa amount=10 list=[1, 2] s={x: 1}",
      "    9    0  (unknown)",
    ]);
  });
});

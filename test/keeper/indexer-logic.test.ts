// The indexer's pure parts: range planning, confirmations, re-org detection, log decoding.
import { expect } from "chai";
import { encodeAbiParameters, encodeEventTopics, getAddress, parseAbi, type Hex } from "viem";

import {
  compareEvents,
  confirmedHeight,
  decodeLog,
  followedContracts,
  isUnconfirmed,
  planRanges,
  reorgStart,
  startBlock,
  toJsonArg,
  type FollowedContract,
  type RawLog,
} from "../../keeper/indexer/logic.ts";
import { CONTRACT_KEYS, type DeploymentRecord } from "../../sdk/deployment.ts";

const abi = parseAbi([
  "event Staked(address indexed node, address indexed staker, uint256 amount, uint256 shares)",
  "struct S { uint64 epoch; bytes32 root; uint256 total; }",
  "event Posted(uint64 indexed epoch, S settlement, address[] signers)",
]);
const ADDRESS = getAddress("0x5fbdb2315678afecb367f032d93f642f64180aa3");
const NODE = getAddress("0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
const STAKER = getAddress("0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc");
const contract: FollowedContract = { key: "nodeStaking", address: ADDRESS, abi, deployBlock: 3 };
const byAddress = new Map([[ADDRESS.toLowerCase(), contract]]);
const HASH = `0x${"ab".repeat(32)}` as Hex;

function log(topics: Hex[], data: Hex, extra: Partial<RawLog> = {}): RawLog {
  return {
    address: ADDRESS,
    topics,
    data,
    blockNumber: 7n,
    blockHash: HASH,
    transactionHash: `0x${"cd".repeat(32)}`,
    logIndex: 2,
    ...extra,
  };
}

describe("indexer logic", function () {
  describe("planRanges", function () {
    it("splits a span into bounded consecutive ranges", function () {
      expect(planRanges(10, 24, 5)).to.deep.equal([
        { from: 10, to: 14 },
        { from: 15, to: 19 },
        { from: 20, to: 24 },
      ]);
      expect(planRanges(10, 12, 5)).to.deep.equal([{ from: 10, to: 12 }]);
      expect(planRanges(10, 10, 1)).to.deep.equal([{ from: 10, to: 10 }]);
    });

    it("plans nothing when the cursor is at the head", function () {
      expect(planRanges(11, 10, 5)).to.deep.equal([]);
    });

    it("refuses a span that is not a positive integer", function () {
      expect(() => planRanges(0, 10, 0)).to.throw(RangeError, /positive integer, not 0/);
      expect(() => planRanges(0, 10, 1.5)).to.throw(RangeError, /not 1.5/);
    });
  });

  describe("confirmations", function () {
    it("counts a block confirmed once `confirmations` blocks are on top of it", function () {
      expect(confirmedHeight(100, 0)).to.equal(100);
      expect(confirmedHeight(100, 12)).to.equal(88);
      expect(isUnconfirmed(88, 100, 12)).to.equal(false);
      expect(isUnconfirmed(89, 100, 12)).to.equal(true);
      expect(isUnconfirmed(100, 100, 0)).to.equal(false);
    });
  });

  describe("reorgStart", function () {
    const stored = [
      { blockNumber: 5, blockHash: "0xaa" },
      { blockNumber: 6, blockHash: "0xbb" },
      { blockNumber: 7, blockHash: "0xcc" },
    ];

    it("is null when every stored hash still matches (case-insensitive)", function () {
      const chain = new Map<number, string | undefined>([
        [5, "0xAA"],
        [6, "0xbb"],
        [7, "0xcc"],
      ]);
      expect(reorgStart(stored, chain)).to.equal(null);
    });

    it("returns the lowest replaced block", function () {
      const chain = new Map<number, string | undefined>([
        [5, "0xaa"],
        [6, "0x66"],
        [7, "0x77"],
      ]);
      expect(reorgStart(stored, chain)).to.equal(6);
    });

    it("treats blocks the chain no longer has as replaced (the chain got shorter)", function () {
      const chain = new Map<number, string | undefined>([
        [5, "0xaa"],
        [6, "0xbb"],
        [7, undefined],
      ]);
      expect(reorgStart(stored, chain)).to.equal(7);
    });
  });

  describe("decodeLog", function () {
    it("decodes indexed and data arguments, bigints as decimal strings", function () {
      const topics = encodeEventTopics({ abi, eventName: "Staked", args: { node: NODE, staker: STAKER } }) as Hex[];
      const data = encodeAbiParameters([{ type: "uint256" }, { type: "uint256" }], [10n ** 30n, 123n]);
      const event = decodeLog(31337, byAddress, log(topics, data));
      expect(event).to.deep.include({
        chainId: 31337,
        contractKey: "nodeStaking",
        address: ADDRESS,
        eventName: "Staked",
        blockNumber: 7,
        blockHash: HASH,
        logIndex: 2,
      });
      expect(event.args).to.deep.equal({
        node: NODE,
        staker: STAKER,
        amount: "1000000000000000000000000000000",
        shares: "123",
      });
    });

    it("keeps structs as objects and arrays as arrays", function () {
      const topics = encodeEventTopics({ abi, eventName: "Posted", args: { epoch: 4n } }) as Hex[];
      const data = encodeAbiParameters(
        [
          {
            type: "tuple",
            components: [
              { name: "epoch", type: "uint64" },
              { name: "root", type: "bytes32" },
              { name: "total", type: "uint256" },
            ],
          },
          { type: "address[]" },
        ],
        [{ epoch: 4n, root: HASH, total: 9n }, [NODE, STAKER]],
      );
      const event = decodeLog(1, byAddress, log(topics, data));
      expect(event.eventName).to.equal("Posted");
      expect(event.args).to.deep.equal({
        epoch: "4",
        settlement: { epoch: "4", root: HASH, total: "9" },
        signers: [NODE, STAKER],
      });
    });

    it("keeps an event the ABI does not know, raw and unnamed", function () {
      const topics = [`0x${"11".repeat(32)}`] as Hex[];
      const event = decodeLog(1, byAddress, log(topics, "0x1234"));
      expect(event.eventName).to.equal(null);
      expect(event.args).to.deep.equal({});
      expect(event.topics).to.deep.equal(topics);
      expect(event.data).to.equal("0x1234");
    });

    it("refuses a log of a contract it does not follow", function () {
      const other = getAddress("0x0000000000000000000000000000000000000001");
      expect(() => decodeLog(1, byAddress, log([], "0x", { address: other }))).to.throw(RangeError, /not a followed/);
    });
  });

  it("toJsonArg turns bigints, numbers and bytes into JSON", function () {
    expect(toJsonArg({ a: 1n, b: [2n, true], c: 3, d: new Uint8Array([1, 255]) })).to.deep.equal({
      a: "1",
      b: ["2", true],
      c: "3",
      d: "0x01ff",
    });
  });

  it("follows every contract the deployment created, from the earliest deploy block", function () {
    const contracts = Object.fromEntries(
      CONTRACT_KEYS.map((key, i) => [
        key,
        {
          contractName: key,
          address: getAddress(`0x${String(i + 1).padStart(40, "0")}`),
          deployTransaction: null,
          deployBlock: key === "stakeToken" ? null : 10 + i,
          abi,
        },
      ]),
    ) as unknown as DeploymentRecord["contracts"];
    const record: DeploymentRecord = {
      network: "x",
      chainId: 1,
      deployer: NODE,
      deploymentId: "x",
      contracts,
      parameters: {},
    };
    const followed = followedContracts(record);
    expect(followed.map((c) => c.key)).to.deep.equal(CONTRACT_KEYS.filter((k) => k !== "stakeToken"));
    expect(startBlock(followed)).to.equal(11);
    expect(() => startBlock([])).to.throw(RangeError, /no contract to follow/);
  });

  it("orders events by block, then log index", function () {
    const events = [
      { blockNumber: 2, logIndex: 0 },
      { blockNumber: 1, logIndex: 5 },
      { blockNumber: 1, logIndex: 1 },
    ];
    expect(events.sort(compareEvents)).to.deep.equal([
      { blockNumber: 1, logIndex: 1 },
      { blockNumber: 1, logIndex: 5 },
      { blockNumber: 2, logIndex: 0 },
    ]);
  });
});

// deployments/<network>.json: built from deploy facts, serialised stably, parsed back.
import { expect } from "chai";
import { erc20Abi } from "viem";

import { buildDeploymentRecord, describeDeployment, type DeploymentFacts } from "../../scripts/deploy/record.ts";
import { resolveParameters } from "../../scripts/deploy/parameters.ts";
import { DeploymentRecordError, parseDeploymentRecord, serializeDeploymentRecord } from "../../sdk/deployment.ts";

const DEPLOYER = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
const HASH = (n: number) => `0x${n.toString(16).padStart(64, "0")}` as const;

function facts(overrides: Partial<DeploymentFacts> = {}): DeploymentFacts {
  return {
    network: "localhost",
    chainId: 31337,
    deployer: DEPLOYER,
    deploymentId: "chain-31337",
    contracts: [
      {
        key: "nodeStaking",
        contractName: "NodeStaking",
        address: "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0",
        abi: [],
        creation: { transactionHash: HASH(3), blockNumber: 3 },
      },
      {
        key: "stakeToken",
        contractName: "InframeshToken",
        address: "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512",
        abi: erc20Abi,
        creation: { transactionHash: HASH(2), blockNumber: 2 },
      },
      {
        key: "modelRegistry",
        contractName: "ModelRegistry",
        address: "0xcf7ed3acca5a467e9e704c703e8d87f634fb0fc9",
        abi: [],
        creation: { transactionHash: HASH(4), blockNumber: 4 },
      },
      {
        key: "timelock",
        contractName: "InframeshTimelock",
        address: "0x5fbdb2315678afecb367f032d93f642f64180aa3",
        abi: [],
        creation: { transactionHash: HASH(1), blockNumber: 1 },
      },
      {
        key: "rewardClaims",
        contractName: "RewardClaims",
        address: "0xa513e6e4b8f2a923d98304ec87f64353c4d5c853",
        abi: [],
        creation: { transactionHash: HASH(7), blockNumber: 7 },
      },
      {
        key: "paymentEscrow",
        contractName: "PaymentEscrow",
        address: "0xdc64a140aa3e981100a9beca4e685f962f0cf6c9",
        abi: [],
        creation: { transactionHash: HASH(5), blockNumber: 5 },
      },
      {
        key: "epochSettlement",
        contractName: "EpochSettlement",
        address: "0x5fc8d32690cc91d4c39d9d3abcbd16989f875707",
        abi: [],
        creation: { transactionHash: HASH(6), blockNumber: 6 },
      },
    ],
    parameters: resolveParameters(undefined, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
    ...overrides,
  };
}

describe("deployment record", function () {
  it("orders keys and contracts the same way whatever the input order, with checksummed addresses", function () {
    const record = buildDeploymentRecord(facts());
    expect(Object.keys(record)).to.deep.equal([
      "network",
      "chainId",
      "deployer",
      "deploymentId",
      "contracts",
      "parameters",
    ]);
    expect(Object.keys(record.contracts)).to.deep.equal([
      "stakeToken",
      "timelock",
      "nodeStaking",
      "modelRegistry",
      "paymentEscrow",
      "epochSettlement",
      "rewardClaims",
    ]);
    expect(record.deployer).to.equal("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    expect(record.contracts.timelock).to.deep.include({
      address: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
      deployTransaction: HASH(1),
      deployBlock: 1,
    });

    const reversed = buildDeploymentRecord(facts({ contracts: [...facts().contracts].reverse() }));
    expect(serializeDeploymentRecord(reversed)).to.equal(serializeDeploymentRecord(record));
  });

  it("round-trips through its file text", function () {
    const record = buildDeploymentRecord(facts());
    const text = serializeDeploymentRecord(record);
    expect(text.endsWith("}\n")).to.equal(true);
    expect(parseDeploymentRecord(JSON.parse(text))).to.deep.equal(record);
    expect(describeDeployment(record)).to.match(/nodeStaking +NodeStaking +0x9fE4.* block 3/);
    expect(describeDeployment(record)).to.match(/modelRegistry +ModelRegistry +0xCf7E.* block 4/);
    expect(describeDeployment(record)).to.match(/paymentEscrow +PaymentEscrow +0xDc64.* block 5/);
    expect(describeDeployment(record)).to.match(/epochSettlement +EpochSettlement +0x5FC8.* block 6/);
    expect(describeDeployment(record)).to.match(/rewardClaims +RewardClaims +0xa513.* block 7/);
  });

  it("records an existing stake token without a deploy block", function () {
    const contracts = facts().contracts.map((c) =>
      c.key === "stakeToken" ? { ...c, contractName: "IERC20", creation: undefined } : c,
    );
    const record = buildDeploymentRecord(facts({ contracts }));
    expect(record.contracts.stakeToken).to.deep.include({ deployTransaction: null, deployBlock: null });
    expect(describeDeployment(record)).to.match(/stakeToken +IERC20 .* existing contract/);
  });

  it("refuses a missing or repeated contract", function () {
    const [first, ...rest] = facts().contracts;
    expect(() => buildDeploymentRecord(facts({ contracts: rest }))).to.throw(DeploymentRecordError, /missing/);
    expect(() => buildDeploymentRecord(facts({ contracts: [first!, first!, ...rest] }))).to.throw(
      DeploymentRecordError,
      /given twice/,
    );
  });

  it("refuses files of the wrong shape, naming the field", function () {
    const good = JSON.parse(serializeDeploymentRecord(buildDeploymentRecord(facts())));
    expect(() => parseDeploymentRecord([])).to.throw(DeploymentRecordError, /expected a JSON object/);
    expect(() => parseDeploymentRecord({ ...good, chainId: "31337" })).to.throw(/chainId must be a positive integer/);
    const noStaking = { ...good, contracts: { ...good.contracts, nodeStaking: undefined } };
    expect(() => parseDeploymentRecord(noStaking)).to.throw(/contracts.nodeStaking must be an object/);
    // A record written before the registry was deployed names what it lacks.
    const noRegistry = { ...good, contracts: { ...good.contracts, modelRegistry: undefined } };
    expect(() => parseDeploymentRecord(noRegistry)).to.throw(/contracts.modelRegistry must be an object/);
    // So does one written before settlement was deployed.
    const noClaims = { ...good, contracts: { ...good.contracts, rewardClaims: undefined } };
    expect(() => parseDeploymentRecord(noClaims)).to.throw(/contracts.rewardClaims must be an object/);
    const badAddress = {
      ...good,
      contracts: { ...good.contracts, timelock: { ...good.contracts.timelock, address: "0x12" } },
    };
    expect(() => parseDeploymentRecord(badAddress)).to.throw(/contracts.timelock: address must be an address/);
  });
});

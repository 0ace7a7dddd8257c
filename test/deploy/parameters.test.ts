// Deploy parameters: defaults, overrides and every rejection, without a chain.
import { expect } from "chai";

import { DEFAULT_PARAMETERS } from "../../ignition/modules/Inframesh.ts";
import { InvalidParametersError } from "../../scripts/deploy/errors.ts";
import {
  parametersToJson,
  resolveParameters,
  stakeTokenSource,
  toIgnitionParameters,
  treasurySource,
} from "../../scripts/deploy/parameters.ts";

const DEPLOYER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const BOB = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

function rejects(file: unknown, message: RegExp): void {
  expect(() => resolveParameters(file, DEPLOYER))
    .to.throw(InvalidParametersError)
    .with.property("message")
    .that.matches(message);
}

describe("deploy parameters", function () {
  it("defaults every parameter, accounts to the deployer", function () {
    const p = resolveParameters(undefined, DEPLOYER);
    expect(p).to.deep.equal({
      stakeToken: undefined,
      tokenHolder: DEPLOYER,
      initialSupply: DEFAULT_PARAMETERS.initialSupply,
      minDelay: DEFAULT_PARAMETERS.minDelay,
      proposers: [DEPLOYER],
      minSelfStake: DEFAULT_PARAMETERS.minSelfStake,
      unbondingPeriod: DEFAULT_PARAMETERS.unbondingPeriod,
      jailPeriod: DEFAULT_PARAMETERS.jailPeriod,
      maxSlashBps: DEFAULT_PARAMETERS.maxSlashBps,
      burnBps: DEFAULT_PARAMETERS.burnBps,
      tierThresholds: [...DEFAULT_PARAMETERS.tierThresholds],
      slasher: DEPLOYER,
      pauser: DEPLOYER,
      rewarder: DEPLOYER,
      oracles: [DEPLOYER],
      oracleThreshold: 1n,
      challengeWindow: DEFAULT_PARAMETERS.challengeWindow,
      withdrawalDelay: DEFAULT_PARAMETERS.withdrawalDelay,
      treasury: undefined,
      protocolFeeBps: 500,
      royaltyBps: 1_000,
      zkChallenger: DEPLOYER,
      zkResponseWindow: DEFAULT_PARAMETERS.zkResponseWindow,
    });
    expect(stakeTokenSource(p)).to.equal("deploy");
    expect(treasurySource(p)).to.equal("timelock");
    expect(resolveParameters({}, DEPLOYER)).to.deep.equal(p);
    expect(resolveParameters({ Inframesh: {} }, DEPLOYER)).to.deep.equal(p);
  });

  it("takes bigints, safe integers and decimal strings; checksums addresses", function () {
    const p = resolveParameters(
      {
        Inframesh: {
          minSelfStake: 5_000n * 10n ** 18n,
          unbondingPeriod: 86_400,
          jailPeriod: "3600",
          maxSlashBps: 2_500,
          burnBps: "0",
          tierThresholds: ["100", 200n, 300],
          proposers: [ALICE.toLowerCase(), BOB],
          slasher: ALICE.toLowerCase(),
        },
      },
      DEPLOYER,
    );
    expect(p.minSelfStake).to.equal(5_000n * 10n ** 18n);
    expect(p.unbondingPeriod).to.equal(86_400n);
    expect(p.jailPeriod).to.equal(3_600n);
    expect(p.maxSlashBps).to.equal(2_500);
    expect(p.burnBps).to.equal(0);
    expect(p.tierThresholds).to.deep.equal([100n, 200n, 300n]);
    expect(p.proposers).to.deep.equal([ALICE, BOB]);
    expect(p.slasher).to.equal(ALICE);
    expect(p.pauser).to.equal(DEPLOYER);
  });

  it("uses an existing stake token instead of the dev token", function () {
    const p = resolveParameters({ Inframesh: { stakeToken: BOB } }, DEPLOYER);
    expect(p.stakeToken).to.equal(BOB);
    expect(p.tokenHolder).to.equal(undefined);
    expect(p.initialSupply).to.equal(undefined);
    expect(stakeTokenSource(p)).to.equal("existing");
    expect(toIgnitionParameters(p).Inframesh).to.include({ stakeToken: BOB }).and.not.have.keys("tokenHolder");
  });

  it("rejects what the contracts would reject, before any transaction", function () {
    rejects({ Inframesh: { minSelfStake: 0 } }, /minSelfStake must be positive/);
    rejects({ Inframesh: { minSelfStake: 2n ** 96n } }, /minSelfStake is out of range/);
    rejects({ Inframesh: { unbondingPeriod: 0 } }, /unbondingPeriod must be positive/);
    rejects({ Inframesh: { unbondingPeriod: 366 * 86_400 } }, /unbondingPeriod is out of range/);
    rejects({ Inframesh: { jailPeriod: 366 * 86_400 } }, /jailPeriod is out of range/);
    rejects({ Inframesh: { maxSlashBps: 0 } }, /maxSlashBps must be positive/);
    rejects({ Inframesh: { maxSlashBps: 5_001 } }, /maxSlashBps is out of range: 5001 \(max 5000\)/);
    rejects({ Inframesh: { burnBps: 10_001 } }, /burnBps is out of range/);
    rejects({ Inframesh: { tierThresholds: [2, 2] } }, /strictly ascending: \[1\] 2 <= 2/);
    rejects({ Inframesh: { tierThresholds: Array.from({ length: 17 }, (_, i) => i + 1) } }, /at most 16/);
    rejects({ Inframesh: { proposers: [] } }, /proposers must name at least one account/);
    rejects({ Inframesh: { initialSupply: 0 } }, /initialSupply must be positive/);
  });

  it("takes ZkChallenge's challenger and response window, within the contract's bounds", function () {
    const p = resolveParameters(
      { Inframesh: { zkChallenger: ALICE.toLowerCase(), zkResponseWindow: "7200" } },
      DEPLOYER,
    );
    expect([p.zkChallenger, p.zkResponseWindow]).to.deep.equal([ALICE, 7_200n]);
    rejects({ Inframesh: { zkResponseWindow: 3_599 } }, /zkResponseWindow must be between 3600 \(1 hour\) and 604800/);
    rejects({ Inframesh: { zkResponseWindow: 604_801 } }, /zkResponseWindow must be between/);
    rejects({ Inframesh: { zkChallenger: "0x0000000000000000000000000000000000000000" } }, /zkChallenger must not be/);
  });

  it("checks the settlement committee, challenge window and withdrawal delay", function () {
    const p = resolveParameters(
      { Inframesh: { oracles: [ALICE, BOB], oracleThreshold: 2, challengeWindow: 3_600, withdrawalDelay: "86400" } },
      DEPLOYER,
    );
    expect([p.oracles, p.oracleThreshold, p.challengeWindow, p.withdrawalDelay]).to.deep.equal([
      [ALICE, BOB],
      2n,
      3_600n,
      86_400n,
    ]);
    rejects({ Inframesh: { oracles: [] } }, /oracles must name at least one account/);
    rejects({ Inframesh: { oracles: Array.from({ length: 33 }, () => ALICE) } }, /at most 32 oracles, got 33/);
    rejects({ Inframesh: { oracles: [ALICE, BOB, ALICE.toLowerCase()] } }, /oracles\[2\] repeats oracles\[0\]/);
    rejects({ Inframesh: { oracles: [ALICE, "nope"] } }, /oracles\[1\] must be an address/);
    rejects({ Inframesh: { oracleThreshold: 0 } }, /oracleThreshold must be at least 1/);
    rejects(
      { Inframesh: { oracles: [ALICE, BOB], oracleThreshold: 3 } },
      /oracleThreshold 3 exceeds the committee size \(2 oracles\)/,
    );
    rejects({ Inframesh: { oracleThreshold: 2 } }, /oracleThreshold 2 exceeds the committee size \(1 oracles\)/);
    rejects({ Inframesh: { challengeWindow: 3_599 } }, /challengeWindow must be between 3600 .* got 3599/);
    rejects({ Inframesh: { challengeWindow: 30 * 86_400 + 1 } }, /challengeWindow must be between/);
    rejects({ Inframesh: { withdrawalDelay: 86_399 } }, /withdrawalDelay must be between 86400 .* got 86399/);
    rejects({ Inframesh: { withdrawalDelay: 90 * 86_400 + 1 } }, /withdrawalDelay must be between/);
    rejects(
      { Inframesh: { challengeWindow: 2 * 86_400, withdrawalDelay: 2 * 86_400 } },
      /withdrawalDelay \(172800 s\) must be longer than challengeWindow \(172800 s\)/,
    );
    rejects(
      { Inframesh: { challengeWindow: 3 * 86_400, withdrawalDelay: 2 * 86_400 } },
      /must be longer than challengeWindow/,
    );
  });

  it("checks the fee schedule: a non-zero treasury, protocol fee + royalty at most 5,000 bps", function () {
    const p = resolveParameters(
      { Inframesh: { treasury: ALICE.toLowerCase(), protocolFeeBps: "2000", royaltyBps: 3_000 } },
      DEPLOYER,
    );
    expect([p.treasury, p.protocolFeeBps, p.royaltyBps]).to.deep.equal([ALICE, 2_000, 3_000]);
    expect(treasurySource(p)).to.equal("parameter");
    expect(toIgnitionParameters(p).Inframesh).to.include({ treasury: ALICE, protocolFeeBps: 2_000, royaltyBps: 3_000 });
    const none = resolveParameters({ Inframesh: { protocolFeeBps: 0, royaltyBps: 0 } }, DEPLOYER);
    expect([none.protocolFeeBps, none.royaltyBps]).to.deep.equal([0, 0]);
    expect(toIgnitionParameters(none).Inframesh).to.not.have.property("treasury");
    rejects({ Inframesh: { treasury: "0x0000000000000000000000000000000000000000" } }, /treasury must not be the zero/);
    rejects({ Inframesh: { treasury: "treasury.eth" } }, /treasury must be an address/);
    rejects({ Inframesh: { protocolFeeBps: 5_001 } }, /protocolFeeBps is out of range: 5001 \(max 5000\)/);
    rejects({ Inframesh: { royaltyBps: -1 } }, /royaltyBps must be a non-negative integer/);
    rejects(
      { Inframesh: { protocolFeeBps: 2_500, royaltyBps: 2_501 } },
      /protocolFeeBps \+ royaltyBps must be at most 5000 .* got 2500 \+ 2501 = 5001/,
    );
    // Slashed stake now always goes to RewardClaims: the old parameter is refused, not ignored.
    rejects({ Inframesh: { redistributionRecipient: ALICE } }, /unknown parameter\(s\) redistributionRecipient/);
  });

  it("rejects malformed values, unknown names and contradictions", function () {
    rejects({ Inframesh: { slasher: "0x1234" } }, /slasher must be an address/);
    rejects({ Inframesh: { pauser: "0x0000000000000000000000000000000000000000" } }, /pauser must not be the zero/);
    rejects({ Inframesh: { proposers: [ALICE, "nope"] } }, /proposers\[1\] must be an address/);
    rejects({ Inframesh: { minDelay: -1 } }, /minDelay must be a non-negative integer/);
    rejects({ Inframesh: { minDelay: 1.5 } }, /minDelay must be a non-negative integer/);
    rejects({ Inframesh: { minSelfStake: 1e22 } }, /minSelfStake must be a non-negative integer/);
    rejects({ Inframesh: { tierThresholds: 5 } }, /tierThresholds must be a list/);
    rejects({ Inframesh: { minSelfStak: 1 } }, /unknown parameter\(s\) minSelfStak/);
    rejects({ NodeStaking: {} }, /unknown module id\(s\) NodeStaking/);
    rejects([], /must hold an object/);
    rejects({ Inframesh: { stakeToken: BOB, tokenHolder: ALICE } }, /not deployed when stakeToken is set/);
  });

  it("hands Ignition every value and records them as JSON", function () {
    const p = resolveParameters(undefined, DEPLOYER);
    const ignition = toIgnitionParameters(p);
    expect(Object.keys(ignition)).to.deep.equal(["Inframesh"]);
    expect(ignition.Inframesh).to.not.have.property("stakeToken");
    expect(ignition.Inframesh?.proposers).to.deep.equal([DEPLOYER]);
    expect(ignition.Inframesh?.oracles).to.deep.equal([DEPLOYER]);
    expect(ignition.Inframesh?.oracleThreshold).to.equal(1n);

    const json = parametersToJson(p);
    expect(json.stakeToken).to.equal(null);
    expect(json.minSelfStake).to.equal(DEFAULT_PARAMETERS.minSelfStake.toString());
    expect(json.maxSlashBps).to.equal(DEFAULT_PARAMETERS.maxSlashBps);
    expect(json.tierThresholds).to.deep.equal(DEFAULT_PARAMETERS.tierThresholds.map(String));
    expect(json.oracles).to.deep.equal([DEPLOYER]);
    expect(json.withdrawalDelay).to.equal(DEFAULT_PARAMETERS.withdrawalDelay.toString());
    expect([json.treasury, json.protocolFeeBps, json.royaltyBps]).to.deep.equal([null, 500, 1_000]);
    expect(JSON.parse(JSON.stringify(json))).to.deep.equal(json);
  });
});

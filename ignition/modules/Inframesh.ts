// The Inframesh contracts as one Ignition module: stake token, governance timelock,
// NodeStaking (every protocol role wired, governance handed to the timelock), the
// ModelRegistry (permissionless, no admin: nothing to hand over) and settlement:
// PaymentEscrow, EpochSettlement and RewardClaims (SETTLEMENT_ROLE on the escrow, staking's
// redistribution recipient and earnings payer, see docs/settlement.md), governed by the timelock; and zkML
// (docs/zkml.md): the simplenet circuit's generated Groth16 verifier, which versions' own
// ZkInferenceVerifiers wrap, and ZkChallenge (SLASHER_ROLE on staking, CHALLENGER_ROLE to
// `zkChallenger`), governed by the timelock.
//
// Run through `npx hardhat deploy` (scripts/deploy/task.ts), which validates the parameters,
// fills the defaults that Ignition cannot express (an account list such as `proposers`) and
// records the result in deployments/<network>.json. `npx hardhat ignition deploy
// ignition/modules/Inframesh.ts` works too when `proposers` and `oracles` are given.
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { erc20Abi, keccak256, toBytes } from "viem";

import { SETTLEMENT_ROLE } from "../../sdk/earnings.ts";
import { DEFAULT_ADMIN_ROLE, PAUSER_ROLE, REWARDER_ROLE, SLASHER_ROLE } from "../../sdk/staking.ts";

/** ZkChallenge.CHALLENGER_ROLE. */
const CHALLENGER_ROLE = keccak256(toBytes("CHALLENGER_ROLE"));

/** Module id: the key of this module's parameters in a parameters file. */
export const INFRAMESH_MODULE_ID = "Inframesh";

const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";
const TOKEN = 10n ** 18n;
const DAY = 86_400n;

/** Defaults of the parameters that are plain values (account defaults are the deployer). */
export const DEFAULT_PARAMETERS = {
  /** Dev token supply minted to `tokenHolder`, in base units. */
  initialSupply: 1_000_000_000n * TOKEN,
  /** Timelock delay, seconds. */
  minDelay: 2n * DAY,
  minSelfStake: 10_000n * TOKEN,
  unbondingPeriod: 7n * DAY,
  jailPeriod: 3n * DAY,
  maxSlashBps: 1_000,
  burnBps: 5_000,
  /** Active stake at which a node reaches tier 2, 3, 4. */
  tierThresholds: [50_000n * TOKEN, 250_000n * TOKEN, 1_000_000n * TOKEN],
  /** EpochSettlement: signatures needed to post (committee default: [deployer]). */
  oracleThreshold: 1n,
  /** EpochSettlement: seconds between posting and finality. */
  challengeWindow: 1n * DAY,
  /** PaymentEscrow: seconds between a withdrawal request and the withdrawal. */
  withdrawalDelay: 7n * DAY,
  /** EpochSettlement fee schedule: protocol fee to the treasury, in basis points of each receipt's fee. */
  protocolFeeBps: 500,
  /** EpochSettlement fee schedule: model royalty to the publisher, in basis points of each receipt's fee. */
  royaltyBps: 1_000,
  /** ZkChallenge: seconds a challenged node has to answer with a proof. */
  zkResponseWindow: 1n * DAY,
} as const;

/**
 * How the module gets its stake token: `deploy` the dev InframeshToken, or use the
 * `existing` ERC-20 named by the `stakeToken` parameter. Ignition modules are static graphs
 * (parameter values are not known while the module is built), so the choice is a module
 * variant, picked by the deploy task from the parameters.
 */
export type StakeTokenSource = "deploy" | "existing";

/**
 * Who receives protocol fees: the `timelock` deployed here (the default), or the account named
 * by the `treasury` parameter. A module variant for the same reason as `StakeTokenSource`:
 * a parameter's default cannot be a contract the module deploys.
 */
export type TreasurySource = "timelock" | "parameter";

/** The ABI-only artifact Ignition needs to reference an ERC-20 it did not deploy. */
const EXISTING_STAKE_TOKEN_ARTIFACT = {
  _format: "hh3-artifact-1",
  contractName: "IERC20",
  sourceName: "@openzeppelin/contracts/token/ERC20/IERC20.sol",
  abi: erc20Abi,
  bytecode: "0x",
  deployedBytecode: "0x",
  linkReferences: {},
  deployedLinkReferences: {},
};

/** Builds the module; all variants share the id, so one parameters file serves them all. */
export function buildInframeshModule(stakeTokenSource: StakeTokenSource, treasurySource: TreasurySource = "timelock") {
  return buildModule(INFRAMESH_MODULE_ID, (m) => {
    const deployer = m.getAccount(0);

    const stakeToken =
      stakeTokenSource === "deploy"
        ? m.contract("InframeshToken", [
            m.getParameter("tokenHolder", deployer),
            m.getParameter("initialSupply", DEFAULT_PARAMETERS.initialSupply),
          ])
        : m.contractAt("StakeToken", EXISTING_STAKE_TOKEN_ARTIFACT, m.getParameter<string>("stakeToken"));

    // Executors: the zero address opens execution to anyone once the delay has passed.
    // Admin: none, the timelock administers itself.
    const timelock = m.contract("InframeshTimelock", [
      m.getParameter("minDelay", DEFAULT_PARAMETERS.minDelay),
      m.getParameter<string[]>("proposers"),
      [ZERO_ADDRESS],
      ZERO_ADDRESS,
    ]);

    // The deployer administers NodeStaking only long enough to grant the roles below.
    const nodeStaking = m.contract("NodeStaking", [
      stakeToken,
      deployer,
      {
        minSelfStake: m.getParameter("minSelfStake", DEFAULT_PARAMETERS.minSelfStake),
        unbondingPeriod: m.getParameter("unbondingPeriod", DEFAULT_PARAMETERS.unbondingPeriod),
        jailPeriod: m.getParameter("jailPeriod", DEFAULT_PARAMETERS.jailPeriod),
        maxSlashBps: m.getParameter("maxSlashBps", DEFAULT_PARAMETERS.maxSlashBps),
        burnBps: m.getParameter("burnBps", DEFAULT_PARAMETERS.burnBps),
      },
      m.getParameter<bigint[]>("tierThresholds", [...DEFAULT_PARAMETERS.tierThresholds]),
      // Replaced by RewardClaims below, before the deployer renounces: RewardClaims does not exist yet.
      deployer,
    ]);

    // Settlement. The escrow takes the stake token (RewardClaims checks the two match) and the
    // deployer as admin only long enough to grant SETTLEMENT_ROLE. EpochSettlement has no role
    // to grant, so the timelock is its admin from construction: the deployer never holds it.
    const paymentEscrow = m.contract("PaymentEscrow", [
      stakeToken,
      deployer,
      m.getParameter("withdrawalDelay", DEFAULT_PARAMETERS.withdrawalDelay),
    ]);
    const epochSettlement = m.contract("EpochSettlement", [
      timelock,
      m.getParameter<string[]>("oracles"),
      m.getParameter("oracleThreshold", DEFAULT_PARAMETERS.oracleThreshold),
      m.getParameter("challengeWindow", DEFAULT_PARAMETERS.challengeWindow),
      {
        treasury: treasurySource === "timelock" ? timelock : m.getParameter<string>("treasury"),
        protocolFeeBps: m.getParameter("protocolFeeBps", DEFAULT_PARAMETERS.protocolFeeBps),
        royaltyBps: m.getParameter("royaltyBps", DEFAULT_PARAMETERS.royaltyBps),
      },
    ]);
    // No roles: it reads finality from the settlement and holds the roles granted below.
    const rewardClaims = m.contract("RewardClaims", [epochSettlement, paymentEscrow, nodeStaking, stakeToken]);

    // zkML: a version verifier per zk-required model version is the publisher's to deploy
    // (ZkInferenceVerifier over this circuit verifier); the challenge game is the protocol's.
    const modelRegistry = m.contract("ModelRegistry", []);
    const simplenetVerifier = m.contract("SimplenetVerifier", []);
    const zkChallenge = m.contract("ZkChallenge", [
      nodeStaking,
      modelRegistry,
      deployer,
      m.getParameter("zkResponseWindow", DEFAULT_PARAMETERS.zkResponseWindow),
    ]);
    const zkGrants = [
      m.call(zkChallenge, "grantRole", [CHALLENGER_ROLE, m.getParameter("zkChallenger", deployer)], {
        id: "grantZkChallengerRole",
      }),
      m.call(zkChallenge, "grantRole", [DEFAULT_ADMIN_ROLE, timelock], { id: "grantZkChallengeAdminRoleToTimelock" }),
    ];
    // Last: once renounced, only the timelock can change ZkChallenge.
    m.call(zkChallenge, "renounceRole", [DEFAULT_ADMIN_ROLE, deployer], {
      id: "renounceDeployerZkChallengeAdminRole",
      after: zkGrants,
    });

    const grants = [
      m.call(nodeStaking, "grantRole", [SLASHER_ROLE, m.getParameter("slasher", deployer)], {
        id: "grantSlasherRole",
      }),
      // A challenged node that never answers is slashed by ZkChallenge.executeSlash.
      m.call(nodeStaking, "grantRole", [SLASHER_ROLE, zkChallenge], { id: "grantSlasherRoleToZkChallenge" }),
      m.call(nodeStaking, "grantRole", [PAUSER_ROLE, m.getParameter("pauser", deployer)], {
        id: "grantPauserRole",
      }),
      m.call(nodeStaking, "grantRole", [REWARDER_ROLE, m.getParameter("rewarder", deployer)], {
        id: "grantRewarderRole",
      }),
      // Slashed stake to redistribute goes to RewardClaims, which funds it through settlements; being
      // the recipient also makes it the one contract that funds and pays staking's earnings reserve.
      m.call(nodeStaking, "setRedistributionRecipient", [rewardClaims], { id: "setRedistributionRecipient" }),
      m.call(nodeStaking, "grantRole", [DEFAULT_ADMIN_ROLE, timelock], { id: "grantAdminRoleToTimelock" }),
    ];
    // Last: once renounced, only the timelock can change NodeStaking.
    m.call(nodeStaking, "renounceRole", [DEFAULT_ADMIN_ROLE, deployer], {
      id: "renounceDeployerAdminRole",
      after: grants,
    });

    const escrowGrants = [
      // RewardClaims is the escrow's only debitor (collectDebits).
      m.call(paymentEscrow, "grantRole", [SETTLEMENT_ROLE, rewardClaims], { id: "grantEscrowSettlementRole" }),
      m.call(paymentEscrow, "grantRole", [DEFAULT_ADMIN_ROLE, timelock], { id: "grantEscrowAdminRoleToTimelock" }),
    ];
    // Last: once renounced, only the timelock can change the escrow.
    m.call(paymentEscrow, "renounceRole", [DEFAULT_ADMIN_ROLE, deployer], {
      id: "renounceDeployerEscrowAdminRole",
      after: escrowGrants,
    });

    return {
      stakeToken,
      timelock,
      nodeStaking,
      // No admin role and no constructor arguments: each model's publisher alone changes it.
      modelRegistry,
      paymentEscrow,
      epochSettlement,
      rewardClaims,
      simplenetVerifier,
      zkChallenge,
    };
  });
}

export default buildInframeshModule("deploy");

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IEpochSettlement} from "../interfaces/IEpochSettlement.sol";
import {INodeStaking} from "../interfaces/INodeStaking.sol";
import {IPaymentEscrow} from "../interfaces/IPaymentEscrow.sol";
import {IRewardClaims} from "../interfaces/IRewardClaims.sol";
import {EpochSettlement} from "../settlement/EpochSettlement.sol";
import {InframeshTypes} from "../settlement/InframeshTypes.sol";

/// @title RewardClaims
/// @notice Turns final epoch settlements into payments: debits the clients of each final epoch from
/// the escrow into this contract, then pays cumulative earnings against the latest funded root.
/// @dev Kept apart from `EpochSettlement` (which only decides what is final) so that each contract has
/// one job. Roles it needs: `SETTLEMENT_ROLE` on the escrow, `REWARDER_ROLE` on staking.
/// Token accounting: this contract's balance of `TOKEN` is at least `funded - paid`, and claims never
/// pay more than `funded - paid`, so one account's bad leaf can never take another epoch's debits
/// beyond what was collected. Fee-on-transfer and rebasing tokens are not supported.
contract RewardClaims is IRewardClaims {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    // ------------------------------------------------------------------ constants

    /// @notice Domain tag of every earnings leaf: keeps these leaves apart from any other tree's.
    bytes32 public constant EARNINGS_LEAF_TAG = keccak256("Inframesh.EarningsLeaf.v1");
    /// @notice 100% in basis points (commission denominator, as in staking).
    uint256 public constant MAX_BPS = 10_000;

    /// @notice The committee's settlement contract, source of finality.
    EpochSettlement public immutable SETTLEMENT;
    /// @notice The clients' escrow, debited at funding.
    IPaymentEscrow public immutable ESCROW;
    /// @notice The staking contract, where the stakers' part of a node's earnings compounds.
    INodeStaking public immutable STAKING;
    /// @notice The payment token (the escrow's and the staking contract's).
    IERC20 public immutable TOKEN;

    // ------------------------------------------------------------------ storage

    uint128 private _funded;
    uint128 private _paid;
    uint64 private _nextEpoch;
    bytes32 private _root;

    mapping(address account => uint256) private _claimed;

    // ------------------------------------------------------------------ constructor

    /// @param settlement The settlement contract.
    /// @param escrow The payment escrow (grants this contract SETTLEMENT_ROLE).
    /// @param staking The staking contract (grants this contract REWARDER_ROLE).
    /// @param token The token both the escrow and staking use.
    constructor(EpochSettlement settlement, IPaymentEscrow escrow, INodeStaking staking, IERC20 token) {
        if (address(settlement) == address(0)) revert ZeroAddress("settlement");
        if (address(escrow) == address(0)) revert ZeroAddress("escrow");
        if (address(staking) == address(0)) revert ZeroAddress("staking");
        address paymentToken = address(IPaymentTokenView(address(escrow)).PAYMENT_TOKEN());
        address stakeToken = address(IStakeTokenView(address(staking)).STAKE_TOKEN());
        if (paymentToken != address(token) || stakeToken != address(token)) {
            revert TokenMismatch(paymentToken, stakeToken);
        }
        SETTLEMENT = settlement;
        ESCROW = escrow;
        STAKING = staking;
        TOKEN = token;
        // Staking pulls rewards with transferFrom, only the amount this contract passes to `addRewards`.
        token.forceApprove(address(staking), type(uint256).max);
    }

    // ------------------------------------------------------------------ external: committee

    /// @inheritdoc IRewardClaims
    function collectDebits(
        InframeshTypes.Settlement calldata settlement,
        address[] calldata clients,
        uint256[] calldata amounts
    ) external {
        if (!SETTLEMENT.isOracle(msg.sender)) revert NotAnOracle(msg.sender);
        uint64 epoch = settlement.epoch;
        uint64 expected = _nextEpoch;
        if (epoch != expected) revert UnexpectedEpoch(epoch, expected);
        IEpochSettlement.SettlementRecord memory record = SETTLEMENT.settlementOf(epoch);
        if (record.status != IEpochSettlement.Status.Finalised) revert NotFinal(epoch, record.status);
        bytes32 given = SETTLEMENT.hashSettlement(settlement);
        if (given != record.settlementHash) revert SettlementMismatch(epoch, given, record.settlementHash);
        if (settlement.redistributedSlash != 0) {
            revert SlashRedistributionUnsupported(epoch, settlement.redistributedSlash);
        }

        uint256 totalDebits = settlement.totalDebits;
        _nextEpoch = epoch + 1;
        _root = settlement.earningsRoot;
        _funded += totalDebits.toUint128();
        emit DebitsCollected(epoch, settlement.earningsRoot, totalDebits, clients.length);

        // The escrow moves the debited tokens here; a wrong split reverts the whole funding.
        uint256 debited = ESCROW.debitBatch(clients, amounts);
        if (debited != totalDebits) revert DebitsMismatch(epoch, debited, totalDebits);
    }

    // ------------------------------------------------------------------ external: claims

    /// @inheritdoc IRewardClaims
    function claim(
        address account,
        uint256 cumulativeAmount,
        bytes32[] calldata proof
    ) external returns (uint256 amount) {
        uint64 next = _nextEpoch;
        if (next == 0) revert NoFinalSettlement();
        if (!MerkleProof.verifyCalldata(proof, _root, leafHash(account, cumulativeAmount))) {
            revert InvalidProof(account, cumulativeAmount);
        }
        uint256 already = _claimed[account];
        if (cumulativeAmount <= already) revert NothingToClaim(account, cumulativeAmount, already);
        amount = cumulativeAmount - already;
        uint256 paid = _paid + amount;
        uint256 funded = _funded;
        if (paid > funded) revert InsufficientFunds(amount, funded - _paid);

        // A registered node with stakers shares its earnings; anything else is paid in full.
        uint256 commission = amount;
        INodeStaking.NodeInfo memory info = STAKING.nodeInfo(account);
        if (info.registered && STAKING.activePool(account).shares != 0) {
            commission = (amount * info.commissionBps) / MAX_BPS;
        }
        uint256 toStakers = amount - commission;

        _claimed[account] = cumulativeAmount;
        _paid = uint128(paid); // safe: paid <= funded, a uint128
        emit Claimed(account, next - 1, cumulativeAmount, amount, commission, toStakers);

        // A node's address is its operator's: the commission goes there.
        if (commission != 0) TOKEN.safeTransfer(account, commission);
        if (toStakers != 0) STAKING.addRewards(account, toStakers);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IRewardClaims
    function nextEpoch() external view returns (uint64) {
        return _nextEpoch;
    }

    /// @inheritdoc IRewardClaims
    function latestRoot() external view returns (bool funded, uint64 epoch, bytes32 root) {
        uint64 next = _nextEpoch;
        if (next == 0) return (false, 0, bytes32(0));
        return (true, next - 1, _root);
    }

    /// @inheritdoc IRewardClaims
    function claimed(address account) external view returns (uint256) {
        return _claimed[account];
    }

    /// @inheritdoc IRewardClaims
    function totals() external view returns (uint256 funded, uint256 paid) {
        return (_funded, _paid);
    }

    /// @inheritdoc IRewardClaims
    function leafHash(address account, uint256 cumulativeAmount) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(EARNINGS_LEAF_TAG, account, cumulativeAmount))));
    }
}

/// @dev The escrow's token getter (a public immutable, not part of `IPaymentEscrow`).
interface IPaymentTokenView {
    function PAYMENT_TOKEN() external view returns (IERC20);
}

/// @dev The staking contract's token getter (a public immutable, not part of `INodeStaking`).
interface IStakeTokenView {
    function STAKE_TOKEN() external view returns (IERC20);
}

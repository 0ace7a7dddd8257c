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
/// the escrow, allocates the slashed stake the epoch redistributes, moves both into staking's earnings
/// reserve, then pays cumulative earnings against the latest funded root out of that reserve.
/// @dev Kept apart from `EpochSettlement` (which only decides what is final) so that each contract has
/// one job. It needs `SETTLEMENT_ROLE` on the escrow and must be staking's redistribution recipient,
/// which also makes it the only contract that funds and pays staking's earnings reserve. Token accounting: a funded epoch leaves nothing here (its tokens go to the
/// staking reserve in the same transaction), so this contract's balance of `TOKEN` is the slashed stake
/// released by staking and not yet allocated (`unallocatedSlash()`). Staking pays claims only out of
/// the reserve this contract funded, so a bad leaf can never take tokens that were not funded.
/// Fee-on-transfer and rebasing tokens are not supported.
contract RewardClaims is IRewardClaims {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    // ------------------------------------------------------------------ constants

    /// @notice Domain tag of every earnings leaf: keeps these leaves apart from any other tree's.
    bytes32 public constant EARNINGS_LEAF_TAG = keccak256("Inframesh.EarningsLeaf.v1");

    /// @notice The committee's settlement contract, source of finality.
    EpochSettlement public immutable SETTLEMENT;
    /// @notice The clients' escrow, debited at funding.
    IPaymentEscrow public immutable ESCROW;
    /// @notice The staking contract, where the stakers' part of a node's earnings compounds.
    INodeStaking public immutable STAKING;
    /// @notice The payment token (the escrow's and the staking contract's).
    IERC20 public immutable TOKEN;

    // ------------------------------------------------------------------ storage

    /// @dev One slot, read and written once per funded epoch: the funded total and the next epoch to
    /// fund. Claims do not touch it: what is paid is `funded - STAKING.earningsReserve()`.
    struct Ledger {
        uint208 funded;
        uint48 nextEpoch;
    }

    Ledger private _ledger;
    bytes32 private _root;

    mapping(address account => uint256) private _claimed;

    // ------------------------------------------------------------------ constructor

    /// @param settlement The settlement contract.
    /// @param escrow The payment escrow (grants this contract SETTLEMENT_ROLE).
    /// @param staking The staking contract (names this contract its redistribution recipient).
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
        // Staking pulls each funded epoch with transferFrom, only the amount passed to `fundEarnings`.
        token.forceApprove(address(staking), type(uint256).max);
    }

    // ------------------------------------------------------------------ internal

    /// @dev Funded epochs leave nothing here, so everything held is slashed stake released by staking
    /// (or a direct transfer) that no epoch has allocated yet.
    function _unallocatedSlash() internal view returns (uint256) {
        return TOKEN.balanceOf(address(this));
    }

    // ------------------------------------------------------------------ external: committee

    /// @inheritdoc IRewardClaims
    function collectDebits(InframeshTypes.Settlement calldata settlement, bytes32[] calldata debits) external {
        if (!SETTLEMENT.isOracle(msg.sender)) revert NotAnOracle(msg.sender);
        Ledger memory ledger = _ledger;
        uint64 epoch = settlement.epoch;
        if (epoch != ledger.nextEpoch) revert UnexpectedEpoch(epoch, ledger.nextEpoch);
        IEpochSettlement.SettlementRecord memory record = SETTLEMENT.settlementOf(epoch);
        if (record.status != IEpochSettlement.Status.Finalised) revert NotFinal(epoch, record.status);
        bytes32 given = SETTLEMENT.hashSettlement(settlement);
        if (given != record.settlementHash) revert SettlementMismatch(epoch, given, record.settlementHash);
        // Measured before the debits arrive: only slashed stake already here can be allocated.
        uint256 redistributed = settlement.redistributedSlash;
        uint256 available = _unallocatedSlash();
        if (redistributed > available) revert InsufficientSlashedStake(redistributed, available);

        uint256 totalDebits = settlement.totalDebits;
        _ledger = Ledger({
            funded: (ledger.funded + totalDebits + redistributed).toUint208(),
            nextEpoch: (uint256(epoch) + 1).toUint48()
        });
        _root = settlement.earningsRoot;
        emit DebitsCollected(epoch, settlement.earningsRoot, totalDebits, redistributed, debits.length);

        // The escrow moves the debited tokens here; a wrong split reverts the whole funding.
        uint256 debited = ESCROW.debitPacked(debits);
        if (debited != totalDebits) revert DebitsMismatch(epoch, debited, totalDebits);
        // One transfer per epoch into the reserve claims are paid from, so no claim moves tokens to staking.
        uint256 funding = totalDebits + redistributed;
        if (funding != 0) STAKING.fundEarnings(funding);
    }

    // ------------------------------------------------------------------ external: claims

    /// @inheritdoc IRewardClaims
    function claim(
        address account,
        uint256 cumulativeAmount,
        bytes32[] calldata proof
    ) external returns (uint256 amount) {
        // The root alone: a claim reads no other slot of this contract but the account's own.
        bytes32 root = _root;
        if (root == bytes32(0)) revert NoFinalSettlement();
        if (!MerkleProof.verifyCalldata(proof, root, leafHash(account, cumulativeAmount))) {
            revert InvalidProof(account, cumulativeAmount);
        }
        uint256 already = _claimed[account];
        if (cumulativeAmount <= already) revert NothingToClaim(account, cumulativeAmount, already);
        amount = cumulativeAmount - already;
        _claimed[account] = cumulativeAmount;
        emit Claimed(account, cumulativeAmount, amount);

        // Staking pays from the reserve this contract funded (reverting past it) and splits: a node's
        // commission accrues to its operator, the rest compounds in its pool (`EarningsPaid`); any other
        // account is sent the whole amount.
        STAKING.payEarnings(account, amount);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IRewardClaims
    function nextEpoch() external view returns (uint64) {
        return _ledger.nextEpoch;
    }

    /// @inheritdoc IRewardClaims
    function latestRoot() external view returns (bool funded, uint64 epoch, bytes32 root) {
        uint64 next = _ledger.nextEpoch;
        if (next == 0) return (false, 0, bytes32(0));
        return (true, next - 1, _root);
    }

    /// @inheritdoc IRewardClaims
    function claimed(address account) external view returns (uint256) {
        return _claimed[account];
    }

    /// @inheritdoc IRewardClaims
    function totals() external view returns (uint256 funded, uint256 paid) {
        funded = _ledger.funded;
        paid = funded - STAKING.earningsReserve();
    }

    /// @inheritdoc IRewardClaims
    function unallocatedSlash() external view returns (uint256) {
        return _unallocatedSlash();
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

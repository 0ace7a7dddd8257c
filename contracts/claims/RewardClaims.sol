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
/// the escrow into this contract, allocates the slashed stake the epoch redistributes, then pays
/// cumulative earnings against the latest funded root.
/// @dev Kept apart from `EpochSettlement` (which only decides what is final) so that each contract has
/// one job. Roles it needs: `SETTLEMENT_ROLE` on the escrow, `REWARDER_ROLE` on staking; it is staking's
/// redistribution recipient. Token accounting: this contract's balance of `TOKEN` is
/// `funded - paid + unallocatedSlash()`; claims never pay more than `funded - paid`, and an epoch never
/// allocates more slashed stake than is here unallocated, so a bad leaf can never take tokens that
/// were not funded. Fee-on-transfer and rebasing tokens are not supported.
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

    /// @dev One slot, read and written once by every claim: funded and paid totals (104 bits: twenty
    /// trillion tokens of 18 decimals) and the next epoch to fund.
    struct Ledger {
        uint104 funded;
        uint104 paid;
        uint48 nextEpoch;
    }

    Ledger private _ledger;
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

    // ------------------------------------------------------------------ internal

    /// @dev Tokens held beyond what funded epochs still owe: slashed stake released by staking (or a
    /// direct transfer). Derived from the balance, so no transfer can make the books disagree.
    function _unallocatedSlash(Ledger memory ledger) internal view returns (uint256) {
        uint256 owed = ledger.funded - ledger.paid;
        uint256 balance = TOKEN.balanceOf(address(this));
        return balance > owed ? balance - owed : 0;
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
        uint256 available = _unallocatedSlash(ledger);
        if (redistributed > available) revert InsufficientSlashedStake(redistributed, available);

        uint256 totalDebits = settlement.totalDebits;
        _ledger = Ledger({
            funded: (ledger.funded + totalDebits + redistributed).toUint104(),
            paid: ledger.paid,
            nextEpoch: (uint256(epoch) + 1).toUint48()
        });
        _root = settlement.earningsRoot;
        emit DebitsCollected(epoch, settlement.earningsRoot, totalDebits, redistributed, debits.length);

        // The escrow moves the debited tokens here; a wrong split reverts the whole funding.
        uint256 debited = ESCROW.debitPacked(debits);
        if (debited != totalDebits) revert DebitsMismatch(epoch, debited, totalDebits);
    }

    // ------------------------------------------------------------------ external: claims

    /// @inheritdoc IRewardClaims
    function claim(
        address account,
        uint256 cumulativeAmount,
        bytes32[] calldata proof
    ) external returns (uint256 amount) {
        Ledger memory ledger = _ledger;
        if (ledger.nextEpoch == 0) revert NoFinalSettlement();
        if (!MerkleProof.verifyCalldata(proof, _root, leafHash(account, cumulativeAmount))) {
            revert InvalidProof(account, cumulativeAmount);
        }
        uint256 already = _claimed[account];
        if (cumulativeAmount <= already) revert NothingToClaim(account, cumulativeAmount, already);
        amount = cumulativeAmount - already;
        uint256 paid = ledger.paid + amount;
        if (paid > ledger.funded) revert InsufficientFunds(amount, ledger.funded - ledger.paid);

        _claimed[account] = cumulativeAmount;
        _ledger.paid = uint104(paid); // safe: paid <= funded, a uint104

        // Staking decides the split (a node with stakers: commission to the operator, the rest pulled
        // into its pool); anything else comes back whole as `commission`.
        uint256 commission = STAKING.addEarnings(account, amount);
        emit Claimed(account, ledger.nextEpoch - 1, cumulativeAmount, amount, commission, amount - commission);
        // A node's address is its operator's: the commission goes there.
        if (commission != 0) TOKEN.safeTransfer(account, commission);
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
        Ledger memory ledger = _ledger;
        return (ledger.funded, ledger.paid);
    }

    /// @inheritdoc IRewardClaims
    function unallocatedSlash() external view returns (uint256) {
        return _unallocatedSlash(_ledger);
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

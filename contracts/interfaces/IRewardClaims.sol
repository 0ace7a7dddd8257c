// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InframeshTypes} from "../settlement/InframeshTypes.sol";
import {IEpochSettlement} from "./IEpochSettlement.sol";

/// @title IRewardClaims
/// @notice Funds each final epoch settlement from the clients' escrowed balances and pays every
/// account (node, model publisher, treasury) its cumulative earnings against the latest funded root.
/// @dev The earnings root of a settlement commits to leaves `(account, cumulativeAmount)`, hashed as
/// `keccak256(bytes.concat(keccak256(abi.encode(EARNINGS_LEAF_TAG, account, cumulativeAmount))))`
/// (OpenZeppelin StandardMerkleTree leaves with value types `(bytes32, address, uint256)`), with
/// sorted-pair internal nodes (OpenZeppelin `MerkleProof`). A claim pays
/// `cumulativeAmount - claimed[account]`: one proof covers every epoch since the last claim.
interface IRewardClaims {
    // ------------------------------------------------------------------ events

    /// @notice The clients of `epoch` were debited `totalDebits` in all (`clients` debits), `redistributedSlash`
    /// of the slashed stake held here was allocated to it, and its earnings root became the one claims
    /// are proven against.
    event DebitsCollected(
        uint64 indexed epoch,
        bytes32 indexed earningsRoot,
        uint256 totalDebits,
        uint256 redistributedSlash,
        uint256 clients
    );

    /// @notice `account` claimed `amount` against the latest funded root (that of the last
    /// `DebitsCollected` before it), reaching `cumulativeAmount` claimed. Where the tokens went is in
    /// staking's `EarningsPaid` event of the same call.
    event Claimed(address indexed account, uint256 cumulativeAmount, uint256 amount);

    // ------------------------------------------------------------------ errors

    /// @notice The zero address was given where a contract is required.
    error ZeroAddress(string name);

    /// @notice The escrow pays in `paymentToken` but staking rewards are in `stakeToken`.
    error TokenMismatch(address paymentToken, address stakeToken);

    /// @notice `caller` is not a member of the settlement committee.
    error NotAnOracle(address caller);

    /// @notice Epochs are funded in order: `expected` is next, not `epoch`.
    error UnexpectedEpoch(uint64 epoch, uint64 expected);

    /// @notice The settlement of `epoch` is `status`, not final.
    error NotFinal(uint64 epoch, IEpochSettlement.Status status);

    /// @notice The settlement given hashes to `given`, the committee's final one of `epoch` to `recorded`.
    error SettlementMismatch(uint64 epoch, bytes32 given, bytes32 recorded);

    /// @notice The debits given sum to `debited`; the settlement of `epoch` states `totalDebits`.
    error DebitsMismatch(uint64 epoch, uint256 debited, uint256 totalDebits);

    /// @notice The settlement redistributes `redistributed` slashed stake; only `available` was received
    /// from staking and not yet allocated (see `unallocatedSlash`).
    error InsufficientSlashedStake(uint256 redistributed, uint256 available);

    /// @notice No settlement has been funded yet: there is no root to claim against.
    error NoFinalSettlement();

    /// @notice `proof` does not show `(account, cumulativeAmount)` in the latest funded root.
    error InvalidProof(address account, uint256 cumulativeAmount);

    /// @notice `account` already claimed `claimed`, at least its posted `cumulativeAmount`.
    error NothingToClaim(address account, uint256 cumulativeAmount, uint256 claimed);

    // ------------------------------------------------------------------ committee

    /// @notice Debits the clients of the final settlement of the next unfunded epoch, allocates its
    /// redistributed slashed stake, and makes its earnings root the claim root. A committee member only.
    /// @dev The chain checks that `settlement` is the one the committee signed and finalised, that the
    /// debits sum to its `totalDebits` and that `redistributedSlash <= unallocatedSlash()`; the epoch is
    /// then funded with `totalDebits + redistributedSlash`. Which client pays what is auditable against
    /// the published receipt batch (`settlement.batchSha256`) and the escrow's `DebitedPacked` event.
    /// @param settlement The final settlement of epoch `nextEpoch()`.
    /// @param debits One word per client: `bytes32(uint256(uint160(client)) << 96 | amount)` (a uint96
    /// amount, non-zero), as `PaymentEscrow.debitPacked` takes them.
    function collectDebits(InframeshTypes.Settlement calldata settlement, bytes32[] calldata debits) external;

    // ------------------------------------------------------------------ claims

    /// @notice Pays `account` what it earned since its last claim, out of staking's earnings reserve.
    /// Anyone may call. For a registered node the commission accrues to its operator in staking
    /// (`NodeStaking.withdrawCommission`) and the rest goes into its staking pool; any other account is
    /// sent the whole amount.
    /// @param account The account of the leaf.
    /// @param cumulativeAmount Its cumulative earnings in the latest funded root.
    /// @param proof Merkle proof of the leaf.
    /// @return amount Tokens paid: `cumulativeAmount - claimed(account)`.
    function claim(
        address account,
        uint256 cumulativeAmount,
        bytes32[] calldata proof
    ) external returns (uint256 amount);

    // ------------------------------------------------------------------ views

    /// @notice The next epoch to fund with `collectDebits`.
    function nextEpoch() external view returns (uint64);

    /// @notice The latest funded epoch and its earnings root (claims prove against it).
    /// @return funded Whether any epoch is funded yet.
    /// @return epoch The latest funded epoch.
    /// @return root Its earnings root.
    function latestRoot() external view returns (bool funded, uint64 epoch, bytes32 root);

    /// @notice What `account` has claimed in all.
    function claimed(address account) external view returns (uint256);

    /// @notice Tokens funded in all (client debits plus allocated slashed stake), and paid out in all.
    function totals() external view returns (uint256 funded, uint256 paid);

    /// @notice Slashed stake received from staking (or tokens sent here directly) and not yet
    /// allocated to a settlement: this contract's whole balance (funded epochs leave nothing here).
    function unallocatedSlash() external view returns (uint256);

    /// @notice The leaf hash of `(account, cumulativeAmount)`.
    function leafHash(address account, uint256 cumulativeAmount) external pure returns (bytes32);
}

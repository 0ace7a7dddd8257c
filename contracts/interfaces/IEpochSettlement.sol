// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InframeshTypes} from "../settlement/InframeshTypes.sol";

/// @title IEpochSettlement
/// @notice Epoch settlements posted by the oracle committee: k distinct oracle signatures over an
/// EIP-712 `Settlement`, a challenge window in which any oracle or governance can void it, then
/// finality. Epochs settle in order, one at a time: a settlement is posted for the next epoch only,
/// and the epoch after it can be posted once it is final (a voided epoch is posted again).
/// @dev This is the settlement skeleton: debits from the escrow, claims against the cumulative
/// earnings root and slash redistribution build on the finalised records kept here.
interface IEpochSettlement {
    // ------------------------------------------------------------------ types

    /// @notice Where a settlement of an epoch stands.
    enum Status {
        None,
        Posted,
        Voided,
        Finalised
    }

    /// @notice The record of an epoch's latest settlement.
    /// @param settlementHash EIP-712 digest of the settlement the committee signed.
    /// @param finalisableAt Time from which `finalise` may be called (end of the challenge window).
    /// @param status Where the settlement stands.
    struct SettlementRecord {
        bytes32 settlementHash;
        uint64 finalisableAt;
        Status status;
    }

    /// @notice How each receipt's fee is split; the oracle applies it when it builds the earnings tree.
    /// @dev Per receipt, with `fee` the model version's price (at most the work unit's `maxFee`):
    /// the treasury earns `fee * protocolFeeBps / 10_000` and the model's publisher
    /// `fee * royaltyBps / 10_000` (each rounded down); the serving node earns the rest.
    /// @param treasury Account credited with protocol fees (a leaf of the earnings tree).
    /// @param protocolFeeBps Protocol fee, in basis points of each receipt's fee.
    /// @param royaltyBps Model royalty, in basis points of each receipt's fee.
    struct FeeSchedule {
        address treasury;
        uint16 protocolFeeBps;
        uint16 royaltyBps;
    }

    // ------------------------------------------------------------------ events

    /// @notice A settlement of `epoch` was posted with the committee's signatures.
    event SettlementPosted(
        uint64 indexed epoch,
        bytes32 indexed settlementHash,
        InframeshTypes.Settlement settlement,
        uint64 finalisableAt
    );

    /// @notice `by` (an oracle or governance) voided the settlement of `epoch` for `reason`.
    event SettlementVoided(uint64 indexed epoch, bytes32 indexed settlementHash, address indexed by, string reason);

    /// @notice The settlement of `epoch` became final.
    event SettlementFinalised(uint64 indexed epoch, bytes32 indexed settlementHash);

    /// @notice Governance set the committee to `oracles` with threshold `threshold`.
    event CommitteeSet(address[] oracles, uint256 threshold);

    /// @notice Governance set the challenge window (for settlements posted from now on).
    event ChallengeWindowSet(uint32 challengeWindow);

    /// @notice Governance set the fee schedule (for epochs settled from now on).
    event FeeScheduleSet(address treasury, uint16 protocolFeeBps, uint16 royaltyBps);

    // ------------------------------------------------------------------ errors

    /// @notice Only epoch `expected` can be posted now (epochs settle in order, one at a time).
    error UnexpectedEpoch(uint64 epoch, uint64 expected);

    /// @notice The settlement of `epoch` is `status`, not what the call needs.
    error UnexpectedStatus(uint64 epoch, Status status);

    /// @notice `count` signatures were given; the threshold is `threshold`.
    error InsufficientSignatures(uint256 count, uint256 threshold);

    /// @notice Signature `index` is malformed.
    error InvalidSignature(uint256 index);

    /// @notice Signature `index` was made by `signer`, who is not an oracle (or signed another message,
    /// chain or contract).
    error NotAnOracle(uint256 index, address signer);

    /// @notice Signers must be strictly ascending (so each is counted once): signature `index` is not.
    error SignersNotAscending(uint256 index, address signer, address previous);

    /// @notice The challenge window of `epoch` ends at `finalisableAt`.
    error ChallengeWindowOpen(uint64 epoch, uint64 finalisableAt, uint256 nowTimestamp);

    /// @notice The challenge window of `epoch` closed at `finalisableAt`: it can no longer be voided.
    error ChallengeWindowClosed(uint64 epoch, uint64 finalisableAt, uint256 nowTimestamp);

    /// @notice `caller` is neither an oracle nor governance.
    error NotOracleOrGovernance(address caller);

    /// @notice A committee must have 1..MAX_ORACLES members and a threshold in 1..members.
    error InvalidCommittee(uint256 members, uint256 threshold);

    /// @notice Committee member `oracle` is zero or listed twice.
    error InvalidOracle(address oracle);

    /// @notice The zero address was given where an account is required.
    error ZeroAddress(string name);

    /// @notice A parameter is out of its allowed range.
    error InvalidParameter(string name, uint256 value);

    /// @notice A fee schedule needs a treasury and `protocolFeeBps + royaltyBps <= MAX_FEE_BPS`.
    error InvalidFeeSchedule(address treasury, uint16 protocolFeeBps, uint16 royaltyBps);

    // ------------------------------------------------------------------ committee

    /// @notice Posts the settlement of the next epoch, signed by at least `threshold` distinct oracles.
    /// @dev Anyone may submit: the signatures authorise. Signatures are ordered by ascending signer.
    /// @param settlement The settlement signed.
    /// @param signatures 65-byte ECDSA signatures of `hashSettlement(settlement)`.
    /// @return settlementHash The EIP-712 digest of the settlement.
    function post(
        InframeshTypes.Settlement calldata settlement,
        bytes[] calldata signatures
    ) external returns (bytes32 settlementHash);

    /// @notice Voids the posted settlement of `epoch` during its challenge window. Any oracle or governance.
    /// @param epoch The epoch whose settlement is voided; it can then be posted again.
    /// @param reason Why, for auditors.
    function voidSettlement(uint64 epoch, string calldata reason) external;

    /// @notice Makes the posted settlement of `epoch` final once its challenge window is over. Anyone.
    /// @param epoch The epoch to finalise.
    function finalise(uint64 epoch) external;

    // ------------------------------------------------------------------ governance

    /// @notice Replaces the committee and its threshold. Governance only.
    /// @param oracles The new members (distinct, non-zero, at most MAX_ORACLES).
    /// @param threshold Signatures needed to post (1..members).
    function setCommittee(address[] calldata oracles, uint256 threshold) external;

    /// @notice Sets the challenge window for settlements posted from now on. Governance only.
    /// @dev Keep the escrow's withdrawal delay at least the epoch length plus this window.
    /// @param challengeWindow Seconds, within [MIN_CHALLENGE_WINDOW, MAX_CHALLENGE_WINDOW].
    function setChallengeWindow(uint32 challengeWindow) external;

    /// @notice Sets the fee schedule the oracle applies to receipts from now on. Governance only.
    /// @dev A change takes effect for the epochs the committee settles after it; the oracle reads the
    /// schedule once per epoch, so an epoch is split with one schedule.
    /// @param schedule Non-zero treasury, `protocolFeeBps + royaltyBps <= MAX_FEE_BPS`.
    function setFeeSchedule(FeeSchedule calldata schedule) external;

    // ------------------------------------------------------------------ views

    /// @notice The only epoch that can be posted now (or is posted and pending).
    function nextEpoch() external view returns (uint64);

    /// @notice The latest settlement record of `epoch`.
    function settlementOf(uint64 epoch) external view returns (SettlementRecord memory);

    /// @notice The committee members.
    function oracles() external view returns (address[] memory);

    /// @notice Whether `account` is a committee member.
    function isOracle(address account) external view returns (bool);

    /// @notice Signatures needed to post.
    function threshold() external view returns (uint256);

    /// @notice Seconds between posting and the earliest `finalise`.
    function challengeWindow() external view returns (uint32);

    /// @notice The fee schedule: treasury, protocol fee and model royalty in basis points.
    function feeSchedule() external view returns (FeeSchedule memory);
}

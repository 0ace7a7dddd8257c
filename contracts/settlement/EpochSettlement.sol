// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {IEpochSettlement} from "../interfaces/IEpochSettlement.sol";
import {InframeshTypedData} from "./InframeshTypedData.sol";
import {InframeshTypes} from "./InframeshTypes.sol";

/// @title EpochSettlement
/// @notice Posts, voids and finalises epoch settlements signed by k of the n oracles of the committee.
/// @dev The EIP-712 domain of every Inframesh signature (work units, proofs of serving, settlements)
/// names this contract as its verifying contract. Epochs form one chain: the settlement of epoch e+1
/// can be posted only once the one of epoch e is final, because each earnings root is cumulative.
contract EpochSettlement is IEpochSettlement, InframeshTypedData, AccessControl {
    // ------------------------------------------------------------------ constants

    /// @notice Largest committee governance may set.
    uint256 public constant MAX_ORACLES = 32;
    /// @notice Shortest challenge window governance may set.
    uint32 public constant MIN_CHALLENGE_WINDOW = 1 hours;
    /// @notice Longest challenge window governance may set.
    uint32 public constant MAX_CHALLENGE_WINDOW = 30 days;
    /// @notice Most of a receipt's fee that protocol fee and royalty together may take: the serving
    /// node always keeps at least half.
    uint16 public constant MAX_FEE_BPS = 5_000;

    // ------------------------------------------------------------------ storage

    uint64 private _nextEpoch;
    uint32 private _challengeWindow;
    uint8 private _threshold;
    address[] private _oracles;
    FeeSchedule private _feeSchedule;

    mapping(address account => bool) private _isOracle;
    mapping(uint64 epoch => SettlementRecord) private _settlements;

    // ------------------------------------------------------------------ constructor

    /// @param admin Governance (the timelock), holder of DEFAULT_ADMIN_ROLE.
    /// @param initialOracles The first committee.
    /// @param initialThreshold Signatures needed to post.
    /// @param initialChallengeWindow Seconds between posting and finality.
    /// @param initialFeeSchedule Treasury, protocol fee and royalty the oracle applies to receipts.
    constructor(
        address admin,
        address[] memory initialOracles,
        uint256 initialThreshold,
        uint32 initialChallengeWindow,
        FeeSchedule memory initialFeeSchedule
    ) {
        if (admin == address(0)) revert ZeroAddress("admin");
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setCommittee(initialOracles, initialThreshold);
        _setChallengeWindow(initialChallengeWindow);
        _setFeeSchedule(initialFeeSchedule);
    }

    // ------------------------------------------------------------------ internal

    function _setCommittee(address[] memory newOracles, uint256 newThreshold) internal {
        uint256 members = newOracles.length;
        if (members == 0 || members > MAX_ORACLES || newThreshold == 0 || newThreshold > members) {
            revert InvalidCommittee(members, newThreshold);
        }
        address[] storage current = _oracles;
        for (uint256 i = 0; i < current.length; ++i) _isOracle[current[i]] = false;
        delete _oracles;
        for (uint256 i = 0; i < members; ++i) {
            address oracle = newOracles[i];
            if (oracle == address(0) || _isOracle[oracle]) revert InvalidOracle(oracle);
            _isOracle[oracle] = true;
            _oracles.push(oracle);
        }
        // The cast is safe: the threshold is at most MAX_ORACLES.
        _threshold = uint8(newThreshold);
        emit CommitteeSet(newOracles, newThreshold);
    }

    function _setChallengeWindow(uint32 newChallengeWindow) internal {
        if (newChallengeWindow < MIN_CHALLENGE_WINDOW || newChallengeWindow > MAX_CHALLENGE_WINDOW) {
            revert InvalidParameter("challengeWindow", newChallengeWindow);
        }
        _challengeWindow = newChallengeWindow;
        emit ChallengeWindowSet(newChallengeWindow);
    }

    function _setFeeSchedule(FeeSchedule memory schedule) internal {
        if (
            schedule.treasury == address(0) ||
            uint256(schedule.protocolFeeBps) + uint256(schedule.royaltyBps) > MAX_FEE_BPS
        ) {
            revert InvalidFeeSchedule(schedule.treasury, schedule.protocolFeeBps, schedule.royaltyBps);
        }
        _feeSchedule = schedule;
        emit FeeScheduleSet(schedule.treasury, schedule.protocolFeeBps, schedule.royaltyBps);
    }

    /// @dev At least `_threshold` signatures of `digest`, each by an oracle, signers strictly ascending
    /// (so no oracle counts twice).
    function _checkSignatures(bytes32 digest, bytes[] calldata signatures) internal view {
        uint256 needed = _threshold;
        if (signatures.length < needed) revert InsufficientSignatures(signatures.length, needed);
        address previous = address(0);
        for (uint256 i = 0; i < signatures.length; ++i) {
            (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecoverCalldata(digest, signatures[i]);
            if (err != ECDSA.RecoverError.NoError) revert InvalidSignature(i);
            if (!_isOracle[signer]) revert NotAnOracle(i, signer);
            if (signer <= previous) revert SignersNotAscending(i, signer, previous);
            previous = signer;
        }
    }

    // ------------------------------------------------------------------ external: committee

    /// @inheritdoc IEpochSettlement
    function post(
        InframeshTypes.Settlement calldata settlement,
        bytes[] calldata signatures
    ) external returns (bytes32 settlementHash) {
        uint64 epoch = settlement.epoch;
        uint64 expected = _nextEpoch;
        if (epoch != expected) revert UnexpectedEpoch(epoch, expected);
        Status status = _settlements[epoch].status;
        if (status == Status.Posted) revert UnexpectedStatus(epoch, status);
        settlementHash = hashSettlement(settlement);
        _checkSignatures(settlementHash, signatures);

        uint64 finalisableAt = uint64(block.timestamp) + _challengeWindow;
        _settlements[epoch] = SettlementRecord(settlementHash, finalisableAt, Status.Posted);
        emit SettlementPosted(epoch, settlementHash, settlement, finalisableAt);
    }

    /// @inheritdoc IEpochSettlement
    function voidSettlement(uint64 epoch, string calldata reason) external {
        if (!_isOracle[msg.sender] && !hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert NotOracleOrGovernance(msg.sender);
        }
        SettlementRecord storage record = _settlements[epoch];
        if (record.status != Status.Posted) revert UnexpectedStatus(epoch, record.status);
        uint64 finalisableAt = record.finalisableAt;
        if (block.timestamp >= finalisableAt) revert ChallengeWindowClosed(epoch, finalisableAt, block.timestamp);
        record.status = Status.Voided;
        emit SettlementVoided(epoch, record.settlementHash, msg.sender, reason);
    }

    /// @inheritdoc IEpochSettlement
    function finalise(uint64 epoch) external {
        SettlementRecord storage record = _settlements[epoch];
        if (record.status != Status.Posted) revert UnexpectedStatus(epoch, record.status);
        uint64 finalisableAt = record.finalisableAt;
        if (block.timestamp < finalisableAt) revert ChallengeWindowOpen(epoch, finalisableAt, block.timestamp);
        record.status = Status.Finalised;
        _nextEpoch = epoch + 1;
        emit SettlementFinalised(epoch, record.settlementHash);
    }

    // ------------------------------------------------------------------ external: governance

    /// @inheritdoc IEpochSettlement
    function setCommittee(address[] calldata newOracles, uint256 newThreshold) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setCommittee(newOracles, newThreshold);
    }

    /// @inheritdoc IEpochSettlement
    function setChallengeWindow(uint32 newChallengeWindow) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setChallengeWindow(newChallengeWindow);
    }

    /// @inheritdoc IEpochSettlement
    function setFeeSchedule(FeeSchedule calldata schedule) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setFeeSchedule(schedule);
    }

    // ------------------------------------------------------------------ external: views

    /// @inheritdoc IEpochSettlement
    function nextEpoch() external view returns (uint64) {
        return _nextEpoch;
    }

    /// @inheritdoc IEpochSettlement
    function settlementOf(uint64 epoch) external view returns (SettlementRecord memory) {
        return _settlements[epoch];
    }

    /// @inheritdoc IEpochSettlement
    function oracles() external view returns (address[] memory) {
        return _oracles;
    }

    /// @inheritdoc IEpochSettlement
    function isOracle(address account) external view returns (bool) {
        return _isOracle[account];
    }

    /// @inheritdoc IEpochSettlement
    function threshold() external view returns (uint256) {
        return _threshold;
    }

    /// @inheritdoc IEpochSettlement
    function challengeWindow() external view returns (uint32) {
        return _challengeWindow;
    }

    /// @inheritdoc IEpochSettlement
    function feeSchedule() external view returns (FeeSchedule memory) {
        return _feeSchedule;
    }
}

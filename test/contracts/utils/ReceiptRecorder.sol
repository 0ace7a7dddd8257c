// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ReceiptRecorder
/// @notice Benchmark baseline only (bench/settlement.ts), never deployed: the "one call per
/// receipt" design that epoch settlements replace. Each receipt is stored by job id (so it cannot
/// be recorded twice) and announced in an event, with no signature checks and no payment.
contract ReceiptRecorder {
    mapping(bytes32 jobId => address node) public servedBy;

    /// @notice `node` served job `jobId` for `client` at `fee`.
    event ReceiptRecorded(bytes32 indexed jobId, address indexed node, address indexed client, uint256 fee);

    /// @notice Job `jobId` was already recorded.
    error AlreadyRecorded(bytes32 jobId);

    /// @notice Records that `node` served `jobId` for `client` at `fee`.
    function record(bytes32 jobId, address node, address client, uint256 fee) external {
        if (servedBy[jobId] != address(0)) revert AlreadyRecorded(jobId);
        servedBy[jobId] = node;
        emit ReceiptRecorded(jobId, node, client, fee);
    }
}

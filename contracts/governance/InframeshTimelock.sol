// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title InframeshTimelock
/// @notice Governance delay: holds DEFAULT_ADMIN_ROLE of every protocol contract, so each parameter
/// change is scheduled publicly and executable only after `minDelay`.
contract InframeshTimelock is TimelockController {
    /// @param minDelay Seconds between scheduling and executing an operation.
    /// @param proposers Accounts allowed to schedule (and cancel) operations.
    /// @param executors Accounts allowed to execute; the zero address opens execution to anyone.
    /// @param admin Optional bootstrap admin (zero address: the timelock administers itself).
    constructor(
        uint256 minDelay,
        address[] memory proposers,
        address[] memory executors,
        address admin
    ) TimelockController(minDelay, proposers, executors, admin) {}
}

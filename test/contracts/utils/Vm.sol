// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Vm
/// @notice The few cheatcodes the Solidity tests use. forge-std is not available here, so this
/// declares them against the cheatcode address that Hardhat's EDR runner (like Foundry) serves.
interface Vm {
    /// @notice Sets `msg.sender` for the next call only.
    function prank(address sender) external;

    /// @notice Sets `msg.sender` for every call until `stopPrank`.
    function startPrank(address sender) external;

    /// @notice Ends a `startPrank`.
    function stopPrank() external;

    /// @notice Sets `block.timestamp`.
    function warp(uint256 newTimestamp) external;

    /// @notice Expects the next call to revert with exactly `revertData`.
    function expectRevert(bytes calldata revertData) external;

    /// @notice Expects the next call to revert with a custom error whose selector is `revertSelector`.
    function expectRevert(bytes4 revertSelector) external;

    /// @notice Discards the current fuzz input when `condition` is false.
    function assume(bool condition) external pure;

    /// @notice Signs `digest` with `privateKey` (secp256k1), returning the ECDSA signature parts.
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);

    /// @notice The address of `privateKey`.
    function addr(uint256 privateKey) external pure returns (address);

    /// @notice Names an address in traces.
    function label(address account, string calldata newLabel) external;
}

/// @dev address(uint160(uint256(keccak256("hevm cheat code")))) = 0x7109709ECfa91a80626fF3989D68f67F5b1DD12D
Vm constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

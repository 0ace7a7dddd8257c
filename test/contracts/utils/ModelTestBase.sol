// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The few cheatcodes the model registry tests use (forge-std is not available here).
interface ModelVm {
    function prank(address sender) external;
    function expectRevert(bytes calldata revertData) external;
    function assume(bool condition) external;
}

/// @notice Minimal test base for the model registry's Solidity tests: cheatcodes and asserts
/// that revert with a message naming what differed.
abstract contract ModelTestBase {
    ModelVm internal constant VM = ModelVm(address(uint160(uint256(keccak256("hevm cheat code")))));

    error AssertionFailed(string what);
    error AssertionFailedBytes32(string what, bytes32 actual, bytes32 expected);
    error AssertionFailedUint(string what, uint256 actual, uint256 expected);

    function assertTrue(bool condition, string memory what) internal pure {
        if (!condition) revert AssertionFailed(what);
    }

    function assertFalse(bool condition, string memory what) internal pure {
        if (condition) revert AssertionFailed(what);
    }

    function assertEq(bytes32 actual, bytes32 expected, string memory what) internal pure {
        if (actual != expected) revert AssertionFailedBytes32(what, actual, expected);
    }

    function assertEq(uint256 actual, uint256 expected, string memory what) internal pure {
        if (actual != expected) revert AssertionFailedUint(what, actual, expected);
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

/// @title Test
/// @notice A minimal stand-in for forge-std's Test: assertions that revert with a message, `bound`
/// for fuzz inputs, and the StdInvariant getters (`targetContracts`, `targetSelectors`,
/// `targetSenders`, `excludeSenders`, `excludeContracts`) that the invariant runner reads.
abstract contract Test {
    using Strings for uint256;
    using Strings for address;

    /// @notice Selectors of one target contract the invariant fuzzer may call (forge-std's layout).
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    /// @notice Marks this contract as a test contract (DSTest convention).
    bool public IS_TEST = true;

    address[] private _targetedContracts;
    FuzzSelector[] private _targetedSelectors;
    address[] private _targetedSenders;
    address[] private _excludedSenders;
    address[] private _excludedContracts;

    // ------------------------------------------------------------------ invariant targets

    function targetContract(address target) internal {
        _targetedContracts.push(target);
    }

    function targetSelector(FuzzSelector memory selector) internal {
        _targetedSelectors.push(selector);
    }

    function targetSender(address sender) internal {
        _targetedSenders.push(sender);
    }

    function excludeSender(address sender) internal {
        _excludedSenders.push(sender);
    }

    function excludeContract(address target) internal {
        _excludedContracts.push(target);
    }

    function targetContracts() public view returns (address[] memory) {
        return _targetedContracts;
    }

    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetedSelectors;
    }

    function targetSenders() public view returns (address[] memory) {
        return _targetedSenders;
    }

    function excludeSenders() public view returns (address[] memory) {
        return _excludedSenders;
    }

    function excludeContracts() public view returns (address[] memory) {
        return _excludedContracts;
    }

    // ------------------------------------------------------------------ fuzz helpers

    /// @dev Maps `x` into [min, max] (forge-std's `bound`, without logging): values already in range
    /// are kept, so the fuzzer's edge values (0, 1, max) still reach the range's edges.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: min > max");
        if (x >= min && x <= max) return x;
        uint256 size = max - min + 1;
        if (x <= 3 && size > x) return min + x;
        if (x >= type(uint256).max - 3 && size > type(uint256).max - x) return max - (type(uint256).max - x);
        if (x > max) return min + ((x - max - 1) % size);
        return max - ((min - x - 1) % size);
    }

    // ------------------------------------------------------------------ assertions

    function fail(string memory message) internal pure {
        revert(string.concat("assertion failed: ", message));
    }

    function assertTrue(bool condition, string memory message) internal pure {
        if (!condition) fail(message);
    }

    function assertFalse(bool condition, string memory message) internal pure {
        if (condition) fail(message);
    }

    function assertEq(uint256 a, uint256 b, string memory message) internal pure {
        if (a != b) fail(string.concat(message, ": ", a.toString(), " != ", b.toString()));
    }

    function assertEq(address a, address b, string memory message) internal pure {
        if (a != b) fail(string.concat(message, ": ", a.toHexString(), " != ", b.toHexString()));
    }

    function assertEq(bool a, bool b, string memory message) internal pure {
        if (a != b) fail(string.concat(message, ": ", a ? "true" : "false", " != ", b ? "true" : "false"));
    }

    function assertEq(bytes32 a, bytes32 b, string memory message) internal pure {
        if (a != b) fail(string.concat(message, ": ", uint256(a).toHexString(32), " != ", uint256(b).toHexString(32)));
    }

    function assertLe(uint256 a, uint256 b, string memory message) internal pure {
        if (a > b) fail(string.concat(message, ": ", a.toString(), " > ", b.toString()));
    }

    function assertLt(uint256 a, uint256 b, string memory message) internal pure {
        if (a >= b) fail(string.concat(message, ": ", a.toString(), " >= ", b.toString()));
    }

    function assertGe(uint256 a, uint256 b, string memory message) internal pure {
        if (a < b) fail(string.concat(message, ": ", a.toString(), " < ", b.toString()));
    }

    function assertGt(uint256 a, uint256 b, string memory message) internal pure {
        if (a <= b) fail(string.concat(message, ": ", a.toString(), " <= ", b.toString()));
    }

    /// @dev |a - b| <= maxDelta.
    function assertApproxEqAbs(uint256 a, uint256 b, uint256 maxDelta, string memory message) internal pure {
        uint256 delta = a > b ? a - b : b - a;
        if (delta > maxDelta) {
            fail(
                string.concat(
                    message,
                    ": ",
                    a.toString(),
                    " !~ ",
                    b.toString(),
                    " (max delta ",
                    maxDelta.toString(),
                    ")"
                )
            );
        }
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

import {IEpochSettlement} from "../../contracts/interfaces/IEpochSettlement.sol";
import {EpochSettlement} from "../../contracts/settlement/EpochSettlement.sol";
import {InframeshTypes} from "../../contracts/settlement/InframeshTypes.sol";
import {Test} from "./utils/Test.sol";
import {vm} from "./utils/Vm.sol";

/// @title EpochSettlementFuzzTest
/// @notice Fuzz tests of the k-of-n posting rule: any set of at least k distinct oracles, in ascending
/// order, posts; fewer, a repeated oracle, a stranger or a changed field never does; a settlement
/// cannot be voided after its window nor finalised before it.
contract EpochSettlementFuzzTest is Test {
    uint256 internal constant MEMBERS = 5;
    uint256 internal constant THRESHOLD = 3;
    uint32 internal constant CHALLENGE_WINDOW = 1 days;
    /// @dev Order of secp256k1's group: private keys are in [1, N - 1].
    uint256 internal constant SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141;

    EpochSettlement internal settlement;
    /// @dev Oracle private keys, sorted by ascending address.
    uint256[MEMBERS] internal keys;

    function setUp() public {
        vm.warp(1_700_000_000);
        for (uint256 i = 0; i < MEMBERS; ++i) keys[i] = 0xA000 + i;
        // Insertion sort by address, so that any increasing index subset is in ascending signer order.
        for (uint256 i = 1; i < MEMBERS; ++i) {
            for (uint256 j = i; j > 0 && vm.addr(keys[j]) < vm.addr(keys[j - 1]); --j) {
                (keys[j], keys[j - 1]) = (keys[j - 1], keys[j]);
            }
        }
        address[] memory members = new address[](MEMBERS);
        for (uint256 i = 0; i < MEMBERS; ++i) members[i] = vm.addr(keys[i]);
        settlement = new EpochSettlement(
            address(this),
            members,
            THRESHOLD,
            CHALLENGE_WINDOW,
            IEpochSettlement.FeeSchedule({treasury: address(0x7EA5), protocolFeeBps: 500, royaltyBps: 1_000})
        );
    }

    // ------------------------------------------------------------------ helpers

    function _settlement(uint64 epoch, bytes32 seed) internal pure returns (InframeshTypes.Settlement memory) {
        return
            InframeshTypes.Settlement({
                epoch: epoch,
                earningsRoot: keccak256(abi.encode(seed, "root")),
                totalDebits: uint256(seed) % 1e30,
                fees: uint256(seed) % 1e27,
                royalties: uint256(seed) % 1e28,
                redistributedSlash: uint256(seed) % 1e26,
                receiptCount: uint64(uint256(seed) % 1e6),
                batchSha256: sha256(abi.encode(seed))
            });
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @dev Signatures of `digest` by the oracles whose bit is set in `mask`, in ascending signer order.
    function _signSubset(uint256 mask, bytes32 digest) internal view returns (bytes[] memory signatures) {
        uint256 count = 0;
        for (uint256 i = 0; i < MEMBERS; ++i) if (mask & (1 << i) != 0) ++count;
        signatures = new bytes[](count);
        uint256 next = 0;
        for (uint256 i = 0; i < MEMBERS; ++i) if (mask & (1 << i) != 0) signatures[next++] = _sign(keys[i], digest);
    }

    // ------------------------------------------------------------------ tests

    /// @notice Any subset of the committee posts iff it has at least `THRESHOLD` members.
    function testFuzz_post_anySubsetOfAtLeastK(uint256 mask, bytes32 seed) public {
        mask = bound(mask, 0, (1 << MEMBERS) - 1);
        InframeshTypes.Settlement memory s = _settlement(0, seed);
        bytes[] memory signatures = _signSubset(mask, settlement.hashSettlement(s));
        if (signatures.length < THRESHOLD) {
            vm.expectRevert(
                abi.encodeWithSelector(IEpochSettlement.InsufficientSignatures.selector, signatures.length, THRESHOLD)
            );
            settlement.post(s, signatures);
        } else {
            bytes32 digest = settlement.post(s, signatures);
            IEpochSettlement.SettlementRecord memory record = settlement.settlementOf(0);
            assertEq(record.settlementHash, digest, "recorded hash");
            assertEq(uint256(record.status), uint256(IEpochSettlement.Status.Posted), "status");
        }
    }

    /// @notice Repeating one oracle's signature never helps reach the threshold.
    function testFuzz_post_repeatedOracleRefused(uint256 mask, uint256 which, bytes32 seed) public {
        // A subset of the committee with one of its signatures given twice, next to itself.
        mask = bound(mask, 0, (1 << MEMBERS) - 1);
        InframeshTypes.Settlement memory s = _settlement(0, seed);
        bytes32 digest = settlement.hashSettlement(s);
        bytes[] memory distinct = _signSubset(mask, digest);
        vm.assume(distinct.length >= 1 && distinct.length < MEMBERS);
        which = bound(which, 0, distinct.length - 1);
        bytes[] memory signatures = new bytes[](distinct.length + 1);
        for (uint256 i = 0; i <= which; ++i) signatures[i] = distinct[i];
        signatures[which + 1] = distinct[which];
        for (uint256 i = which + 1; i < distinct.length; ++i) signatures[i + 1] = distinct[i];
        if (signatures.length < THRESHOLD) {
            vm.expectRevert(
                abi.encodeWithSelector(IEpochSettlement.InsufficientSignatures.selector, signatures.length, THRESHOLD)
            );
        } else {
            address repeated = ECDSA.recover(digest, distinct[which]);
            vm.expectRevert(
                abi.encodeWithSelector(IEpochSettlement.SignersNotAscending.selector, which + 1, repeated, repeated)
            );
        }
        settlement.post(s, signatures);
    }

    /// @notice A stranger's signature in place of an oracle's is refused with its position and address.
    function testFuzz_post_strangerRefused(uint256 strangerKey, uint256 position, bytes32 seed) public {
        strangerKey = bound(strangerKey, 1, SECP256K1_N - 1);
        address stranger = vm.addr(strangerKey);
        vm.assume(!settlement.isOracle(stranger));
        InframeshTypes.Settlement memory s = _settlement(0, seed);
        bytes32 digest = settlement.hashSettlement(s);
        bytes[] memory signatures = _signSubset((1 << MEMBERS) - 1, digest);
        position = bound(position, 0, MEMBERS - 1);
        signatures[position] = _sign(strangerKey, digest);
        vm.expectRevert(abi.encodeWithSelector(IEpochSettlement.NotAnOracle.selector, position, stranger));
        settlement.post(s, signatures);
    }

    /// @notice Signatures of one settlement never post another one (any field changed).
    function testFuzz_post_changedFieldRefused(uint256 field, uint256 delta, bytes32 seed) public {
        InframeshTypes.Settlement memory s = _settlement(0, seed);
        bytes[] memory signatures = _signSubset((1 << MEMBERS) - 1, settlement.hashSettlement(s));
        delta = bound(delta, 1, type(uint64).max);
        field = bound(field, 0, 6);
        if (field == 0) s.earningsRoot = bytes32(uint256(s.earningsRoot) ^ delta);
        else if (field == 1) s.totalDebits += delta;
        else if (field == 2) s.fees += delta;
        else if (field == 3) s.royalties += delta;
        else if (field == 4) s.redistributedSlash += delta;
        else if (field == 5) s.receiptCount ^= uint64(delta);
        else s.batchSha256 = bytes32(uint256(s.batchSha256) ^ delta);
        address recovered = ECDSA.recover(settlement.hashSettlement(s), signatures[0]);
        assertFalse(settlement.isOracle(recovered), "a changed settlement recovered an oracle");
        vm.expectRevert(abi.encodeWithSelector(IEpochSettlement.NotAnOracle.selector, 0, recovered));
        settlement.post(s, signatures);
    }

    /// @notice Voiding works only before `finalisableAt`, finalising only from it on.
    function testFuzz_windowSplitsVoidFromFinalise(uint256 elapsed, bytes32 seed) public {
        InframeshTypes.Settlement memory s = _settlement(0, seed);
        settlement.post(s, _signSubset((1 << MEMBERS) - 1, settlement.hashSettlement(s)));
        uint64 finalisableAt = settlement.settlementOf(0).finalisableAt;
        elapsed = bound(elapsed, 0, 2 * uint256(CHALLENGE_WINDOW));
        vm.warp(block.timestamp + elapsed);
        if (block.timestamp < finalisableAt) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IEpochSettlement.ChallengeWindowOpen.selector,
                    uint64(0),
                    finalisableAt,
                    block.timestamp
                )
            );
            settlement.finalise(0);
            settlement.voidSettlement(0, "fuzz");
            assertEq(uint256(settlement.settlementOf(0).status), uint256(IEpochSettlement.Status.Voided), "voided");
        } else {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IEpochSettlement.ChallengeWindowClosed.selector,
                    uint64(0),
                    finalisableAt,
                    block.timestamp
                )
            );
            settlement.voidSettlement(0, "fuzz");
            settlement.finalise(0);
            assertEq(settlement.nextEpoch(), 1, "next epoch");
        }
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";

import {RewardClaims} from "../../contracts/claims/RewardClaims.sol";
import {PaymentEscrow} from "../../contracts/escrow/PaymentEscrow.sol";
import {INodeStaking} from "../../contracts/interfaces/INodeStaking.sol";
import {IRewardClaims} from "../../contracts/interfaces/IRewardClaims.sol";
import {IEpochSettlement} from "../../contracts/interfaces/IEpochSettlement.sol";
import {EpochSettlement} from "../../contracts/settlement/EpochSettlement.sol";
import {InframeshTypes} from "../../contracts/settlement/InframeshTypes.sol";
import {StakingFixture} from "./utils/StakingFixture.sol";
import {vm} from "./utils/Vm.sol";

/// @title RewardClaimsFuzzTest
/// @notice Escrow, settlement, claims and staking together over random epochs of cumulative
/// earnings and random claim schedules: no account is ever paid more than its posted cumulative
/// amount, every claim pays exactly the difference since the last one, an inflated amount never
/// proves, and tokens are conserved (staking's earnings reserve holds funded - paid, the claims contract
/// only unallocated slashed stake, the escrow its total balance).
contract RewardClaimsFuzzTest is StakingFixture {
    uint256 internal constant EPOCHS = 4;
    uint256 internal constant ORACLE_KEY = 0xA11CE;
    uint32 internal constant CHALLENGE_WINDOW = 1 hours;
    /// @dev Largest earnings increment per account per epoch: a billion tokens.
    uint256 internal constant MAX_INCREMENT = 1e27;

    address internal constant NODE = address(0x40DE);
    address internal constant PUBLISHER = address(0xB0B);
    address internal constant CLIENT = address(0xC11E);
    address internal constant SLASHED_NODE = address(0x5A5A);
    address internal constant TREASURY = address(0x7EA5);
    uint256 internal constant PROTOCOL_FEE_BPS = 500;
    uint256 internal constant ROYALTY_BPS = 1_000;
    uint256 internal constant BPS = 10_000;

    PaymentEscrow internal escrow;
    EpochSettlement internal settlement;
    RewardClaims internal claims;
    uint256 internal initialPoolStake;

    function setUp() public {
        _deploy();
        escrow = new PaymentEscrow(token, address(this), 1 days);
        address[] memory members = new address[](1);
        members[0] = vm.addr(ORACLE_KEY);
        settlement = new EpochSettlement(
            address(this),
            members,
            1,
            CHALLENGE_WINDOW,
            IEpochSettlement.FeeSchedule({treasury: address(0x7EA5), protocolFeeBps: 500, royaltyBps: 1_000})
        );
        claims = new RewardClaims(settlement, escrow, staking, token);
        escrow.grantRole(escrow.SETTLEMENT_ROLE(), address(claims));
        staking.setRedistributionRecipient(address(claims));

        _approve(NODE);
        _register(NODE);
        _stake(NODE, NODE, MIN_SELF_STAKE);
        initialPoolStake = staking.activePool(NODE).stake;

        uint256 deposit = 2 * EPOCHS * MAX_INCREMENT;
        token.transfer(CLIENT, deposit);
        vm.startPrank(CLIENT);
        token.approve(address(escrow), deposit);
        escrow.deposit(deposit);
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ helpers

    /// @dev Posts, finalises and funds epoch `epoch` with a two-leaf root, the client paying `debit`.
    function _settle(uint64 epoch, bytes32 root, uint256 debit) internal {
        _settle(epoch, root, debit, 0, 0, 0);
    }

    /// @dev Posts, finalises and funds epoch `epoch`: the client pays `debit`, `redistributed` slashed
    /// stake is allocated.
    function _settle(
        uint64 epoch,
        bytes32 root,
        uint256 debit,
        uint256 fees,
        uint256 royalties,
        uint256 redistributed
    ) internal {
        InframeshTypes.Settlement memory s = InframeshTypes.Settlement({
            epoch: epoch,
            earningsRoot: root,
            totalDebits: debit,
            fees: fees,
            royalties: royalties,
            redistributedSlash: redistributed,
            receiptCount: 1,
            batchSha256: sha256(abi.encode(epoch))
        });
        (uint8 v, bytes32 r, bytes32 sig) = vm.sign(ORACLE_KEY, settlement.hashSettlement(s));
        bytes[] memory signatures = new bytes[](1);
        signatures[0] = abi.encodePacked(r, sig, v);
        settlement.post(s, signatures);
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        settlement.finalise(epoch);
        bytes32[] memory debits = new bytes32[](debit == 0 ? 0 : 1);
        if (debit != 0) debits[0] = bytes32((uint256(uint160(CLIENT)) << 96) | debit);
        vm.prank(vm.addr(ORACLE_KEY));
        claims.collectDebits(s, debits);
    }

    function _proof(bytes32 sibling) internal pure returns (bytes32[] memory proof) {
        proof = new bytes32[](1);
        proof[0] = sibling;
    }

    /// @dev What `account` has received so far: tokens, plus for the node its pool's growth and the
    /// commission accrued to its operator.
    function _received(address account) internal view returns (uint256) {
        uint256 got = token.balanceOf(account);
        if (account == NODE) {
            got += staking.activePool(NODE).stake - initialPoolStake + staking.nodeInfo(NODE).commissionOwed;
        }
        return got;
    }

    /// @dev Funded epochs sit in staking's reserve until claimed: reserve = funded - paid, and paid is
    /// the sum of every account's claims.
    function _checkReserve(uint256 claimedInAll) internal view {
        (uint256 funded, uint256 paid) = claims.totals();
        assertEq(paid, claimedInAll, "paid != sum of claimed");
        assertEq(staking.earningsReserve(), funded - paid, "earnings reserve != funded - paid");
        assertEq(token.balanceOf(address(claims)), claims.unallocatedSlash(), "claims holds funded tokens");
    }

    /// @dev Claims for `account` if it has anything new, else expects NothingToClaim; checks the amount paid.
    function _claimAndCheck(address account, uint256 cumulative, bytes32 sibling, uint256 inflate) internal {
        bytes32[] memory proof = _proof(sibling);
        // A larger amount than posted never proves.
        uint256 inflated = cumulative + 1 + bound(inflate, 0, MAX_INCREMENT);
        vm.expectRevert(abi.encodeWithSelector(IRewardClaims.InvalidProof.selector, account, inflated));
        claims.claim(account, inflated, proof);

        uint256 already = claims.claimed(account);
        if (cumulative == already) {
            vm.expectRevert(
                abi.encodeWithSelector(IRewardClaims.NothingToClaim.selector, account, cumulative, already)
            );
            claims.claim(account, cumulative, proof);
            return;
        }
        uint256 before = _received(account);
        uint256 paid = claims.claim(account, cumulative, proof);
        assertEq(paid, cumulative - already, "paid != cumulative - claimed");
        // Commission to the operator plus the pool's growth is exactly the amount paid.
        assertEq(_received(account) - before, paid, "received != paid");
        assertEq(claims.claimed(account), cumulative, "claimed != cumulative");
    }

    // ------------------------------------------------------------------ tests

    /// @notice Over `EPOCHS` epochs of random increments and random claim schedules, each account
    /// receives in all exactly what it claimed, never more than its latest posted cumulative amount.
    function testFuzz_claims_neverPayMoreThanPosted(
        uint256[EPOCHS] memory nodeIncrements,
        uint256[EPOCHS] memory publisherIncrements,
        uint256 claimMask,
        uint256 inflate
    ) public {
        uint256 nodeCumulative = 0;
        uint256 publisherCumulative = 0;
        for (uint256 e = 0; e < EPOCHS; ++e) {
            uint256 nodeIncrement = bound(nodeIncrements[e], 0, MAX_INCREMENT);
            uint256 publisherIncrement = bound(publisherIncrements[e], 0, MAX_INCREMENT);
            nodeCumulative += nodeIncrement;
            publisherCumulative += publisherIncrement;
            bytes32 nodeLeaf = claims.leafHash(NODE, nodeCumulative);
            bytes32 publisherLeaf = claims.leafHash(PUBLISHER, publisherCumulative);
            _settle(
                uint64(e),
                Hashes.commutativeKeccak256(nodeLeaf, publisherLeaf),
                nodeIncrement + publisherIncrement
            );

            if (claimMask & (1 << (2 * e)) != 0) _claimAndCheck(NODE, nodeCumulative, publisherLeaf, inflate);
            if (claimMask & (1 << (2 * e + 1)) != 0) {
                _claimAndCheck(PUBLISHER, publisherCumulative, nodeLeaf, inflate);
            }

            assertLe(claims.claimed(NODE), nodeCumulative, "node claimed more than posted");
            assertLe(claims.claimed(PUBLISHER), publisherCumulative, "publisher claimed more than posted");
            assertLe(_received(NODE), nodeCumulative, "node received more than posted");
            assertLe(_received(PUBLISHER), publisherCumulative, "publisher received more than posted");
            _checkReserve(claims.claimed(NODE) + claims.claimed(PUBLISHER));
            assertEq(claims.unallocatedSlash(), 0, "no slash, yet unallocated tokens");
            assertEq(token.balanceOf(address(escrow)), escrow.totalBalance(), "escrow balance != total balance");
        }
        // Claiming everything at the end pays each account exactly its final cumulative amount.
        bytes32 finalNodeLeaf = claims.leafHash(NODE, nodeCumulative);
        bytes32 finalPublisherLeaf = claims.leafHash(PUBLISHER, publisherCumulative);
        _claimAndCheck(NODE, nodeCumulative, finalPublisherLeaf, inflate);
        _claimAndCheck(PUBLISHER, publisherCumulative, finalNodeLeaf, inflate);
        assertEq(_received(NODE), nodeCumulative, "node total != posted");
        assertEq(_received(PUBLISHER), publisherCumulative, "publisher total != posted");
        assertEq(token.balanceOf(address(claims)), 0, "claims keeps tokens after every claim");
    }

    /// @dev Every holder of the token in this test: the sum never changes.
    function _held() internal view returns (uint256 sum) {
        address[10] memory holders = [
            address(escrow),
            address(staking),
            address(claims),
            address(this),
            CLIENT,
            NODE,
            SLASHED_NODE,
            PUBLISHER,
            TREASURY,
            BURN
        ];
        for (uint256 i = 0; i < holders.length; ++i) sum += token.balanceOf(holders[i]);
    }

    /// @dev Claims `cumulative` for `account` with `proof` when it has anything new.
    function _claimIfDue(address account, uint256 cumulative, bytes32[] memory proof) internal {
        if (cumulative > claims.claimed(account)) claims.claim(account, cumulative, proof);
    }

    /// @dev What the slash-redistribution test has posted so far.
    struct Books {
        uint256[3] cumulative; // node, publisher, treasury
        uint256 credits;
        uint256 debits;
        uint256 redistributed;
        uint256 held;
    }

    function _leaves(Books memory b) internal view returns (bytes32[3] memory) {
        return
            [
                claims.leafHash(NODE, b.cumulative[0]),
                claims.leafHash(PUBLISHER, b.cumulative[1]),
                claims.leafHash(TREASURY, b.cumulative[2])
            ];
    }

    /// @dev Claims for all three accounts of a 3-leaf tree ((node, publisher), treasury) — the node
    /// and treasury only when asked — when they have anything new.
    function _claimAll(Books memory b, bool node, bool treasury) internal {
        bytes32[3] memory leaves = _leaves(b);
        bytes32[] memory proof = new bytes32[](2);
        (proof[0], proof[1]) = (leaves[1], leaves[2]);
        if (node) _claimIfDue(NODE, b.cumulative[0], proof);
        proof = new bytes32[](2);
        (proof[0], proof[1]) = (leaves[0], leaves[2]);
        _claimIfDue(PUBLISHER, b.cumulative[1], proof);
        bytes32[] memory treasuryProof = new bytes32[](1);
        treasuryProof[0] = Hashes.commutativeKeccak256(leaves[0], leaves[1]);
        if (treasury) _claimIfDue(TREASURY, b.cumulative[2], treasuryProof);
    }

    /// @dev One epoch: receipts worth `fee` split by the fee schedule, `slashAmount` slashed from the
    /// second node and released to the claims contract, everything unallocated redistributed to NODE.
    function _slashEpoch(Books memory b, uint64 epoch, uint256 fee, uint256 slashAmount) internal {
        uint256 protocolFee = (fee * PROTOCOL_FEE_BPS) / BPS;
        uint256 royalty = (fee * ROYALTY_BPS) / BPS;
        if (slashAmount != 0) staking.slash(SLASHED_NODE, slashAmount, keccak256(abi.encode("evidence", epoch)));
        staking.releaseSlashedStake();
        uint256 slashHere = claims.unallocatedSlash();
        b.cumulative[0] += fee - protocolFee - royalty + slashHere;
        b.cumulative[1] += royalty;
        b.cumulative[2] += protocolFee;
        b.credits += (fee - protocolFee - royalty) + royalty + protocolFee + slashHere;
        b.debits += fee;
        b.redistributed += slashHere;
        bytes32[3] memory leaves = _leaves(b);
        bytes32 root = Hashes.commutativeKeccak256(Hashes.commutativeKeccak256(leaves[0], leaves[1]), leaves[2]);
        _settle(epoch, root, fee, protocolFee, royalty, slashHere);
        assertEq(claims.unallocatedSlash(), 0, "slash left unallocated after funding");
        (uint256 funded, ) = claims.totals();
        assertEq(funded, b.debits + b.redistributed, "funded != debits + redistributed slash");
        assertEq(b.credits, b.debits + b.redistributed, "credits != debits + redistributed slash");
    }

    function _checkBooks(Books memory b) internal view {
        _checkReserve(claims.claimed(NODE) + claims.claimed(PUBLISHER) + claims.claimed(TREASURY));
        assertLe(_received(NODE), b.cumulative[0], "node received more than posted");
        assertLe(token.balanceOf(PUBLISHER), b.cumulative[1], "publisher received more than posted");
        assertLe(token.balanceOf(TREASURY), b.cumulative[2], "treasury received more than posted");
        assertEq(token.balanceOf(address(escrow)), escrow.totalBalance(), "escrow balance != total balance");
        assertEq(_held(), b.held, "tokens not conserved");
    }

    /// @notice Receipts split by the fee schedule, a second node slashed every epoch and its slashed
    /// stake (plus any tokens sent to the claims contract directly) redistributed to the other node:
    /// credits (node + royalty + fee) equal debits plus redistributed slash, every account is paid
    /// exactly its cumulative amount, tokens are conserved over escrow, staking, claims and every
    /// holder, and staking's earnings reserve always holds funded - paid.
    function testFuzz_slashRedistribution_creditsEqualDebitsPlusSlash(
        uint256[EPOCHS] memory receiptFees,
        uint256[EPOCHS] memory slashes,
        uint256 donation,
        uint256 donationEpoch
    ) public {
        _approve(SLASHED_NODE);
        _register(SLASHED_NODE);
        _stake(SLASHED_NODE, SLASHED_NODE, MAX_INCREMENT);
        donation = bound(donation, 0, MAX_INCREMENT);
        donationEpoch = bound(donationEpoch, 0, EPOCHS - 1);
        Books memory b;
        b.held = _held();
        for (uint256 e = 0; e < EPOCHS; ++e) {
            // A direct transfer is unallocated like slashed stake: the next settlement may allocate it.
            if (e == donationEpoch && donation != 0) token.transfer(address(claims), donation);
            uint256 slashAmount = bound(slashes[e], 0, staking.maxSlashOf(SLASHED_NODE));
            _slashEpoch(b, uint64(e), bound(receiptFees[e], 0, MAX_INCREMENT), slashAmount);
            _claimAll(b, receiptFees[e] % 2 == 0, slashes[e] % 2 == 0);
            _checkBooks(b);
        }
        // Everyone claims the rest: each account got exactly its cumulative amount, nothing is left.
        _claimAll(b, true, true);
        assertEq(_received(NODE), b.cumulative[0], "node total != posted");
        assertEq(token.balanceOf(PUBLISHER), b.cumulative[1], "publisher total != posted");
        assertEq(token.balanceOf(TREASURY), b.cumulative[2], "treasury total != posted");
        assertEq(token.balanceOf(address(claims)), 0, "claims keeps tokens after every claim");
        _checkBooks(b);
    }

    /// @notice A stale leaf (an earlier epoch's cumulative amount) never proves against a later root.
    function testFuzz_claim_staleLeafRefused(uint256 first, uint256 increment) public {
        first = bound(first, 1, MAX_INCREMENT);
        increment = bound(increment, 1, MAX_INCREMENT);
        bytes32 publisherLeaf = claims.leafHash(PUBLISHER, 1);
        _settle(0, Hashes.commutativeKeccak256(claims.leafHash(NODE, first), publisherLeaf), first + 1);
        _settle(1, Hashes.commutativeKeccak256(claims.leafHash(NODE, first + increment), publisherLeaf), increment);
        vm.expectRevert(abi.encodeWithSelector(IRewardClaims.InvalidProof.selector, NODE, first));
        claims.claim(NODE, first, _proof(publisherLeaf));
        INodeStaking.Pool memory pool = staking.activePool(NODE);
        assertEq(pool.stake, initialPoolStake, "a refused claim moved stake");
    }
}

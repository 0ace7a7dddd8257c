// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {INodeStaking} from "../../contracts/interfaces/INodeStaking.sol";
import {ShareMath, StakingFixture} from "./utils/StakingFixture.sol";
import {vm} from "./utils/Vm.sol";

/// @title NodeStakingFuzzTest
/// @notice Fuzz tests for the staking invariants of PROTOCOL.md: stake is returned and never more,
/// no withdrawal before `withdrawableAt`, no slash above the cap or beyond slashable stake,
/// unbonding stake stays slashable, stakers are isolated from each other's actions, rewards are
/// pro rata, and pausing never traps withdrawals.
contract NodeStakingFuzzTest is StakingFixture {
    address internal constant OPERATOR = address(0x0A11);
    address internal constant ALICE = address(0xA11CE);
    address internal constant BOB = address(0xB0B);
    address internal constant CAROL = address(0xCA201);

    /// @dev Rounding dust allowed per share-pool operation (mulDiv floors or ceils once).
    uint256 internal constant DUST = 1;

    function setUp() public {
        _deploy();
        _approve(OPERATOR);
        _approve(ALICE);
        _approve(BOB);
        _approve(CAROL);
        _register(OPERATOR);
    }

    // ------------------------------------------------------------------ helpers

    function _activePool() internal view returns (INodeStaking.Pool memory) {
        return staking.activePool(OPERATOR);
    }

    function _unbondingPool() internal view returns (INodeStaking.Pool memory) {
        return staking.unbondingPool(OPERATOR);
    }

    function _assertConserved() internal view {
        assertEq(token.balanceOf(address(staking)), _owedBy(_one(OPERATOR)), "token balance != owed");
    }

    /// @dev Gives the operator's pools a non-trivial history before the staker under test arrives:
    /// rewards (share price above the initial one), an operator lock, and a slash (price below it).
    function _history(uint256 selfAmount, uint256 reward, uint256 opUnbond, uint256 slashAmount) internal {
        _stake(OPERATOR, OPERATOR, bound(selfAmount, MIN_SELF_STAKE, MAX_AMOUNT));
        reward = bound(reward, 0, uint256(_activePool().stake));
        if (reward > 0) staking.addRewards(OPERATOR, reward);
        opUnbond = bound(opUnbond, 0, staking.selfStakeOf(OPERATOR) / 2);
        if (opUnbond > 0) _unbond(OPERATOR, OPERATOR, opUnbond);
        slashAmount = bound(slashAmount, 0, staking.maxSlashOf(OPERATOR));
        if (slashAmount > 0) {
            staking.slash(OPERATOR, slashAmount, keccak256("history"));
            vm.warp(block.timestamp + JAIL_PERIOD);
        }
        _topUpSelfStake(OPERATOR);
    }

    // ------------------------------------------------------------------ stake / unbond / withdraw

    /// @notice stake → unbond (twice) → withdraw pays back at most what was put in, and loses at
    /// most rounding dust, whatever the pool's history.
    function testFuzz_roundTrip_neverPaysOutMoreThanPutIn(
        uint256 amount,
        uint256 firstUnbond,
        uint256 selfAmount,
        uint256 reward,
        uint256 opUnbond,
        uint256 slashAmount
    ) public {
        _history(selfAmount, reward, opUnbond, slashAmount);
        amount = bound(amount, 1, MAX_AMOUNT);
        _stake(ALICE, OPERATOR, amount);

        uint256 value = staking.stakeOf(OPERATOR, ALICE);
        assertLe(value, amount, "stake is worth more than was put in");
        assertApproxEqAbs(value, amount, DUST, "stake lost more than dust");
        vm.assume(value > 0);

        firstUnbond = bound(firstUnbond, 1, value);
        uint256 lock0 = _unbond(ALICE, OPERATOR, firstUnbond);
        uint256 rest = staking.stakeOf(OPERATOR, ALICE);
        uint256 lock1 = type(uint256).max;
        if (rest > 0) lock1 = _unbond(ALICE, OPERATOR, rest);
        assertLe(firstUnbond + rest, value, "unbonded more than the stake was worth");

        vm.warp(block.timestamp + UNBONDING_PERIOD);
        uint256 received = _withdraw(ALICE, OPERATOR, lock0);
        if (lock1 != type(uint256).max) received += _withdraw(ALICE, OPERATOR, lock1);

        assertEq(token.balanceOf(ALICE), received, "balance != withdrawn");
        assertLe(received, amount, "round trip paid out more than was put in");
        assertLe(amount - received, 5 * DUST, "round trip lost more than rounding dust");
        _assertConserved();
    }

    /// @notice Unbonding more than the active stake reverts with InsufficientStake.
    function testFuzz_unbond_moreThanStakeReverts(uint256 amount, uint256 excess) public {
        _stake(OPERATOR, OPERATOR, MIN_SELF_STAKE);
        amount = bound(amount, 1, MAX_AMOUNT);
        _stake(ALICE, OPERATOR, amount);
        uint256 have = staking.stakeOf(OPERATOR, ALICE);
        uint256 need = bound(excess, have + 1, type(uint256).max);
        vm.expectRevert(abi.encodeWithSelector(INodeStaking.InsufficientStake.selector, have, need));
        _unbond(ALICE, OPERATOR, need);
    }

    // ------------------------------------------------------------------ maturity

    /// @notice Any time before `withdrawableAt` reverts LockNotMatured; any time at or after it pays
    /// the lock's value, paused or not.
    function testFuzz_withdraw_onlyAtOrAfterWithdrawableAt(
        uint256 amount,
        uint256 unbondAmount,
        uint256 period,
        uint256 start,
        uint256 early,
        uint256 late,
        bool paused
    ) public {
        period = bound(period, 1, staking.MAX_UNBONDING_PERIOD());
        _setParameters(uint32(period), MAX_SLASH_BPS);
        _stake(OPERATOR, OPERATOR, MIN_SELF_STAKE);
        _stake(ALICE, OPERATOR, bound(amount, 1e6, MAX_AMOUNT));
        vm.warp(bound(start, block.timestamp, block.timestamp + 3650 days));

        unbondAmount = bound(unbondAmount, 1, staking.stakeOf(OPERATOR, ALICE));
        uint64 withdrawableAt = uint64(block.timestamp + period);
        uint256 lockId = _unbond(ALICE, OPERATOR, unbondAmount);
        assertEq(staking.unbondingLock(OPERATOR, ALICE, lockId).withdrawableAt, withdrawableAt, "withdrawableAt");
        uint256 value = staking.lockValue(OPERATOR, ALICE, lockId);
        if (paused) staking.pause();

        uint256 tooEarly = bound(early, block.timestamp, withdrawableAt - 1);
        vm.warp(tooEarly);
        vm.expectRevert(abi.encodeWithSelector(INodeStaking.LockNotMatured.selector, lockId, withdrawableAt, tooEarly));
        _withdraw(ALICE, OPERATOR, lockId);

        vm.warp(bound(late, withdrawableAt, uint256(withdrawableAt) + 3650 days));
        uint256 got = _withdraw(ALICE, OPERATOR, lockId);
        assertEq(got, value, "withdrawn != lock value");
        assertEq(token.balanceOf(ALICE), got, "balance != withdrawn");
        assertEq(staking.unbondingLock(OPERATOR, ALICE, lockId).shares, 0, "lock not cleared");

        vm.expectRevert(abi.encodeWithSelector(INodeStaking.LockNotFound.selector, OPERATOR, ALICE, lockId));
        _withdraw(ALICE, OPERATOR, lockId);
        _assertConserved();
    }

    /// @notice A lock keeps the maturity it was given: a governance change of the unbonding period
    /// neither delays nor advances existing locks.
    function testFuzz_withdraw_maturityFixedAtUnbond(uint256 period1, uint256 period2, uint256 gap) public {
        period1 = bound(period1, 1, staking.MAX_UNBONDING_PERIOD());
        period2 = bound(period2, 1, staking.MAX_UNBONDING_PERIOD());
        _setParameters(uint32(period1), MAX_SLASH_BPS);
        _stake(OPERATOR, OPERATOR, MIN_SELF_STAKE);
        _stake(ALICE, OPERATOR, 100e18);

        uint64 at0 = uint64(block.timestamp + period1);
        uint256 lock0 = _unbond(ALICE, OPERATOR, 10e18);
        vm.warp(block.timestamp + bound(gap, 0, 30 days));
        _setParameters(uint32(period2), MAX_SLASH_BPS);
        uint64 at1 = uint64(block.timestamp + period2);
        uint256 lock1 = _unbond(ALICE, OPERATOR, 10e18);

        _checkMaturity(lock0, at0);
        _checkMaturity(lock1, at1);
    }

    function _checkMaturity(uint256 lockId, uint64 withdrawableAt) internal {
        assertEq(staking.unbondingLock(OPERATOR, ALICE, lockId).withdrawableAt, withdrawableAt, "withdrawableAt");
        if (block.timestamp < withdrawableAt) {
            vm.warp(withdrawableAt - 1);
            vm.expectRevert(
                abi.encodeWithSelector(INodeStaking.LockNotMatured.selector, lockId, withdrawableAt, withdrawableAt - 1)
            );
            _withdraw(ALICE, OPERATOR, lockId);
            vm.warp(withdrawableAt);
        }
        assertGt(_withdraw(ALICE, OPERATOR, lockId), 0, "matured lock paid nothing");
    }

    /// @notice Pausing stops stake and rebond, never unbond or withdraw.
    function testFuzz_pause_neverTrapsUnbondOrWithdraw(uint256 amount, uint256 unbondAmount) public {
        _stake(OPERATOR, OPERATOR, MIN_SELF_STAKE);
        amount = bound(amount, 1e6, MAX_AMOUNT);
        _stake(ALICE, OPERATOR, amount);
        uint256 earlyLock = _unbond(ALICE, OPERATOR, staking.stakeOf(OPERATOR, ALICE) / 2 + 1);
        staking.pause();

        token.transfer(ALICE, 1e18);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(ALICE);
        staking.stake(OPERATOR, 1e18);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        _rebond(ALICE, OPERATOR, earlyLock);

        unbondAmount = bound(unbondAmount, 1, staking.stakeOf(OPERATOR, ALICE));
        uint256 pausedLock = _unbond(ALICE, OPERATOR, unbondAmount);
        vm.warp(block.timestamp + UNBONDING_PERIOD);
        uint256 got = _withdraw(ALICE, OPERATOR, earlyLock) + _withdraw(ALICE, OPERATOR, pausedLock);
        assertGt(got, 0, "nothing withdrawn while paused");
        assertLe(got, amount, "paid out more than was put in");
        _assertConserved();
    }

    // ------------------------------------------------------------------ slashing

    /// @notice Any amount above maxSlashOf reverts SlashExceedsCap; any positive amount at or below
    /// it succeeds and is taken pro rata from the active and unbonding pools, never beyond them.
    function testFuzz_slash_capIsEnforced(
        uint256 selfAmount,
        uint256 amount,
        uint256 unbondAmount,
        uint256 maxSlashBps,
        uint256 over,
        uint256 under
    ) public {
        maxSlashBps = bound(maxSlashBps, 1, staking.MAX_SLASH_BPS());
        _setParameters(UNBONDING_PERIOD, uint16(maxSlashBps));
        _stake(OPERATOR, OPERATOR, bound(selfAmount, MIN_SELF_STAKE, MAX_AMOUNT));
        _stake(ALICE, OPERATOR, bound(amount, 1e6, MAX_AMOUNT));
        _unbond(ALICE, OPERATOR, bound(unbondAmount, 1, staking.stakeOf(OPERATOR, ALICE)));

        INodeStaking.Pool memory active = _activePool();
        INodeStaking.Pool memory unbonding = _unbondingPool();
        uint256 slashable = staking.slashableStake(OPERATOR);
        assertEq(slashable, uint256(active.stake) + unbonding.stake, "slashable != active + unbonding");
        uint256 cap = staking.maxSlashOf(OPERATOR);
        assertEq(cap, (slashable * maxSlashBps) / 10_000, "cap formula");
        assertLe(cap, slashable, "cap above slashable stake");

        over = bound(over, cap + 1, type(uint256).max);
        vm.expectRevert(abi.encodeWithSelector(INodeStaking.SlashExceedsCap.selector, over, cap));
        staking.slash(OPERATOR, over, keccak256("over"));

        vm.expectRevert(INodeStaking.ZeroAmount.selector);
        staking.slash(OPERATOR, 0, keccak256("zero"));

        under = bound(under, 1, cap);
        staking.slash(OPERATOR, under, keccak256("under"));

        uint256 fromActive = active.stake - _activePool().stake;
        uint256 fromUnbonding = unbonding.stake - _unbondingPool().stake;
        assertEq(fromActive + fromUnbonding, under, "slashed != requested");
        assertEq(staking.slashableStake(OPERATOR), slashable - under, "slashable not reduced by the slash");
        assertEq(fromActive, (under * uint256(active.stake)) / slashable, "active part not pro rata");
        assertEq(_activePool().shares, active.shares, "slash changed active shares");
        // Share counts only change when the slash leaves the unbonding pool diluted 256x or more.
        uint256 bits = ShareMath.redenominationBits(unbonding.shares, _unbondingPool().stake);
        assertEq(_unbondingPool().shares, uint256(unbonding.shares) >> bits, "unbonding shares after slash");
        (uint256 redistribution, uint256 burn) = staking.slashedOwed();
        assertEq(burn, (under * BURN_BPS) / 10_000, "burned part");
        assertEq(redistribution + burn, under, "owed != slashed");
        assertTrue(staking.isJailed(OPERATOR), "slashed node not jailed");
        assertTrue(staking.evidenceUsed(keccak256("under")), "evidence not recorded");
        assertFalse(staking.evidenceUsed(keccak256("over")), "failed slash recorded its evidence");

        vm.expectRevert(abi.encodeWithSelector(INodeStaking.EvidenceAlreadyUsed.selector, keccak256("under")));
        staking.slash(OPERATOR, 1, keccak256("under"));
        _assertConserved();
    }

    /// @notice A sequence of slashes, each at most the cap of its moment, never takes more than the
    /// node's slashable stake, even at a 100% cap.
    function testFuzz_slash_repeatedNeverExceedsSlashable(
        uint256 selfAmount,
        uint256 amount,
        uint256 unbondAmount,
        uint256 maxSlashBps,
        uint256 seed
    ) public {
        maxSlashBps = bound(maxSlashBps, 1, staking.MAX_SLASH_BPS());
        _setParameters(UNBONDING_PERIOD, uint16(maxSlashBps));
        _stake(OPERATOR, OPERATOR, bound(selfAmount, MIN_SELF_STAKE, MAX_AMOUNT));
        _stake(ALICE, OPERATOR, bound(amount, 1e6, MAX_AMOUNT));
        _unbond(ALICE, OPERATOR, bound(unbondAmount, 1, staking.stakeOf(OPERATOR, ALICE)));

        uint256 initial = staking.slashableStake(OPERATOR);
        uint256 total;
        for (uint256 i = 0; i < 12; ++i) {
            uint256 cap = staking.maxSlashOf(OPERATOR);
            uint256 slashable = staking.slashableStake(OPERATOR);
            uint256 draw = uint256(keccak256(abi.encode(seed, i)));
            if (cap == 0) {
                vm.expectRevert(abi.encodeWithSelector(INodeStaking.SlashExceedsCap.selector, 1, 0));
                staking.slash(OPERATOR, 1, keccak256(abi.encode("slash", i)));
                break;
            }
            // Half the draws take the full cap, the rest any amount up to it.
            uint256 slashAmount = draw % 2 == 0 ? cap : bound(draw >> 1, 1, cap);
            staking.slash(OPERATOR, slashAmount, keccak256(abi.encode("slash", i)));
            total += slashAmount;
            assertEq(staking.slashableStake(OPERATOR), slashable - slashAmount, "slashable after slash");
            assertLe(total, initial, "slashed more than the slashable stake");
        }
        assertEq(staking.slashableStake(OPERATOR), initial - total, "slashable != initial - slashed");
        _assertConserved();
    }

    /// @notice Unbonding does not dodge a slash: a slash after unbond reduces the lock's value in the
    /// same proportion as the active stake's, even once the lock has matured, and the withdrawal
    /// pays the reduced value.
    function testFuzz_slash_reachesUnbondingStake(
        uint256 selfAmount,
        uint256 amount,
        uint256 unbondAmount,
        uint256 maxSlashBps,
        uint256 slashAmount,
        uint256 wait
    ) public {
        maxSlashBps = bound(maxSlashBps, 1, staking.MAX_SLASH_BPS());
        _setParameters(UNBONDING_PERIOD, uint16(maxSlashBps));
        _stake(OPERATOR, OPERATOR, bound(selfAmount, MIN_SELF_STAKE, MAX_AMOUNT));
        _stake(ALICE, OPERATOR, bound(amount, 1e6, MAX_AMOUNT));
        uint256 lockId = _unbond(ALICE, OPERATOR, bound(unbondAmount, 1, staking.stakeOf(OPERATOR, ALICE)));
        vm.warp(block.timestamp + bound(wait, 0, 2 * uint256(UNBONDING_PERIOD)));

        uint256 slashable = staking.slashableStake(OPERATOR);
        uint256 lockBefore = staking.lockValue(OPERATOR, ALICE, lockId);
        uint256 opBefore = staking.stakeOf(OPERATOR, OPERATOR);
        uint256 lockShares = staking.unbondingLock(OPERATOR, ALICE, lockId).shares;
        uint256 poolShares = _unbondingPool().shares;
        slashAmount = bound(slashAmount, 1, staking.maxSlashOf(OPERATOR));
        staking.slash(OPERATOR, slashAmount, keccak256("evidence"));

        // Share counts only change when the slash leaves the unbonding pool diluted 256x or more.
        uint256 bits = ShareMath.redenominationBits(poolShares, _unbondingPool().stake);
        assertEq(staking.unbondingLock(OPERATOR, ALICE, lockId).shares, lockShares >> bits, "lock shares after slash");
        uint256 lockAfter = staking.lockValue(OPERATOR, ALICE, lockId);
        uint256 expected = (lockBefore * (slashable - slashAmount)) / slashable;
        assertLe(lockAfter, lockBefore, "slash raised the lock's value");
        assertApproxEqAbs(lockAfter, expected, 3 * DUST, "lock not slashed pro rata");
        assertApproxEqAbs(
            staking.stakeOf(OPERATOR, OPERATOR),
            (opBefore * (slashable - slashAmount)) / slashable,
            3 * DUST,
            "active stake not slashed pro rata"
        );
        if ((lockBefore * slashAmount) / slashable > 3 * DUST) assertLt(lockAfter, lockBefore, "lock dodged slash");

        vm.warp(block.timestamp + UNBONDING_PERIOD);
        assertEq(_withdraw(ALICE, OPERATOR, lockId), lockAfter, "withdrawal ignored the slash");
        _assertConserved();
    }

    // ------------------------------------------------------------------ isolation between stakers

    struct Position {
        uint256 shares;
        uint256 lockShares;
        uint256 value;
        uint256 lockValue;
    }

    function _position(address who, uint256 lockId) internal view returns (Position memory p) {
        p.shares = staking.sharesOf(OPERATOR, who);
        p.lockShares = staking.unbondingLock(OPERATOR, who, lockId).shares;
        p.value = staking.stakeOf(OPERATOR, who);
        p.lockValue = staking.lockValue(OPERATOR, who, lockId);
    }

    /// @notice Another staker's (or the operator's) stake, unbond, rebond and withdraw never change
    /// Alice's shares and lock shares, never lower the value of her active stake or of her lock
    /// (nor, exactly, either pool's share price), and raise each by at most 1 wei of rounding per
    /// action (no rewards here).
    function testFuzz_otherStakersActions_neverHurtAStaker(
        uint256 selfAmount,
        uint256 amount,
        uint256 unbondAmount,
        uint256 seed
    ) public {
        _stake(OPERATOR, OPERATOR, bound(selfAmount, MIN_SELF_STAKE, MAX_AMOUNT));
        _stake(ALICE, OPERATOR, bound(amount, 1e6, MAX_AMOUNT));
        uint256 aliceLock = _unbond(ALICE, OPERATOR, bound(unbondAmount, 1, staking.stakeOf(OPERATOR, ALICE) - 1));
        Position memory prev = _position(ALICE, aliceLock);

        for (uint256 i = 0; i < 16; ++i) {
            uint256 draw = uint256(keccak256(abi.encode(seed, i)));
            address actor = draw % 3 == 0 ? OPERATOR : (draw % 3 == 1 ? BOB : CAROL);
            INodeStaking.Pool memory activeBefore = _activePool();
            INodeStaking.Pool memory unbondingBefore = _unbondingPool();
            _otherAction(actor, draw >> 8);
            // Exact form of "never lowers anyone's value": neither pool's share price falls.
            assertTrue(ShareMath.priceNotLower(activeBefore, _activePool()), "active share price fell");
            assertTrue(ShareMath.priceNotLower(unbondingBefore, _unbondingPool()), "unbonding share price fell");

            Position memory next = _position(ALICE, aliceLock);
            assertEq(next.shares, prev.shares, "another staker changed Alice's shares");
            assertEq(next.lockShares, prev.lockShares, "another staker changed Alice's lock shares");
            assertGe(next.value, prev.value, "another staker lowered Alice's stake");
            assertLe(next.value, prev.value + DUST, "Alice's stake rose by more than dust");
            assertGe(next.lockValue, prev.lockValue, "another staker lowered Alice's lock");
            assertLe(next.lockValue, prev.lockValue + DUST, "Alice's lock rose by more than dust");
            prev = next;
        }
        _assertConserved();
    }

    /// @dev One stake, unbond, rebond or withdraw by `actor`, skipped when it cannot apply.
    function _otherAction(address actor, uint256 draw) internal {
        uint256 kind = draw % 4;
        uint256 value = draw >> 8;
        if (kind == 0) {
            uint256 amount = bound(value, 1e6, MAX_AMOUNT);
            if (actor == OPERATOR) {
                uint256 selfStake = staking.selfStakeOf(OPERATOR);
                if (selfStake + amount < MIN_SELF_STAKE + 2) amount = MIN_SELF_STAKE - selfStake + 2;
            } else if (staking.selfStakeOf(OPERATOR) < MIN_SELF_STAKE) {
                return;
            }
            _stake(actor, OPERATOR, amount);
        } else if (kind == 1) {
            uint256 have = staking.stakeOf(OPERATOR, actor);
            if (have == 0) return;
            uint256 amount = bound(value, 1, have);
            if (ShareMath.toShares(amount, _unbondingPool()) == 0) return;
            _unbond(actor, OPERATOR, amount);
        } else {
            uint256 count = staking.lockCount(OPERATOR, actor);
            if (count == 0) return;
            uint256 lockId = value % count;
            INodeStaking.UnbondingLock memory lock = staking.unbondingLock(OPERATOR, actor, lockId);
            if (lock.shares == 0) return;
            if (kind == 2) {
                uint256 amount = ShareMath.toStake(lock.shares, _unbondingPool());
                if (ShareMath.toShares(amount, _activePool()) == 0) return;
                _rebond(actor, OPERATOR, lockId);
            } else {
                if (block.timestamp < lock.withdrawableAt) vm.warp(lock.withdrawableAt);
                _withdraw(actor, OPERATOR, lockId);
            }
        }
    }

    // ------------------------------------------------------------------ rewards

    /// @notice A reward raises every active staker's value by its pro-rata part (to 1 wei), leaves
    /// shares and unbonding locks alone, and hands out no more than the reward.
    function testFuzz_rewards_raiseEveryStakerProRata(
        uint256 selfAmount,
        uint256 bobAmount,
        uint256 carolAmount,
        uint256 carolUnbond,
        uint256 reward
    ) public {
        _stake(OPERATOR, OPERATOR, bound(selfAmount, MIN_SELF_STAKE, MAX_AMOUNT));
        _stake(BOB, OPERATOR, bound(bobAmount, 1, MAX_AMOUNT));
        _stake(CAROL, OPERATOR, bound(carolAmount, 1e6, MAX_AMOUNT));
        uint256 carolLock = _unbond(CAROL, OPERATOR, bound(carolUnbond, 1, staking.stakeOf(OPERATOR, CAROL)));
        reward = bound(reward, 1, MAX_AMOUNT);

        INodeStaking.Pool memory pool = _activePool();
        address[3] memory stakers = [OPERATOR, BOB, CAROL];
        uint256[3] memory shares;
        uint256[3] memory before;
        for (uint256 i = 0; i < 3; ++i) {
            shares[i] = staking.sharesOf(OPERATOR, stakers[i]);
            before[i] = staking.stakeOf(OPERATOR, stakers[i]);
        }
        uint256 lockBefore = staking.lockValue(OPERATOR, CAROL, carolLock);

        staking.addRewards(OPERATOR, reward);

        uint256 handedOut;
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(staking.sharesOf(OPERATOR, stakers[i]), shares[i], "reward changed shares");
            uint256 gain = staking.stakeOf(OPERATOR, stakers[i]) - before[i];
            assertApproxEqAbs(gain, ShareMath.proRata(reward, shares[i], pool), DUST, "gain not pro rata");
            handedOut += gain;
        }
        // Each staker's value is floored on its own, so three floors may each cross an integer.
        assertLe(handedOut, reward + 2 * DUST, "stakers gained more than the reward");
        uint256 claims;
        for (uint256 i = 0; i < 3; ++i) claims += staking.stakeOf(OPERATOR, stakers[i]);
        assertLe(claims, _activePool().stake, "stakers' claims exceed the pool");
        assertEq(staking.lockValue(OPERATOR, CAROL, carolLock), lockBefore, "reward reached an unbonding lock");
        assertEq(_activePool().stake, pool.stake + reward, "pool stake");
        _assertConserved();
    }

    /// @notice Rewards need stakers and the rewarder role.
    function testFuzz_rewards_guards(uint256 reward, address caller) public {
        reward = bound(reward, 1, MAX_AMOUNT);
        vm.expectRevert(abi.encodeWithSelector(INodeStaking.NoStakers.selector, OPERATOR));
        staking.addRewards(OPERATOR, reward);

        vm.assume(caller != address(this) && caller != address(vm));
        _stake(OPERATOR, OPERATOR, MIN_SELF_STAKE);
        bytes32 role = staking.REWARDER_ROLE();
        vm.expectRevert(abi.encodeWithSignature("AccessControlUnauthorizedAccount(address,bytes32)", caller, role));
        vm.prank(caller);
        staking.addRewards(OPERATOR, reward);
    }

    // ------------------------------------------------------------------ earnings reserve

    /// @dev Funds the earnings reserve with `amount` as the claims contract (the redistribution recipient).
    function _fundEarnings(uint256 amount) internal {
        token.transfer(RECIPIENT, amount);
        vm.startPrank(RECIPIENT);
        token.approve(address(staking), amount);
        staking.fundEarnings(amount);
        vm.stopPrank();
    }

    /// @notice Earnings paid out of the reserve: a node's payment moves no token and splits exactly
    /// into commission accrued and stakers' part; a payment past the reserve is refused; the operator
    /// withdraws exactly its accrued commission; an account that is not a node is sent its amount; and
    /// staking's balance stays pools + slashes owed + reserve + commission owed throughout.
    function testFuzz_earnings_paidFromReserveAndConserved(
        uint256 selfAmount,
        uint256 funded,
        uint256 toNode,
        uint256 toPublisher,
        uint16 commissionBps
    ) public {
        _stake(OPERATOR, OPERATOR, bound(selfAmount, MIN_SELF_STAKE, MAX_AMOUNT));
        commissionBps = uint16(bound(commissionBps, 0, staking.MAX_BPS()));
        vm.prank(OPERATOR);
        staking.updateNode("https://node.example/infer", bytes32(0), commissionBps);
        funded = bound(funded, 2, MAX_AMOUNT);
        _fundEarnings(funded);
        _assertConserved();
        toNode = bound(toNode, 1, funded - 1);
        toPublisher = bound(toPublisher, 1, funded - toNode);

        uint256 poolBefore = _activePool().stake;
        uint256 held = token.balanceOf(address(staking));
        vm.prank(RECIPIENT);
        (uint256 toStakers, uint256 commission) = staking.payEarnings(OPERATOR, toNode);
        assertEq(token.balanceOf(address(staking)), held, "a node's payment moved tokens");
        assertEq(commission, (toNode * commissionBps) / 10_000, "commission");
        assertEq(toStakers + commission, toNode, "split != amount");
        assertEq(_activePool().stake, poolBefore + toStakers, "pool != before + stakers' part");
        assertEq(staking.nodeInfo(OPERATOR).commissionOwed, commission, "commission not accrued");
        _assertConserved();

        vm.prank(RECIPIENT);
        staking.payEarnings(ALICE, toPublisher);
        assertEq(token.balanceOf(ALICE), toPublisher, "non-node not sent its amount");
        uint256 left = funded - toNode - toPublisher;
        assertEq(staking.earningsReserve(), left, "reserve != funded - paid");
        vm.expectRevert(abi.encodeWithSelector(INodeStaking.InsufficientEarningsReserve.selector, left + 1, left));
        vm.prank(RECIPIENT);
        staking.payEarnings(OPERATOR, left + 1);
        _assertConserved();

        if (commission > 0) {
            uint256 before = token.balanceOf(OPERATOR);
            vm.prank(OPERATOR);
            assertEq(staking.withdrawCommission(), commission, "withdrawn != accrued");
            assertEq(token.balanceOf(OPERATOR) - before, commission, "operator not paid its commission");
        }
        vm.expectRevert(abi.encodeWithSelector(INodeStaking.NoCommission.selector, OPERATOR));
        vm.prank(OPERATOR);
        staking.withdrawCommission();
        _assertConserved();
    }

    /// @notice Only the claims contract (the redistribution recipient) funds or pays the reserve.
    function testFuzz_earnings_onlyClaimsContract(address caller, uint256 amount) public {
        vm.assume(caller != RECIPIENT);
        amount = bound(amount, 1, MAX_AMOUNT);
        _fundEarnings(amount);
        vm.expectRevert(abi.encodeWithSelector(INodeStaking.NotClaimsContract.selector, caller, RECIPIENT));
        vm.prank(caller);
        staking.fundEarnings(amount);
        vm.expectRevert(abi.encodeWithSelector(INodeStaking.NotClaimsContract.selector, caller, RECIPIENT));
        vm.prank(caller);
        staking.payEarnings(caller, amount);
        assertEq(staking.earningsReserve(), amount, "reserve moved");
    }

    // ------------------------------------------------------------------ stake stays withdrawable

    /// @notice Governance cannot set a cap that lets one slash empty a pool (the pool's shares
    /// would be priced at zero): the cap is at most MAX_SLASH_BPS.
    function testFuzz_slashCapAboveHalf_isRefused(uint256 maxSlashBps) public {
        maxSlashBps = bound(maxSlashBps, uint256(staking.MAX_SLASH_BPS()) + 1, type(uint16).max);
        vm.expectRevert(abi.encodeWithSignature("InvalidParameter(string,uint256)", "maxSlashBps", maxSlashBps));
        _setParameters(UNBONDING_PERIOD, uint16(maxSlashBps));
    }

    /// @notice However many slashes at the largest cap grind a node down, its unbonding pool's
    /// worthless lock shares must not stop later unbonds: rewards paid to the node afterwards can
    /// still be unbonded and withdrawn. (Found by the invariant campaign: unbond reverted with
    /// SafeCastOverflowedUintDowncast, trapping the stake.)
    function testFuzz_repeatedHalvings_laterStakeCanStillBeUnbonded(
        uint256 lockAmount,
        uint256 slashes,
        uint256 reward
    ) public {
        _stake(OPERATOR, OPERATOR, MIN_SELF_STAKE);
        lockAmount = bound(lockAmount, 1e6, MAX_AMOUNT);
        _stake(ALICE, OPERATOR, lockAmount);
        uint256 aliceLock = _unbond(ALICE, OPERATOR, staking.stakeOf(OPERATOR, ALICE));
        _setParameters(UNBONDING_PERIOD, staking.MAX_SLASH_BPS());
        slashes = bound(slashes, 40, 90);
        for (uint256 i = 0; i < slashes; ++i) {
            uint256 cap = staking.maxSlashOf(OPERATOR);
            if (cap == 0) break;
            staking.slash(OPERATOR, cap, keccak256(abi.encode("halving", i)));
        }
        assertLe(staking.lockValue(OPERATOR, ALICE, aliceLock), lockAmount >> 39, "a slashed lock kept its value");

        // Rewards the node earned before the slashes are settled afterwards.
        reward = bound(reward, 1e18, MAX_AMOUNT);
        staking.addRewards(OPERATOR, reward);
        uint256 have = staking.stakeOf(OPERATOR, OPERATOR);
        assertGt(have, 0, "operator earned nothing");
        uint256 lockId = _unbond(OPERATOR, OPERATOR, have);
        assertApproxEqAbs(staking.lockValue(OPERATOR, OPERATOR, lockId), have, DUST, "new lock mispriced");

        vm.warp(block.timestamp + UNBONDING_PERIOD);
        assertApproxEqAbs(_withdraw(OPERATOR, OPERATOR, lockId), have, DUST, "operator could not take its stake out");
        _assertConserved();
    }

    /// @notice 1-wei locks cannot grief a node's unbonding pool: however many slashes take the
    /// pool's last wei while a fresh dust lock waits in it, real stake can still be unbonded and
    /// withdrawn in full. (Before the fix each round doubled the pool's share count, and after about
    /// 40 rounds unbond reverted with SafeCastOverflowedUintDowncast.)
    function testFuzz_dustLocks_cannotTrapUnbonding(uint256 rounds, uint256 slashAmount) public {
        _stake(OPERATOR, OPERATOR, 10 * uint256(MIN_SELF_STAKE));
        _stake(ALICE, OPERATOR, 1e18);
        rounds = bound(rounds, 40, 64);
        for (uint256 i = 0; i < rounds; ++i) {
            _unbond(ALICE, OPERATOR, 1);
            staking.slash(OPERATOR, bound(slashAmount, 1, 1e15), keccak256(abi.encode("round", i)));
        }
        uint256 have = staking.stakeOf(OPERATOR, OPERATOR);
        uint256 lockId = _unbond(OPERATOR, OPERATOR, have);
        vm.warp(block.timestamp + UNBONDING_PERIOD);
        assertApproxEqAbs(_withdraw(OPERATOR, OPERATOR, lockId), have, DUST, "operator could not take its stake out");
        _assertConserved();
    }

    /// @notice Same trap through the active pool: slashes at the largest cap dilute the unbonding pool's
    /// shares (its price falls by the same factor each time) while the lock stays open; rewards
    /// settled afterwards must still be unbondable and withdrawable.
    function testFuzz_nearTotalSlashes_laterStakeCanStillBeUnbonded(
        uint256 maxSlashBps,
        uint256 slashes,
        uint256 reward
    ) public {
        _stake(OPERATOR, OPERATOR, MIN_SELF_STAKE);
        _stake(ALICE, OPERATOR, 100e18);
        uint256 aliceLock = _unbond(ALICE, OPERATOR, 100e18);
        _setParameters(UNBONDING_PERIOD, uint16(bound(maxSlashBps, 4_000, staking.MAX_SLASH_BPS())));
        slashes = bound(slashes, 30, 60);
        for (uint256 i = 0; i < slashes; ++i) {
            uint256 cap = staking.maxSlashOf(OPERATOR);
            if (cap == 0) break;
            staking.slash(OPERATOR, cap, keccak256(abi.encode("near-total", i)));
        }
        reward = bound(reward, 1e18, MAX_AMOUNT);
        staking.addRewards(OPERATOR, reward);
        uint256 have = staking.stakeOf(OPERATOR, OPERATOR);
        uint256 lockId = _unbond(OPERATOR, OPERATOR, have);

        vm.warp(block.timestamp + UNBONDING_PERIOD);
        assertApproxEqAbs(_withdraw(OPERATOR, OPERATOR, lockId), have, DUST, "operator could not take its stake out");
        assertLe(_withdraw(ALICE, OPERATOR, aliceLock), 100e18, "slashed lock paid more than it held");
        _assertConserved();
    }
}

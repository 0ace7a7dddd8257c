// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {INodeStaking} from "../../contracts/interfaces/INodeStaking.sol";
import {NodeStaking} from "../../contracts/staking/NodeStaking.sol";
import {InframeshToken} from "../../contracts/token/InframeshToken.sol";
import {ShareMath, StakingFixture} from "./utils/StakingFixture.sol";
import {Test} from "./utils/Test.sol";
import {vm} from "./utils/Vm.sol";

/// @title StakingHandler
/// @notice The invariant fuzzer's only target: bounded actions on NodeStaking by three operators and
/// three delegators, with ghost accounting of every token that enters or leaves the contract.
/// @dev Each action first rules out the inputs the contract rightly rejects (and returns), so the
/// campaign runs with failOnRevert: any revert that gets through is an unexpected one. Reward sizes
/// keep every pool's share price below 1 wei, the regime where the rounding-dust bounds hold.
contract StakingHandler is Test {
    using Math for uint256;

    uint256 internal constant MAX_STAKE = 1e24;
    uint256 internal constant MAX_WARP = 20 days;

    NodeStaking public immutable staking;
    InframeshToken public immutable token;
    uint256 public immutable minSelfStake;
    /// @dev RewardClaims' place: the only account that may fund and pay earnings.
    address public immutable claimsVault;
    /// @dev An earning account that is not a node (a model publisher): its earnings are sent.
    address public constant PUBLISHER = address(0xB0B);

    address[3] public nodes = [address(0x1001), address(0x1002), address(0x1003)];
    address[6] public actors = [
        address(0x1001),
        address(0x1002),
        address(0x1003),
        address(0xD001),
        address(0xD002),
        address(0xD003)
    ];

    /// @dev The campaign's clock, re-applied before every action.
    uint256 public currentTime;
    uint256 internal evidenceNonce;

    // ------------------------------------------------------------------ ghosts

    uint256 public ghostTokensIn;
    uint256 public ghostTokensOut;
    uint256 public ghostStaked;
    uint256 public ghostRewarded;
    uint256 public ghostWithdrawn;
    uint256 public ghostSlashed;
    uint256 public ghostReleased;
    /// @dev Earnings: funded into the reserve, paid out of it, sent to non-node accounts, and
    /// commission withdrawn by operators.
    uint256 public ghostFunded;
    uint256 public ghostPaid;
    uint256 public ghostPaidOut;
    uint256 public ghostCommissionWithdrawn;
    /// @dev Successful state-changing actions; each may move a position by 1 wei of rounding per pool.
    uint256 public ghostActions;

    uint256 public ghostEarlyWithdrawals;
    uint256 public ghostEarlyWithdrawalsRejected;
    uint256 public ghostSlashesAboveCap;
    uint256 public ghostOverCapRejected;
    uint256 public ghostSlashCapMismatches;
    uint256 public ghostSlashMisallocations;
    uint256 public ghostEvidenceReuses;
    uint256 public ghostUnexpectedErrors;
    /// @dev Stake, unbond, rebond or withdraw calls after which a pool's share price was lower.
    uint256 public ghostPriceDrops;
    /// @dev Stakes and rebonds skipped because the active pool's share price had collapsed (a
    /// near-total slash) so far that the new shares would not fit in 128 bits.
    uint256 public ghostShareOverflowSkips;
    /// @dev Slashes that re-denominated a diluted unbonding pool.
    uint256 public ghostRedenominations;

    mapping(address actor => uint256) public deposited;
    mapping(address actor => uint256) public withdrawn;
    /// @dev Upper bound of the rewards an actor's shares earned (each reward's pro-rata part, rounded up).
    mapping(address actor => uint256) public rewardsEarned;
    mapping(bytes32 lockKey => uint64) public ghostWithdrawableAt;
    /// @dev How often each action got past its guards (for diagnosing a campaign's coverage).
    mapping(string action => uint256) public calls;

    constructor(NodeStaking staking_, InframeshToken token_) {
        staking = staking_;
        token = token_;
        minSelfStake = staking_.parameters().minSelfStake;
        claimsVault = staking_.redistributionRecipient();
        currentTime = block.timestamp;
        token_.approve(address(staking_), type(uint256).max);
        for (uint256 i = 0; i < actors.length; ++i) {
            vm.prank(actors[i]);
            token_.approve(address(staking_), type(uint256).max);
        }
    }

    modifier clocked() {
        vm.warp(currentTime);
        _;
    }

    /// @dev Only slashes may lower a share price: record every pool's price around the action.
    modifier pricesKept() {
        INodeStaking.Pool[6] memory before;
        for (uint256 n = 0; n < nodes.length; ++n) {
            before[2 * n] = staking.activePool(nodes[n]);
            before[2 * n + 1] = staking.unbondingPool(nodes[n]);
        }
        _;
        for (uint256 n = 0; n < nodes.length; ++n) {
            if (!ShareMath.priceNotLower(before[2 * n], staking.activePool(nodes[n]))) ++ghostPriceDrops;
            if (!ShareMath.priceNotLower(before[2 * n + 1], staking.unbondingPool(nodes[n]))) ++ghostPriceDrops;
        }
    }

    // ------------------------------------------------------------------ helpers

    function _node(uint256 seed) internal view returns (address) {
        return nodes[seed % nodes.length];
    }

    function _actor(uint256 seed) internal view returns (address) {
        return actors[seed % actors.length];
    }

    function lockKey(address node, address staker, uint256 lockId) public pure returns (bytes32) {
        return keccak256(abi.encode(node, staker, lockId));
    }

    function _registered(address node) internal view returns (bool) {
        return staking.nodeInfo(node).registered;
    }

    function _selector(bytes memory reason) internal pure returns (bytes4 selector) {
        if (reason.length >= 4) selector = bytes4(reason);
    }

    /// @dev Picks one of `actor`'s open locks across all nodes, or returns found = false.
    function _pickLock(address actor, uint256 seed) internal view returns (bool found, address node, uint256 lockId) {
        uint256 open;
        for (uint256 n = 0; n < nodes.length; ++n) {
            uint256 count = staking.lockCount(nodes[n], actor);
            for (uint256 id = 0; id < count; ++id) {
                if (staking.unbondingLock(nodes[n], actor, id).shares > 0) ++open;
            }
        }
        if (open == 0) return (false, address(0), 0);
        uint256 pick = seed % open;
        for (uint256 n = 0; n < nodes.length; ++n) {
            uint256 count = staking.lockCount(nodes[n], actor);
            for (uint256 id = 0; id < count; ++id) {
                if (staking.unbondingLock(nodes[n], actor, id).shares == 0) continue;
                if (pick == 0) return (true, nodes[n], id);
                --pick;
            }
        }
    }

    /// @dev Whether `actor` may stake `amount` on `node` now (every check NodeStaking makes).
    function _canStake(address actor, address node, uint256 amount) internal view returns (bool) {
        if (staking.paused() || !_registered(node)) return false;
        INodeStaking.Pool memory pool = staking.activePool(node);
        uint256 shares = ShareMath.toShares(amount, pool);
        if (shares == 0) return false;
        if (uint256(pool.shares) + shares > type(uint128).max) return false;
        if (actor == node) {
            uint256 selfShares = staking.sharesOf(node, node) + shares;
            INodeStaking.Pool memory after_ = INodeStaking.Pool(
                pool.stake + uint128(amount),
                pool.shares + uint128(shares)
            );
            return ShareMath.toStake(selfShares, after_) >= minSelfStake;
        }
        return !staking.isJailed(node) && staking.selfStakeOf(node) >= minSelfStake;
    }

    function _shareOverflow(address node, uint256 amount) internal view returns (bool) {
        INodeStaking.Pool memory pool = staking.activePool(node);
        return uint256(pool.shares) + ShareMath.toShares(amount, pool) > type(uint128).max;
    }

    function _stakeAs(address actor, address node, uint256 amount) internal {
        token.transfer(actor, amount);
        vm.prank(actor);
        staking.stake(node, amount);
        deposited[actor] += amount;
        ghostStaked += amount;
        ghostTokensIn += amount;
        ++ghostActions;
    }

    // ------------------------------------------------------------------ actions

    /// @notice Registers `node` and self-stakes at least the minimum (also used by setUp).
    function registerNode(uint256 nodeSeed, uint256 amount) public clocked {
        address node = _node(nodeSeed);
        if (staking.paused() || _registered(node)) return;
        ++calls["registerNode"];
        vm.prank(node);
        staking.registerNode("https://node.example/infer", keccak256(abi.encode(node)), 1_000);
        _stakeAs(node, node, bound(amount, minSelfStake, MAX_STAKE));
    }

    /// @notice An actor stakes on a node (self-stake when the actor is the node's operator): the
    /// first node from `nodeSeed` on that accepts it. An operator whose node is not registered yet
    /// registers it instead.
    function stake(uint256 actorSeed, uint256 nodeSeed, uint256 amount) external clocked pricesKept {
        address actor = _actor(actorSeed);
        if (actorSeed % actors.length < nodes.length && !_registered(actor)) {
            registerNode(actorSeed, amount);
            return;
        }
        amount = bound(amount, 1, MAX_STAKE);
        for (uint256 k = 0; k < nodes.length; ++k) {
            address node = _node((nodeSeed % nodes.length) + k);
            uint256 toStake = amount;
            if (actor == node && _registered(node)) {
                uint256 selfStake = staking.selfStakeOf(node);
                if (selfStake + toStake < minSelfStake + 2) toStake = minSelfStake + 2 - selfStake;
            }
            if (!_canStake(actor, node, toStake)) {
                if (_shareOverflow(node, toStake)) ++ghostShareOverflowSkips;
                continue;
            }
            ++calls["stake"];
            _stakeAs(actor, node, toStake);
            return;
        }
    }

    /// @dev The first (actor, node) from the seeds on where the actor has active stake.
    function _pickStake(
        uint256 actorSeed,
        uint256 nodeSeed
    ) internal view returns (address actor, address node, uint256 have) {
        for (uint256 a = 0; a < actors.length; ++a) {
            actor = _actor((actorSeed % actors.length) + a);
            for (uint256 k = 0; k < nodes.length; ++k) {
                node = _node((nodeSeed % nodes.length) + k);
                if (!_registered(node)) continue;
                have = staking.stakeOf(node, actor);
                if (have > 0) return (actor, node, have);
            }
        }
    }

    /// @dev The first actor from the seed on with an open lock, and one of its locks.
    function _pickActorLock(
        uint256 actorSeed,
        uint256 lockSeed
    ) internal view returns (bool found, address actor, address node, uint256 lockId) {
        for (uint256 a = 0; a < actors.length; ++a) {
            actor = _actor((actorSeed % actors.length) + a);
            (found, node, lockId) = _pickLock(actor, lockSeed);
            if (found) return (found, actor, node, lockId);
        }
    }

    /// @notice An actor unbonds part of its active stake on a node (the first actor and node from
    /// the seeds on with stake). Works while paused or jailed.
    function unbond(uint256 actorSeed, uint256 nodeSeed, uint256 amount) external clocked pricesKept {
        (address actor, address node, uint256 have) = _pickStake(actorSeed, nodeSeed);
        if (have == 0) return;
        amount = bound(amount, 1, have);
        if (ShareMath.toShares(amount, staking.unbondingPool(node)) == 0) return;
        ++calls["unbond"];
        uint64 withdrawableAt = uint64(block.timestamp) + staking.parameters().unbondingPeriod;
        vm.prank(actor);
        uint256 lockId = staking.unbond(node, amount);
        ghostWithdrawableAt[lockKey(node, actor, lockId)] = withdrawableAt;
        ++ghostActions;
    }

    /// @notice An actor cancels one of its locks.
    function rebond(uint256 actorSeed, uint256 lockSeed) external clocked pricesKept {
        if (staking.paused()) return;
        (bool found, address actor, address node, uint256 lockId) = _pickActorLock(actorSeed, lockSeed);
        if (!found) return;
        uint256 amount = staking.lockValue(node, actor, lockId);
        INodeStaking.Pool memory active = staking.activePool(node);
        uint256 shares = ShareMath.toShares(amount, active);
        if (shares == 0) return;
        if (uint256(active.shares) + shares > type(uint128).max) {
            ++ghostShareOverflowSkips;
            return;
        }
        ++calls["rebond"];
        vm.prank(actor);
        staking.rebond(node, lockId);
        ++ghostActions;
    }

    /// @notice An actor withdraws one of its locks: first too early when it is not mature (which
    /// must fail with LockNotMatured), then after warping to maturity plus `extra`.
    function withdraw(uint256 actorSeed, uint256 lockSeed, uint256 extra) external clocked pricesKept {
        (bool found, address actor, address node, uint256 lockId) = _pickActorLock(actorSeed, lockSeed);
        if (!found) return;
        ++calls["withdraw"];
        uint64 maturity = ghostWithdrawableAt[lockKey(node, actor, lockId)];
        if (block.timestamp < maturity) {
            vm.prank(actor);
            try staking.withdraw(node, lockId) returns (uint256 paid) {
                ++ghostEarlyWithdrawals;
                _recordWithdrawal(actor, paid);
                return;
            } catch (bytes memory reason) {
                if (_selector(reason) == INodeStaking.LockNotMatured.selector) ++ghostEarlyWithdrawalsRejected;
                else ++ghostUnexpectedErrors;
            }
            currentTime = uint256(maturity) + bound(extra, 0, MAX_WARP);
            vm.warp(currentTime);
        }
        vm.prank(actor);
        uint256 amount = staking.withdraw(node, lockId);
        if (block.timestamp < maturity) ++ghostEarlyWithdrawals;
        _recordWithdrawal(actor, amount);
    }

    function _recordWithdrawal(address actor, uint256 amount) internal {
        withdrawn[actor] += amount;
        ghostWithdrawn += amount;
        ghostTokensOut += amount;
        ++ghostActions;
    }

    /// @notice Time passes.
    function warp(uint256 seconds_) external clocked {
        ++calls["warp"];
        currentTime += bound(seconds_, 1, MAX_WARP);
        vm.warp(currentTime);
    }

    /// @notice The rewarder adds rewards to a node's active pool.
    function addRewards(uint256 nodeSeed, uint256 amount) external clocked {
        address node = _node(nodeSeed);
        if (!_registered(node)) return;
        INodeStaking.Pool memory pool = staking.activePool(node);
        if (pool.shares == 0) return;
        // Keep the share price below 1 wei: stake + reward + 1 < shares + virtual shares.
        uint256 room = uint256(pool.shares) + ShareMath.VIRTUAL_SHARES;
        if (room <= uint256(pool.stake) + 2) return;
        amount = bound(amount, 1, Math.min(MAX_STAKE, room - uint256(pool.stake) - 2));
        ++calls["addRewards"];
        for (uint256 i = 0; i < actors.length; ++i) {
            uint256 shares = staking.sharesOf(node, actors[i]);
            if (shares > 0) {
                rewardsEarned[actors[i]] += amount.mulDiv(shares, room, Math.Rounding.Ceil);
            }
        }
        staking.addRewards(node, amount);
        ghostRewarded += amount;
        ghostTokensIn += amount;
        ++ghostActions;
    }

    /// @notice RewardClaims funds an epoch's earnings into the reserve (the tokens come from the
    /// handler's supply through the vault, so the vault's own balance only ever grows by releases).
    function fundEarnings(uint256 amount) external clocked {
        amount = bound(amount, 1, MAX_STAKE);
        ++calls["fundEarnings"];
        token.transfer(claimsVault, amount);
        vm.startPrank(claimsVault);
        token.approve(address(staking), amount);
        staking.fundEarnings(amount);
        vm.stopPrank();
        ghostFunded += amount;
        ghostTokensIn += amount;
        ++ghostActions;
    }

    /// @notice RewardClaims pays a claim out of the reserve: to a node (stakers' part into its pool,
    /// commission accrued) or to a publisher (sent).
    function payEarnings(uint256 accountSeed, uint256 amount) external clocked {
        uint256 reserve = staking.earningsReserve();
        if (reserve == 0) return;
        address account = accountSeed % 4 == 3 ? PUBLISHER : _node(accountSeed);
        uint256 room;
        if (_registered(account)) {
            INodeStaking.Pool memory pool = staking.activePool(account);
            // The stakers' part is a reward: keep the share price below 1 wei, as addRewards does.
            room = uint256(pool.shares) + ShareMath.VIRTUAL_SHARES;
            if (pool.shares != 0 && room <= uint256(pool.stake) + 2) return;
            if (pool.shares != 0) reserve = Math.min(reserve, room - uint256(pool.stake) - 2);
        }
        amount = bound(amount, 0, reserve);
        ++calls["payEarnings"];
        uint256[6] memory shares;
        for (uint256 i = 0; i < actors.length; ++i) shares[i] = staking.sharesOf(account, actors[i]);
        vm.prank(claimsVault);
        (uint256 toStakers, uint256 commission) = staking.payEarnings(account, amount);
        if (toStakers + commission != (_registered(account) ? amount : 0)) ++ghostUnexpectedErrors;
        for (uint256 i = 0; i < actors.length; ++i) {
            if (shares[i] > 0) rewardsEarned[actors[i]] += toStakers.mulDiv(shares[i], room, Math.Rounding.Ceil);
        }
        ghostPaid += amount;
        if (!_registered(account)) {
            ghostPaidOut += amount;
            ghostTokensOut += amount;
        }
        ++ghostActions;
    }

    /// @notice An operator withdraws its node's accrued commission (refused when there is none).
    function withdrawCommission(uint256 nodeSeed) external clocked {
        address node = _node(nodeSeed);
        uint256 owed = staking.nodeInfo(node).commissionOwed;
        ++calls["withdrawCommission"];
        vm.prank(node);
        try staking.withdrawCommission() returns (uint256 amount) {
            if (amount != owed || owed == 0) ++ghostUnexpectedErrors;
            ghostCommissionWithdrawn += amount;
            ghostTokensOut += amount;
            ++ghostActions;
        } catch (bytes memory reason) {
            if (owed != 0 || _selector(reason) != INodeStaking.NoCommission.selector) ++ghostUnexpectedErrors;
        }
    }

    /// @notice The slasher slashes a node with fresh evidence, after checking that an amount above
    /// the cap and a reused evidence hash are both refused.
    function slash(uint256 nodeSeed, uint256 amount, uint256 overBy) external clocked {
        address node = _node(nodeSeed);
        if (!_registered(node)) return;
        ++calls["slash"];
        INodeStaking.Pool memory active = staking.activePool(node);
        INodeStaking.Pool memory unbonding = staking.unbondingPool(node);
        uint256 slashable = uint256(active.stake) + unbonding.stake;
        uint256 cap = staking.maxSlashOf(node);
        if (cap != (slashable * staking.parameters().maxSlashBps) / 10_000 || cap > slashable) {
            ++ghostSlashCapMismatches;
        }

        _tryOverCap(node, cap, overBy);
        if (cap == 0) return;

        amount = bound(amount, 1, cap);
        bytes32 evidence = keccak256(abi.encode("evidence", ++evidenceNonce));
        staking.slash(node, amount, evidence);
        ghostSlashed += amount;
        ++ghostActions;

        uint256 fromActive = active.stake - staking.activePool(node).stake;
        uint256 fromUnbonding = unbonding.stake - staking.unbondingPool(node).stake;
        if (
            fromActive + fromUnbonding != amount ||
            fromActive != amount.mulDiv(active.stake, slashable) ||
            fromUnbonding > unbonding.stake
        ) ++ghostSlashMisallocations;
        // Share counts stay, unless the slash left the unbonding pool diluted 256x or more.
        uint256 bits = ShareMath.redenominationBits(unbonding.shares, unbonding.stake - fromUnbonding);
        if (bits > 0) ++ghostRedenominations;
        if (
            staking.activePool(node).shares != active.shares ||
            staking.unbondingPool(node).shares != uint256(unbonding.shares) >> bits
        ) ++ghostSlashMisallocations;

        try staking.slash(node, 1, evidence) {
            ++ghostEvidenceReuses;
        } catch (bytes memory reason) {
            if (_selector(reason) != INodeStaking.EvidenceAlreadyUsed.selector) ++ghostUnexpectedErrors;
        }
    }

    function _tryOverCap(address node, uint256 cap, uint256 overBy) internal {
        uint256 over = cap + bound(overBy, 1, 1e30);
        try staking.slash(node, over, keccak256(abi.encode("over", ++evidenceNonce))) {
            ++ghostSlashesAboveCap;
            ghostSlashed += over;
        } catch (bytes memory reason) {
            if (_selector(reason) == INodeStaking.SlashExceedsCap.selector) ++ghostOverCapRejected;
            else ++ghostUnexpectedErrors;
        }
    }

    /// @notice Anyone pays out the slashed tokens owed to the recipient and the burn address.
    function releaseSlashedStake() external clocked {
        ++calls["releaseSlashedStake"];
        (uint256 redistribution, uint256 burn) = staking.slashedOwed();
        staking.releaseSlashedStake();
        ghostReleased += redistribution + burn;
        ghostTokensOut += redistribution + burn;
    }

    /// @notice Governance and the guardian: pause (one call in eight) or unpause, free a jailed
    /// node, or change the unbonding period and the slash cap (up to 100%).
    function govern(uint256 seed, uint256 period, uint256 maxSlashBps) external clocked {
        uint256 kind = seed % 3;
        if (kind == 0) {
            ++calls["setPaused"];
            bool paused = (seed / 3) % 8 == 0;
            if (paused && !staking.paused()) staking.pause();
            else if (!paused && staking.paused()) staking.unpause();
        } else if (kind == 1) {
            address node = _node(seed / 3);
            if (!_registered(node) || !staking.isJailed(node)) return;
            ++calls["unjail"];
            staking.unjail(node);
        } else {
            ++calls["setParameters"];
            INodeStaking.Parameters memory p = staking.parameters();
            p.unbondingPeriod = uint32(bound(period, 1 hours, 30 days));
            p.maxSlashBps = uint16(bound(maxSlashBps, 1, 5_000));
            staking.setParameters(p);
        }
    }

    // ------------------------------------------------------------------ views for the invariants

    function nodeCount() external view returns (uint256) {
        return nodes.length;
    }

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    /// @notice Tokens `actor` could take out now: active stake on every node plus every open lock.
    function valueOf(address actor) public view returns (uint256 value) {
        for (uint256 n = 0; n < nodes.length; ++n) {
            value += staking.stakeOf(nodes[n], actor);
            uint256 count = staking.lockCount(nodes[n], actor);
            for (uint256 id = 0; id < count; ++id) value += staking.lockValue(nodes[n], actor, id);
        }
    }

    /// @notice Sum of the unbonding-lock shares of every actor on `node`, and how many locks were
    /// ever made there.
    function lockSharesOn(address node) public view returns (uint256 total, uint256 locks) {
        for (uint256 i = 0; i < actors.length; ++i) {
            uint256 count = staking.lockCount(node, actors[i]);
            locks += count;
            for (uint256 id = 0; id < count; ++id) total += staking.unbondingLock(node, actors[i], id).shares;
        }
    }

    /// @notice Sum of the active shares of every actor on `node`.
    function activeSharesOn(address node) public view returns (uint256 total) {
        for (uint256 i = 0; i < actors.length; ++i) total += staking.sharesOf(node, actors[i]);
    }

    // ------------------------------------------------------------------ exit, for afterInvariant

    function _latestMaturity() internal view returns (uint256 latest) {
        for (uint256 i = 0; i < actors.length; ++i) {
            for (uint256 n = 0; n < nodes.length; ++n) {
                uint256 count = staking.lockCount(nodes[n], actors[i]);
                for (uint256 id = 0; id < count; ++id) {
                    if (staking.unbondingLock(nodes[n], actors[i], id).shares == 0) continue;
                    latest = Math.max(latest, staking.unbondingLock(nodes[n], actors[i], id).withdrawableAt);
                }
            }
        }
    }

    /// @notice Unpauses, then every actor unbonds everything and withdraws every lock at maturity.
    function exitAll() external {
        vm.warp(currentTime);
        if (staking.paused()) staking.unpause();
        for (uint256 i = 0; i < actors.length; ++i) {
            for (uint256 n = 0; n < nodes.length; ++n) {
                uint256 have = staking.stakeOf(nodes[n], actors[i]);
                if (have == 0 || ShareMath.toShares(have, staking.unbondingPool(nodes[n])) == 0) continue;
                vm.prank(actors[i]);
                uint256 lockId = staking.unbond(nodes[n], have);
                ghostWithdrawableAt[lockKey(nodes[n], actors[i], lockId)] =
                    uint64(block.timestamp) + staking.parameters().unbondingPeriod;
                ++ghostActions;
            }
        }
        for (uint256 n = 0; n < nodes.length; ++n) {
            if (staking.nodeInfo(nodes[n]).commissionOwed == 0) continue;
            vm.prank(nodes[n]);
            uint256 commission = staking.withdrawCommission();
            ghostCommissionWithdrawn += commission;
            ghostTokensOut += commission;
        }
        // Locks made under a longer unbonding period may mature after those just made.
        currentTime = Math.max(currentTime, _latestMaturity());
        vm.warp(currentTime);
        for (uint256 i = 0; i < actors.length; ++i) {
            for (uint256 n = 0; n < nodes.length; ++n) {
                uint256 count = staking.lockCount(nodes[n], actors[i]);
                for (uint256 id = 0; id < count; ++id) {
                    if (staking.unbondingLock(nodes[n], actors[i], id).shares == 0) continue;
                    if (block.timestamp < ghostWithdrawableAt[lockKey(nodes[n], actors[i], id)]) {
                        ++ghostEarlyWithdrawals;
                    }
                    vm.prank(actors[i]);
                    _recordWithdrawal(actors[i], staking.withdraw(nodes[n], id));
                }
            }
        }
    }
}

/// @title NodeStakingInvariantTest
/// @notice Invariants of PROTOCOL.md for staking, checked after every handler call.
/// @dev Runs and depth are set per invariant below (hardhat-config inline directives: 64 runs of
/// 128 calls, failOnRevert) so that the whole Solidity suite stays well within a couple of
/// minutes on a 2-core machine; each invariant_* function is its own campaign.
contract NodeStakingInvariantTest is StakingFixture {
    StakingHandler internal handler;

    function setUp() public {
        _deploy();
        handler = new StakingHandler(staking, token);
        staking.grantRole(staking.SLASHER_ROLE(), address(handler));
        staking.grantRole(staking.REWARDER_ROLE(), address(handler));
        staking.grantRole(staking.PAUSER_ROLE(), address(handler));
        staking.grantRole(staking.DEFAULT_ADMIN_ROLE(), address(handler));
        token.transfer(address(handler), token.balanceOf(address(this)));
        // One node exists from the start so that early actions have something to act on.
        handler.registerNode(0, 10_000e18);

        bytes4[] memory selectors = new bytes4[](12);
        selectors[0] = StakingHandler.stake.selector;
        selectors[1] = StakingHandler.unbond.selector;
        selectors[2] = StakingHandler.rebond.selector;
        selectors[3] = StakingHandler.withdraw.selector;
        selectors[4] = StakingHandler.warp.selector;
        selectors[5] = StakingHandler.addRewards.selector;
        selectors[6] = StakingHandler.slash.selector;
        selectors[7] = StakingHandler.releaseSlashedStake.selector;
        selectors[8] = StakingHandler.govern.selector;
        selectors[9] = StakingHandler.fundEarnings.selector;
        selectors[10] = StakingHandler.payEarnings.selector;
        selectors[11] = StakingHandler.withdrawCommission.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    function _nodes() internal view returns (address[] memory nodes) {
        nodes = new address[](handler.nodeCount());
        for (uint256 n = 0; n < nodes.length; ++n) nodes[n] = handler.nodes(n);
    }

    /// @notice The contract's token balance is exactly what it owes: every pool's stake plus the
    /// slashed tokens owed to the redistribution recipient and the burn address.
    /// hardhat-config: invariant.runs = 64
    /// hardhat-config: invariant.depth = 128
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_tokenBalanceEqualsOwed() public view {
        assertEq(token.balanceOf(address(staking)), _owedBy(_nodes()), "staking balance != pools + owed slashes");
    }

    /// @notice Tokens in (stakes, rewards) = tokens out (withdrawals, released slashes) + held, and
    /// every slashed token is either still owed or was released.
    /// hardhat-config: invariant.runs = 64
    /// hardhat-config: invariant.depth = 128
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_tokensInEqualOutPlusHeld() public view {
        uint256 held = token.balanceOf(address(staking));
        assertEq(handler.ghostTokensIn(), handler.ghostTokensOut() + held, "in != out + held");
        assertEq(
            handler.ghostTokensIn(),
            handler.ghostStaked() + handler.ghostRewarded() + handler.ghostFunded(),
            "in != staked + rewarded + funded"
        );
        assertEq(staking.earningsReserve(), handler.ghostFunded() - handler.ghostPaid(), "reserve != funded - paid");
        (uint256 redistribution, uint256 burn) = staking.slashedOwed();
        assertEq(handler.ghostSlashed(), redistribution + burn + handler.ghostReleased(), "slashed != owed + released");
        assertEq(
            token.balanceOf(RECIPIENT) + token.balanceOf(BURN),
            handler.ghostReleased(),
            "recipient + burn != released"
        );
        assertEq(
            handler.ghostTokensOut(),
            handler.ghostWithdrawn() +
                handler.ghostReleased() +
                handler.ghostPaidOut() +
                handler.ghostCommissionWithdrawn(),
            "out != withdrawn + released + paid out + commission"
        );
    }

    /// @notice Every pool's share total is the sum of its holders' shares: stakers' active shares
    /// for the active pool, unbonding locks' shares for the unbonding pool. Re-denominating a
    /// diluted unbonding pool rounds each lock down once, so there the total may exceed the locks'
    /// sum by unowned units (each worth about a millionth of a wei): at most two per lock ever made.
    /// hardhat-config: invariant.runs = 64
    /// hardhat-config: invariant.depth = 128
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_poolSharesEqualHolders() public view {
        address[] memory nodes = _nodes();
        for (uint256 n = 0; n < nodes.length; ++n) {
            assertEq(
                staking.activePool(nodes[n]).shares,
                handler.activeSharesOn(nodes[n]),
                "active shares != stakers'"
            );
            (uint256 lockShares, uint256 locks) = handler.lockSharesOn(nodes[n]);
            uint256 poolShares = staking.unbondingPool(nodes[n]).shares;
            assertLe(lockShares, poolShares, "locks hold more unbonding shares than the pool");
            if (handler.ghostRedenominations() == 0) assertEq(poolShares, lockShares, "unbonding shares != locks'");
            else assertLe(poolShares - lockShares, 2 * locks, "unowned unbonding shares beyond rounding");
        }
    }

    /// @notice No lock was ever withdrawn before its withdrawableAt; early attempts were refused
    /// with LockNotMatured.
    /// hardhat-config: invariant.runs = 64
    /// hardhat-config: invariant.depth = 128
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_noEarlyWithdrawal() public view {
        assertEq(handler.ghostEarlyWithdrawals(), 0, "a lock was withdrawn before withdrawableAt");
        assertEq(handler.ghostUnexpectedErrors(), 0, "a refused call failed with an unexpected error");
    }

    /// @notice No slash ever exceeded the cap computed at its time (nor, so, the slashable stake),
    /// every slash was split pro rata between the active and the unbonding pool, and no evidence
    /// slashed twice.
    /// hardhat-config: invariant.runs = 64
    /// hardhat-config: invariant.depth = 128
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_slashesWithinCap() public view {
        assertEq(handler.ghostSlashesAboveCap(), 0, "a slash above the cap succeeded");
        assertEq(handler.ghostSlashCapMismatches(), 0, "maxSlashOf != slashable * maxSlashBps / 10000");
        assertEq(handler.ghostSlashMisallocations(), 0, "a slash was not taken pro rata from both pools");
        assertEq(handler.ghostEvidenceReuses(), 0, "an evidence hash slashed twice");
        assertEq(handler.ghostUnexpectedErrors(), 0, "a refused call failed with an unexpected error");
    }

    /// @notice Stake, unbond, rebond and withdraw never lower any pool's share price, so no
    /// staker's action ever lowers another's value (only slashes do).
    /// hardhat-config: invariant.runs = 64
    /// hardhat-config: invariant.depth = 128
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_sharePricesOnlyFallBySlash() public view {
        assertEq(handler.ghostPriceDrops(), 0, "a staker's action lowered a share price");
    }

    /// @notice No actor ever took out, or can still take out, more than it deposited plus its
    /// pro-rata rewards plus rounding dust; and all claims together fit in the pools.
    /// hardhat-config: invariant.runs = 64
    /// hardhat-config: invariant.depth = 128
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_withdrawalsBoundedByDepositsAndRewards() public view {
        uint256 dust = 2 * handler.ghostActions();
        uint256 claims;
        for (uint256 i = 0; i < handler.actorCount(); ++i) {
            address actor = handler.actors(i);
            uint256 value = handler.valueOf(actor);
            claims += value;
            assertLe(
                handler.withdrawn(actor) + value,
                handler.deposited(actor) + handler.rewardsEarned(actor) + dust,
                "actor's withdrawals + value exceed deposits + rewards"
            );
        }
        assertLe(claims, _owedBy(_nodes()), "claims exceed the pools");
    }

    /// @notice After each run everyone can leave: unpaused, every actor unbonds everything and
    /// withdraws every lock at maturity, and the invariants still hold.
    function afterInvariant() public {
        handler.exitAll();
        invariant_tokenBalanceEqualsOwed();
        invariant_tokensInEqualOutPlusHeld();
        invariant_poolSharesEqualHolders();
        invariant_noEarlyWithdrawal();
        invariant_withdrawalsBoundedByDepositsAndRewards();
    }
}

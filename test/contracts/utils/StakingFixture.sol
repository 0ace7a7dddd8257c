// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {INodeStaking} from "../../../contracts/interfaces/INodeStaking.sol";
import {NodeStaking} from "../../../contracts/staking/NodeStaking.sol";
import {InframeshToken} from "../../../contracts/token/InframeshToken.sol";
import {Test} from "./Test.sol";
import {vm} from "./Vm.sol";

/// @title ShareMath
/// @notice An independent restatement of NodeStaking's share pricing (virtual 1e6 shares and
/// 1 wei of virtual stake per pool), used by the tests to predict results and reverts.
library ShareMath {
    uint256 internal constant VIRTUAL_SHARES = 1e6;
    uint256 internal constant VIRTUAL_STAKE = 1;

    function toShares(uint256 amount, INodeStaking.Pool memory pool) internal pure returns (uint256) {
        return Math.mulDiv(amount, uint256(pool.shares) + VIRTUAL_SHARES, uint256(pool.stake) + VIRTUAL_STAKE);
    }

    function toStake(uint256 shares, INodeStaking.Pool memory pool) internal pure returns (uint256) {
        return Math.mulDiv(shares, uint256(pool.stake) + VIRTUAL_STAKE, uint256(pool.shares) + VIRTUAL_SHARES);
    }

    /// @dev Bits by which a slash re-denominates an unbonding pool left with `shares` over `stake`:
    /// floor(log2(dilution)) once the share price is 256x or more below 1 wei per 1e6 shares.
    function redenominationBits(uint256 shares, uint256 stake) internal pure returns (uint256) {
        uint256 dilution = (shares + VIRTUAL_SHARES) / ((stake + VIRTUAL_STAKE) * VIRTUAL_SHARES);
        return dilution < 256 ? 0 : Math.log2(dilution);
    }

    /// @dev Whether the pool's share price (stake + 1) / (shares + 1e6) is not lower in `next` than
    /// in `prev`, compared exactly by cross-multiplication.
    function priceNotLower(INodeStaking.Pool memory prev, INodeStaking.Pool memory next) internal pure returns (bool) {
        return
            (uint256(next.stake) + VIRTUAL_STAKE) * (uint256(prev.shares) + VIRTUAL_SHARES) >=
            (uint256(prev.stake) + VIRTUAL_STAKE) * (uint256(next.shares) + VIRTUAL_SHARES);
    }

    /// @dev The ideal (unrounded) value of a reward or slash share: amount * shares / (poolShares + virtual).
    function proRata(uint256 amount, uint256 shares, INodeStaking.Pool memory pool) internal pure returns (uint256) {
        return Math.mulDiv(amount, shares, uint256(pool.shares) + VIRTUAL_SHARES);
    }
}

/// @title StakingFixture
/// @notice Deploys the dev token and NodeStaking with this test contract as governance and as the
/// holder of the slasher, rewarder and pauser roles, plus helpers to act as operators and stakers.
abstract contract StakingFixture is Test {
    uint96 internal constant MIN_SELF_STAKE = 1_000e18;
    uint32 internal constant UNBONDING_PERIOD = 14 days;
    uint32 internal constant JAIL_PERIOD = 3 days;
    uint16 internal constant MAX_SLASH_BPS = 1_000;
    uint16 internal constant BURN_BPS = 5_000;
    uint256 internal constant SUPPLY = 1e36;
    /// @dev Largest single stake the tests use: a billion tokens.
    uint256 internal constant MAX_AMOUNT = 1e27;

    address internal constant RECIPIENT = address(0x5E771E);
    address internal constant BURN = 0x000000000000000000000000000000000000dEaD;

    InframeshToken internal token;
    NodeStaking internal staking;

    function _deploy() internal {
        vm.warp(1_700_000_000);
        token = new InframeshToken(address(this), SUPPLY);
        uint256[] memory thresholds = new uint256[](2);
        thresholds[0] = 10_000e18;
        thresholds[1] = 100_000e18;
        staking = new NodeStaking(
            token,
            address(this),
            INodeStaking.Parameters({
                minSelfStake: MIN_SELF_STAKE,
                unbondingPeriod: UNBONDING_PERIOD,
                jailPeriod: JAIL_PERIOD,
                maxSlashBps: MAX_SLASH_BPS,
                burnBps: BURN_BPS
            }),
            thresholds,
            RECIPIENT
        );
        staking.grantRole(staking.SLASHER_ROLE(), address(this));
        staking.grantRole(staking.REWARDER_ROLE(), address(this));
        staking.grantRole(staking.PAUSER_ROLE(), address(this));
        token.approve(address(staking), type(uint256).max);
    }

    function _approve(address who) internal {
        vm.prank(who);
        token.approve(address(staking), type(uint256).max);
    }

    function _register(address operator) internal {
        vm.prank(operator);
        staking.registerNode("https://node.example/infer", keccak256(abi.encode(operator)), 500);
    }

    /// @dev Sends `amount` to `who` and stakes it on `node` as `who` (approval made beforehand).
    function _stake(address who, address node, uint256 amount) internal returns (uint256 shares) {
        token.transfer(who, amount);
        vm.prank(who);
        shares = staking.stake(node, amount);
    }

    function _unbond(address who, address node, uint256 amount) internal returns (uint256 lockId) {
        vm.prank(who);
        lockId = staking.unbond(node, amount);
    }

    function _withdraw(address who, address node, uint256 lockId) internal returns (uint256 amount) {
        vm.prank(who);
        amount = staking.withdraw(node, lockId);
    }

    function _rebond(address who, address node, uint256 lockId) internal returns (uint256 shares) {
        vm.prank(who);
        shares = staking.rebond(node, lockId);
    }

    function _setParameters(uint32 unbondingPeriod, uint16 maxSlashBps) internal {
        staking.setParameters(
            INodeStaking.Parameters({
                minSelfStake: MIN_SELF_STAKE,
                unbondingPeriod: unbondingPeriod,
                jailPeriod: JAIL_PERIOD,
                maxSlashBps: maxSlashBps,
                burnBps: BURN_BPS
            })
        );
    }

    /// @dev Brings the operator's self-stake back to the minimum (after a slash) so delegation works.
    function _topUpSelfStake(address operator) internal {
        uint256 selfStake = staking.selfStakeOf(operator);
        if (selfStake < MIN_SELF_STAKE) _stake(operator, operator, MIN_SELF_STAKE - selfStake + 2);
    }

    /// @dev Token balance the staking contract must hold for the given nodes' pools and owed slashes.
    function _owedBy(address[] memory nodes) internal view returns (uint256 owed) {
        for (uint256 i = 0; i < nodes.length; ++i) {
            owed += staking.slashableStake(nodes[i]) + staking.nodeInfo(nodes[i]).commissionOwed;
        }
        (uint256 redistribution, uint256 burn) = staking.slashedOwed();
        owed += redistribution + burn + staking.earningsReserve();
    }

    function _one(address node) internal pure returns (address[] memory nodes) {
        nodes = new address[](1);
        nodes[0] = node;
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {INodeStaking} from "../interfaces/INodeStaking.sol";

/// @title NodeStaking
/// @notice Per-node share pools for self-stake and delegation, unbonding locks, and O(1) slashing.
/// @dev Token accounting: this contract's balance of `STAKE_TOKEN` always equals the sum of every
/// node's active and unbonding pool stake plus the slashed tokens owed to the burn address and the
/// redistribution recipient. Fee-on-transfer and rebasing tokens break that equality and are not
/// supported.
contract NodeStaking is INodeStaking, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    // ------------------------------------------------------------------ constants

    /// @notice Role allowed to slash nodes (the keeper, the dispute contract).
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    /// @notice Role allowed to add rewards to pools (the settlement contract).
    bytes32 public constant REWARDER_ROLE = keccak256("REWARDER_ROLE");
    /// @notice Role allowed to pause new stake (a guardian); only governance unpauses.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice 100% in basis points.
    uint16 public constant MAX_BPS = 10_000;
    /// @notice Highest per-incident slash cap governance may set: half the slashable stake. A
    /// single slash can then never empty a pool, whose shares would otherwise be priced at zero.
    uint16 public constant MAX_SLASH_BPS = 5_000;
    /// @notice Longest unbonding period governance may set.
    uint32 public constant MAX_UNBONDING_PERIOD = 365 days;
    /// @notice Longest jail period governance may set.
    uint32 public constant MAX_JAIL_PERIOD = 365 days;
    /// @notice Most tiers governance may define.
    uint256 public constant MAX_TIERS = 16;
    /// @notice Where burned slashes go: a generic ERC-20 may have no burn function.
    address public constant BURN_ADDRESS = 0x000000000000000000000000000000000000dEaD;

    /// @dev Virtual shares and stake of every pool (as in OpenZeppelin's ERC4626 offset): the
    /// first staker cannot be front-run by a share-price inflation, and a pool slashed to zero
    /// still prices new stake.
    uint256 private constant VIRTUAL_SHARES = 1e6;
    uint256 private constant VIRTUAL_STAKE = 1;
    /// @dev How far below its initial price (1 wei per VIRTUAL_SHARES shares) a slash may push the
    /// unbonding pool's share price before the pool is re-denominated (see `_redenominateUnbonding`).
    uint256 private constant MAX_UNBONDING_DILUTION = 2 ** 8;

    /// @notice The staking and slashing token.
    IERC20 public immutable STAKE_TOKEN;

    // ------------------------------------------------------------------ storage

    /// @dev One slot: the staker's active shares and how many locks it has made on the node.
    struct StakeRecord {
        uint128 shares;
        uint64 lockCount;
    }

    /// @dev The parameters and the pause flag in one slot: `stake`, `unbond` and `slash` each
    /// read everything they need from it with a single SLOAD.
    struct Config {
        uint96 minSelfStake;
        uint32 unbondingPeriod;
        uint32 jailPeriod;
        uint16 maxSlashBps;
        uint16 burnBps;
        bool paused;
    }

    /// @dev Cumulative slashed tokens (never reset, so a slash never pays for a zero-to-nonzero
    /// write after a release) and cumulative releases; owed = slashed - released.
    struct SlashLedger {
        uint128 redistribution;
        uint128 burn;
    }

    Config private _config;
    /// @dev One slot, read and written once by every earnings payment: the claims contract (receiver of
    /// the redistributed part of slashes, the only funder and payer of earnings) and the reserve of
    /// settled earnings it funded and has not paid yet (96 bits: 79 billion tokens of 18 decimals).
    struct ClaimsVault {
        address recipient;
        uint96 earningsReserve;
    }

    ClaimsVault private _claimsVault;
    SlashLedger private _slashed;
    SlashLedger private _released;
    uint256[] private _tierThresholds;

    mapping(address node => NodeInfo) private _nodes;
    mapping(address node => string) private _endpoints;
    mapping(address node => Pool) private _active;
    mapping(address node => Pool) private _unbonding;
    mapping(address node => mapping(address staker => StakeRecord)) private _stakes;
    /// @dev One slot: an unbonding lock, its `shares` counted in the unbonding pool's denomination
    /// (`scale`) of the time it was made.
    struct LockRecord {
        uint128 shares;
        uint64 withdrawableAt;
        uint64 scale;
    }

    mapping(address node => mapping(address staker => mapping(uint256 lockId => LockRecord))) private _locks;
    /// @dev Bits by which each node's unbonding-pool share counts have been divided so far.
    mapping(address node => uint64) private _unbondingScale;
    mapping(bytes32 evidenceHash => bool) private _evidenceUsed;

    // ------------------------------------------------------------------ modifiers

    modifier whenNotPaused() {
        if (_config.paused) revert EnforcedPause();
        _;
    }

    modifier onlyRegistered(address node) {
        if (!_nodes[node].registered) revert UnknownNode(node);
        _;
    }

    // ------------------------------------------------------------------ constructor

    /// @param token The ERC-20 staked and slashed.
    /// @param admin Governance (the timelock), holder of DEFAULT_ADMIN_ROLE.
    /// @param initialParameters Starting parameters.
    /// @param initialTierThresholds Starting tier thresholds (strictly ascending).
    /// @param initialRedistributionRecipient Receiver of the redistributed part of slashes.
    constructor(
        IERC20 token,
        address admin,
        Parameters memory initialParameters,
        uint256[] memory initialTierThresholds,
        address initialRedistributionRecipient
    ) {
        if (address(token) == address(0)) revert ZeroAddress("token");
        if (admin == address(0)) revert ZeroAddress("admin");
        STAKE_TOKEN = token;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setParameters(initialParameters);
        _setTierThresholds(initialTierThresholds);
        _setRedistributionRecipient(initialRedistributionRecipient);
    }

    // ------------------------------------------------------------------ internal

    // Pool stakes and shares are uint128 and callers cast amounts to uint128 first, so every
    // product below fits in 256 bits and plain checked arithmetic is exact.

    function _toShares(uint256 amount, Pool memory pool) internal pure returns (uint256) {
        return (amount * (pool.shares + VIRTUAL_SHARES)) / (pool.stake + VIRTUAL_STAKE);
    }

    function _toStake(uint256 shares, Pool memory pool) internal pure returns (uint256) {
        return (shares * (pool.stake + VIRTUAL_STAKE)) / (pool.shares + VIRTUAL_SHARES);
    }

    /// @dev Shares to burn for `amount` tokens, rounded up so the pool never pays out more than it holds.
    function _toSharesCeil(uint256 amount, Pool memory pool) internal pure returns (uint256) {
        return Math.ceilDiv(amount * (pool.shares + VIRTUAL_SHARES), pool.stake + VIRTUAL_STAKE);
    }

    /// @dev Shares minted into a pool must keep its share total within uint128. Only a pool whose
    /// stake was slashed to dust against a large share total gets here: see docs/staking.md.
    function _checkMintable(address node, uint256 poolShares, uint256 shares) internal pure {
        if (poolShares + shares > type(uint128).max) revert PoolDepleted(node);
    }

    function _isJailed(NodeInfo storage info) internal view returns (bool) {
        return block.timestamp < info.jailedUntil;
    }

    /// @dev Adds `amount` to `node`'s active pool for `staker`; the caller moves the tokens.
    /// Registration is checked only on a staker's first stake in a pool: shares exist only in
    /// registered nodes' pools and nodes are never deregistered, which keeps top-ups cheap.
    /// The self-stake minimum binds an operator's first stake; later top-ups may be of any size
    /// (an operator slashed below the minimum tops up towards it). Delegation is open to any
    /// registered node: eligibility decides who serves, and is shown by `isEligible`/`tierOf`.
    function _stake(address node, address staker, uint256 amount) internal returns (uint256 shares) {
        if (amount == 0) revert ZeroAmount();
        uint128 amount128 = amount.toUint128();
        if (_config.paused) revert EnforcedPause();
        StakeRecord storage record = _stakes[node][staker];
        uint256 sharesBefore = record.shares;
        if (sharesBefore == 0 && !_nodes[node].registered) revert UnknownNode(node);
        Pool memory pool = _active[node];
        shares = _toShares(amount, pool);
        if (shares == 0) revert AmountTooSmall(amount);
        _checkMintable(node, pool.shares, shares);
        // Casts below are safe: the pool's new share total fits uint128 (checked just above) and
        // bounds every staker's shares; stake totals are bounded by the token's supply.
        Pool memory poolAfter = Pool(pool.stake + amount128, uint128(pool.shares + shares));
        if (staker == node && sharesBefore == 0) {
            uint256 selfStake = _toStake(shares, poolAfter);
            uint256 minSelfStake = _config.minSelfStake;
            if (selfStake < minSelfStake) revert SelfStakeBelowMinimum(selfStake, minSelfStake);
        }

        record.shares = uint128(sharesBefore + shares);
        _active[node] = poolAfter;
        emit Staked(node, staker, amount, shares);
    }

    /// @dev Removes `amount` from the node's pools pro rata, so unbonding cannot dodge a slash.
    /// The remainder rounds onto the unbonding pool, which the cap keeps within its stake.
    function _takeFromPools(
        address node,
        uint256 amount,
        uint16 maxSlashBps
    ) internal returns (uint256 fromActive, uint256 fromUnbonding) {
        Pool storage active = _active[node];
        Pool storage unbonding = _unbonding[node];
        uint256 activeStake = active.stake;
        uint256 slashable = activeStake + unbonding.stake;
        uint256 cap = (slashable * maxSlashBps) / MAX_BPS;
        if (amount > cap) revert SlashExceedsCap(amount, cap);
        fromActive = Math.mulDiv(amount, activeStake, slashable);
        fromUnbonding = amount - fromActive;
        active.stake = (activeStake - fromActive).toUint128();
        unbonding.stake -= fromUnbonding.toUint128();
        _redenominateUnbonding(node, unbonding);
    }

    /// @dev Slashes lower the unbonding pool's share price. Left alone, a pool slashed towards
    /// dust would mint ever larger share counts for later unbonds until they overflow 128 bits,
    /// and active stake could no longer leave. So once the price is MAX_UNBONDING_DILUTION times
    /// below its initial one, every share count of the pool (its total and, lazily, each lock's)
    /// is divided by 2^floor(log2(dilution)), which restores the price to within 2x of the
    /// initial one. Rounding costs each lock less than one new share: about a millionth of a wei.
    function _redenominateUnbonding(address node, Pool storage unbonding) internal {
        uint256 shares = unbonding.shares;
        uint256 dilution = (shares + VIRTUAL_SHARES) / ((uint256(unbonding.stake) + VIRTUAL_STAKE) * VIRTUAL_SHARES);
        if (dilution < MAX_UNBONDING_DILUTION) return;
        uint256 bits = Math.log2(dilution);
        uint64 scale = _unbondingScale[node] + uint64(bits);
        unbonding.shares = uint128(shares >> bits);
        _unbondingScale[node] = scale;
        emit UnbondingPoolRedenominated(node, bits, scale);
    }

    /// @dev A lock's shares in its pool's current denomination `scale`.
    function _lockShares(LockRecord memory lock, uint64 scale) internal pure returns (uint256) {
        uint256 shift = scale - lock.scale;
        return shift >= 128 ? 0 : uint256(lock.shares) >> shift;
    }

    /// @dev Extends (never shortens) the node's jail to `jailPeriod` from now.
    function _jail(address node, uint32 jailPeriod) internal returns (uint64 jailedUntil) {
        NodeInfo storage info = _nodes[node];
        jailedUntil = uint64(block.timestamp) + jailPeriod;
        if (jailedUntil < info.jailedUntil) jailedUntil = info.jailedUntil;
        info.jailedUntil = jailedUntil;
    }

    function _setParameters(Parameters memory p) internal {
        if (p.minSelfStake == 0) revert InvalidParameter("minSelfStake", 0);
        if (p.unbondingPeriod == 0 || p.unbondingPeriod > MAX_UNBONDING_PERIOD) {
            revert InvalidParameter("unbondingPeriod", p.unbondingPeriod);
        }
        if (p.jailPeriod > MAX_JAIL_PERIOD) revert InvalidParameter("jailPeriod", p.jailPeriod);
        if (p.maxSlashBps == 0 || p.maxSlashBps > MAX_SLASH_BPS) revert InvalidParameter("maxSlashBps", p.maxSlashBps);
        if (p.burnBps > MAX_BPS) revert InvalidParameter("burnBps", p.burnBps);
        _config = Config(p.minSelfStake, p.unbondingPeriod, p.jailPeriod, p.maxSlashBps, p.burnBps, _config.paused);
        emit ParametersSet(p);
    }

    function _setTierThresholds(uint256[] memory thresholds) internal {
        if (thresholds.length > MAX_TIERS) revert InvalidParameter("tierCount", thresholds.length);
        for (uint256 i = 1; i < thresholds.length; ++i) {
            if (thresholds[i] <= thresholds[i - 1]) {
                revert TierThresholdsNotAscending(i, thresholds[i - 1], thresholds[i]);
            }
        }
        _tierThresholds = thresholds;
        emit TierThresholdsSet(thresholds);
    }

    function _setRedistributionRecipient(address recipient) internal {
        if (recipient == address(0)) revert ZeroAddress("redistributionRecipient");
        _claimsVault.recipient = recipient;
        emit RedistributionRecipientSet(recipient);
    }

    function _checkCommission(uint16 commissionBps) internal pure {
        if (commissionBps > MAX_BPS) revert CommissionTooHigh(commissionBps, MAX_BPS);
    }

    // ------------------------------------------------------------------ external: operator

    /// @inheritdoc INodeStaking
    function registerNode(
        string calldata endpoint,
        bytes32 hardwareSpecHash,
        uint16 commissionBps
    ) external whenNotPaused {
        NodeInfo storage info = _nodes[msg.sender];
        if (info.registered) revert NodeAlreadyRegistered(msg.sender);
        _checkCommission(commissionBps);
        info.registered = true;
        info.commissionBps = commissionBps;
        info.hardwareSpecHash = hardwareSpecHash;
        _endpoints[msg.sender] = endpoint;
        emit NodeRegistered(msg.sender, endpoint, hardwareSpecHash, commissionBps);
    }

    /// @inheritdoc INodeStaking
    function updateNode(
        string calldata endpoint,
        bytes32 hardwareSpecHash,
        uint16 commissionBps
    ) external onlyRegistered(msg.sender) {
        _checkCommission(commissionBps);
        NodeInfo storage info = _nodes[msg.sender];
        info.commissionBps = commissionBps;
        info.hardwareSpecHash = hardwareSpecHash;
        _endpoints[msg.sender] = endpoint;
        emit NodeUpdated(msg.sender, endpoint, hardwareSpecHash, commissionBps);
    }

    // ------------------------------------------------------------------ external: stakers

    // `stake` and `stakeWithPermit` carry no reentrancy guard: all state is written before the
    // token is pulled, and the token is fixed at deployment.

    /// @inheritdoc INodeStaking
    function stake(address node, uint256 amount) external returns (uint256 shares) {
        shares = _stake(node, msg.sender, amount);
        STAKE_TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc INodeStaking
    function stakeWithPermit(
        address node,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256 shares) {
        // A front-runner may spend the permit first; the allowance is then already there, so a
        // failed permit is ignored and the transfer below decides.
        try IERC20Permit(address(STAKE_TOKEN)).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        shares = _stake(node, msg.sender, amount);
        STAKE_TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc INodeStaking
    function unbond(address node, uint256 amount) external returns (uint256 lockId) {
        if (amount == 0) revert ZeroAmount();
        StakeRecord memory current = _stakes[node][msg.sender];
        Pool memory active = _active[node];
        uint256 have = _toStake(current.shares, active);
        if (amount > have) {
            if (!_nodes[node].registered) revert UnknownNode(node);
            revert InsufficientStake(have, amount);
        }
        uint256 activeShares = _toSharesCeil(amount, active);

        Pool memory unbonding = _unbonding[node];
        uint256 unbondingShares = _toShares(amount, unbonding);
        if (unbondingShares == 0) revert AmountTooSmall(amount);
        _checkMintable(node, unbonding.shares, unbondingShares);
        uint64 withdrawableAt = uint64(block.timestamp) + _config.unbondingPeriod;

        lockId = current.lockCount;
        _stakes[node][msg.sender] = StakeRecord(current.shares - activeShares.toUint128(), current.lockCount + 1);
        _active[node] = Pool(active.stake - amount.toUint128(), active.shares - activeShares.toUint128());
        _unbonding[node] = Pool(unbonding.stake + amount.toUint128(), unbonding.shares + unbondingShares.toUint128());
        _locks[node][msg.sender][lockId] = LockRecord(
            unbondingShares.toUint128(),
            withdrawableAt,
            _unbondingScale[node]
        );
        emit Unbonded(node, msg.sender, lockId, amount, activeShares, unbondingShares, withdrawableAt);
    }

    /// @inheritdoc INodeStaking
    function rebond(address node, uint256 lockId) external whenNotPaused returns (uint256 shares) {
        LockRecord memory lock = _locks[node][msg.sender][lockId];
        if (lock.shares == 0) revert LockNotFound(node, msg.sender, lockId);
        uint256 lockShares = _lockShares(lock, _unbondingScale[node]);
        Pool memory unbonding = _unbonding[node];
        uint256 amount = _toStake(lockShares, unbonding);
        Pool memory active = _active[node];
        shares = _toShares(amount, active);
        if (shares == 0) revert AmountTooSmall(amount);
        _checkMintable(node, active.shares, shares);

        delete _locks[node][msg.sender][lockId];
        _unbonding[node] = Pool(unbonding.stake - amount.toUint128(), unbonding.shares - uint128(lockShares));
        _active[node] = Pool(active.stake + amount.toUint128(), active.shares + shares.toUint128());
        _stakes[node][msg.sender].shares += shares.toUint128();
        emit Rebonded(node, msg.sender, lockId, amount, lockShares, shares);
    }

    /// @inheritdoc INodeStaking
    // No reentrancy guard: the lock is deleted and the pool updated before the token moves.
    function withdraw(address node, uint256 lockId) external returns (uint256 amount) {
        LockRecord memory lock = _locks[node][msg.sender][lockId];
        if (lock.shares == 0) revert LockNotFound(node, msg.sender, lockId);
        if (block.timestamp < lock.withdrawableAt) {
            revert LockNotMatured(lockId, lock.withdrawableAt, block.timestamp);
        }
        uint256 lockShares = _lockShares(lock, _unbondingScale[node]);
        Pool memory unbonding = _unbonding[node];
        amount = _toStake(lockShares, unbonding);

        delete _locks[node][msg.sender][lockId];
        _unbonding[node] = Pool(unbonding.stake - amount.toUint128(), unbonding.shares - uint128(lockShares));
        emit Withdrawn(node, msg.sender, lockId, amount, lockShares);
        if (amount > 0) STAKE_TOKEN.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ external: protocol roles

    /// @inheritdoc INodeStaking
    function addRewards(
        address node,
        uint256 amount
    ) external onlyRole(REWARDER_ROLE) onlyRegistered(node) nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Pool storage pool = _active[node];
        if (pool.shares == 0) revert NoStakers(node);
        pool.stake += amount.toUint128();
        emit RewardsAdded(node, msg.sender, amount);
        STAKE_TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc INodeStaking
    function fundEarnings(uint256 amount) external nonReentrant {
        ClaimsVault memory vault = _claimsVault;
        if (msg.sender != vault.recipient) revert NotClaimsContract(msg.sender, vault.recipient);
        if (amount == 0) revert ZeroAmount();
        _claimsVault.earningsReserve = (vault.earningsReserve + amount).toUint96();
        emit EarningsFunded(msg.sender, amount);
        STAKE_TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    // No reentrancy guard: a node's payment calls nothing, and any other account's transfer of the
    // fixed stake token comes after every write.
    /// @inheritdoc INodeStaking
    function payEarnings(
        address account,
        uint256 amount
    ) external returns (uint256 toStakers, uint256 commissionAccrued) {
        ClaimsVault memory vault = _claimsVault;
        if (msg.sender != vault.recipient) revert NotClaimsContract(msg.sender, vault.recipient);
        if (amount > vault.earningsReserve) revert InsufficientEarningsReserve(amount, vault.earningsReserve);
        _claimsVault.earningsReserve = uint96(vault.earningsReserve - amount); // safe: amount <= reserve
        NodeInfo storage info = _nodes[account];
        if (!info.registered) {
            emit EarningsPaid(account, amount, 0, 0);
            if (amount > 0) STAKE_TOKEN.safeTransfer(account, amount);
            return (0, 0);
        }
        Pool storage pool = _active[account];
        commissionAccrued = amount;
        if (pool.shares != 0) {
            commissionAccrued = (amount * info.commissionBps) / MAX_BPS;
            toStakers = amount - commissionAccrued;
            if (toStakers != 0) pool.stake += toStakers.toUint128();
        }
        if (commissionAccrued != 0) info.commissionOwed += commissionAccrued.toUint128();
        emit EarningsPaid(account, amount, toStakers, commissionAccrued);
    }

    /// @inheritdoc INodeStaking
    function withdrawCommission() external nonReentrant returns (uint256 amount) {
        NodeInfo storage info = _nodes[msg.sender];
        amount = info.commissionOwed;
        if (amount == 0) revert NoCommission(msg.sender);
        info.commissionOwed = 0;
        emit CommissionWithdrawn(msg.sender, amount);
        STAKE_TOKEN.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc INodeStaking
    function slash(
        address node,
        uint256 amount,
        bytes32 evidenceHash
    ) external onlyRole(SLASHER_ROLE) onlyRegistered(node) {
        if (amount == 0) revert ZeroAmount();
        if (_evidenceUsed[evidenceHash]) revert EvidenceAlreadyUsed(evidenceHash);
        Config memory p = _config;
        (uint256 fromActive, uint256 fromUnbonding) = _takeFromPools(node, amount, p.maxSlashBps);
        uint256 burned = (amount * p.burnBps) / MAX_BPS;
        uint256 redistributed = amount - burned;

        _evidenceUsed[evidenceHash] = true;
        SlashLedger memory slashed = _slashed;
        _slashed = SlashLedger(slashed.redistribution + redistributed.toUint128(), slashed.burn + burned.toUint128());
        uint64 jailedUntil = _jail(node, p.jailPeriod);
        emit Slashed(node, evidenceHash, amount, fromActive, fromUnbonding, burned, redistributed, jailedUntil);
    }

    /// @inheritdoc INodeStaking
    function releaseSlashedStake() external nonReentrant {
        SlashLedger memory slashed = _slashed;
        SlashLedger memory released = _released;
        uint256 redistributed = slashed.redistribution - released.redistribution;
        uint256 burned = slashed.burn - released.burn;
        address recipient = _claimsVault.recipient;
        _released = slashed;
        emit SlashedStakeReleased(recipient, redistributed, burned);
        if (redistributed > 0) STAKE_TOKEN.safeTransfer(recipient, redistributed);
        if (burned > 0) STAKE_TOKEN.safeTransfer(BURN_ADDRESS, burned);
    }

    /// @inheritdoc INodeStaking
    function unjail(address node) external onlyRole(DEFAULT_ADMIN_ROLE) onlyRegistered(node) {
        NodeInfo storage info = _nodes[node];
        if (!_isJailed(info)) revert NodeNotJailed(node);
        info.jailedUntil = 0;
        emit NodeUnjailed(node);
    }

    /// @inheritdoc INodeStaking
    function setParameters(Parameters calldata newParameters) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setParameters(newParameters);
    }

    /// @inheritdoc INodeStaking
    function setTierThresholds(uint256[] calldata thresholds) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTierThresholds(thresholds);
    }

    /// @inheritdoc INodeStaking
    function setRedistributionRecipient(address recipient) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setRedistributionRecipient(recipient);
    }

    /// @inheritdoc INodeStaking
    function pause() external onlyRole(PAUSER_ROLE) whenNotPaused {
        _config.paused = true;
        emit Paused(msg.sender);
    }

    /// @inheritdoc INodeStaking
    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (!_config.paused) revert ExpectedPause();
        _config.paused = false;
        emit Unpaused(msg.sender);
    }

    // ------------------------------------------------------------------ external: views

    /// @inheritdoc INodeStaking
    function paused() external view returns (bool) {
        return _config.paused;
    }

    /// @inheritdoc INodeStaking
    function parameters() external view returns (Parameters memory) {
        Config memory c = _config;
        return Parameters(c.minSelfStake, c.unbondingPeriod, c.jailPeriod, c.maxSlashBps, c.burnBps);
    }

    /// @inheritdoc INodeStaking
    function tierThresholds() external view returns (uint256[] memory) {
        return _tierThresholds;
    }

    /// @inheritdoc INodeStaking
    function redistributionRecipient() external view returns (address) {
        return _claimsVault.recipient;
    }

    /// @inheritdoc INodeStaking
    function nodeInfo(address node) external view returns (NodeInfo memory) {
        return _nodes[node];
    }

    /// @inheritdoc INodeStaking
    function endpointOf(address node) external view returns (string memory) {
        return _endpoints[node];
    }

    /// @inheritdoc INodeStaking
    function activePool(address node) external view returns (Pool memory) {
        return _active[node];
    }

    /// @inheritdoc INodeStaking
    function unbondingPool(address node) external view returns (Pool memory) {
        return _unbonding[node];
    }

    /// @inheritdoc INodeStaking
    function sharesOf(address node, address staker) external view returns (uint256) {
        return _stakes[node][staker].shares;
    }

    /// @inheritdoc INodeStaking
    function stakeOf(address node, address staker) external view returns (uint256) {
        return _toStake(_stakes[node][staker].shares, _active[node]);
    }

    /// @inheritdoc INodeStaking
    function selfStakeOf(address node) public view returns (uint256) {
        return _toStake(_stakes[node][node].shares, _active[node]);
    }

    /// @inheritdoc INodeStaking
    function lockCount(address node, address staker) external view returns (uint256) {
        return _stakes[node][staker].lockCount;
    }

    /// @inheritdoc INodeStaking
    function unbondingLock(address node, address staker, uint256 lockId) public view returns (UnbondingLock memory) {
        LockRecord memory lock = _locks[node][staker][lockId];
        return UnbondingLock(uint128(_lockShares(lock, _unbondingScale[node])), lock.withdrawableAt);
    }

    /// @inheritdoc INodeStaking
    function lockValue(address node, address staker, uint256 lockId) external view returns (uint256) {
        return _toStake(unbondingLock(node, staker, lockId).shares, _unbonding[node]);
    }

    /// @inheritdoc INodeStaking
    function slashableStake(address node) public view returns (uint256) {
        return uint256(_active[node].stake) + _unbonding[node].stake;
    }

    /// @inheritdoc INodeStaking
    function maxSlashOf(address node) external view returns (uint256) {
        return (slashableStake(node) * _config.maxSlashBps) / MAX_BPS;
    }

    /// @inheritdoc INodeStaking
    function isJailed(address node) external view returns (bool) {
        return _isJailed(_nodes[node]);
    }

    /// @inheritdoc INodeStaking
    function isEligible(address node) public view returns (bool) {
        NodeInfo storage info = _nodes[node];
        return info.registered && !_isJailed(info) && selfStakeOf(node) >= _config.minSelfStake;
    }

    /// @inheritdoc INodeStaking
    function tierOf(address node) external view returns (uint8 tier) {
        if (!isEligible(node)) return 0;
        uint256 activeStake = _active[node].stake;
        uint256[] storage thresholds = _tierThresholds;
        tier = 1;
        for (uint256 i = 0; i < thresholds.length && activeStake >= thresholds[i]; ++i) {
            ++tier;
        }
    }

    /// @inheritdoc INodeStaking
    function slashedOwed() external view returns (uint256 redistribution, uint256 burn) {
        return (_slashed.redistribution - _released.redistribution, _slashed.burn - _released.burn);
    }

    /// @inheritdoc INodeStaking
    function slashedTotal() external view returns (uint256 redistribution, uint256 burn) {
        return (_slashed.redistribution, _slashed.burn);
    }

    /// @inheritdoc INodeStaking
    function earningsReserve() external view returns (uint256) {
        return _claimsVault.earningsReserve;
    }

    /// @inheritdoc INodeStaking
    function evidenceUsed(bytes32 evidenceHash) external view returns (bool) {
        return _evidenceUsed[evidenceHash];
    }
}

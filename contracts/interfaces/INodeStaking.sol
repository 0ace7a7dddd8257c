// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title INodeStaking
/// @notice Stake, delegation, unbonding and slashing of Inframesh inference nodes.
/// @dev A node is identified by its operator's address. Each node has two share pools:
/// the active pool (stake that earns rewards and counts for tiers) and the unbonding pool
/// (stake waiting out the unbonding period, still slashable). Slashes and rewards change a
/// pool's token total, never any staker's share count, so both are O(1) whatever the number
/// of delegators. One exception keeps exits open after extreme slashing: when slashes leave the
/// unbonding pool's shares 256 times below their initial price, every share count of that pool
/// is divided by a power of two (`UnbondingPoolRedenominated`). Every balance can be rebuilt
/// from this interface's events.
interface INodeStaking {
    // ------------------------------------------------------------------ types

    /// @notice Governance-set parameters, changed only through the timelock.
    /// @param minSelfStake Tokens the operator must keep staked on its own node to be eligible.
    /// @param unbondingPeriod Seconds between `unbond` and the earliest `withdraw`.
    /// @param jailPeriod Seconds a slashed node stays jailed unless governance frees it earlier.
    /// @param maxSlashBps Cap of one slash, in basis points of the node's slashable stake (at most 5,000).
    /// @param burnBps Part of every slash that is burned, in basis points; the rest is redistributed.
    struct Parameters {
        uint96 minSelfStake;
        uint32 unbondingPeriod;
        uint32 jailPeriod;
        uint16 maxSlashBps;
        uint16 burnBps;
    }

    /// @notice A node's public record.
    /// @param registered Whether `registerNode` was called for this operator.
    /// @param commissionBps Operator's cut of the node's earnings, in basis points (read by settlement).
    /// @param jailedUntil Timestamp until which the node is jailed (0 when never jailed or freed).
    /// @param hardwareSpecHash Hash of the node's hardware description (CPU, memory, GPUs).
    struct NodeInfo {
        bool registered;
        uint16 commissionBps;
        uint64 jailedUntil;
        /// @dev The operator's earned commission, accrued by `payEarnings`, paid by `withdrawCommission`.
        /// In the same slot as the fields above, which every payment reads anyway.
        uint128 commissionOwed;
        bytes32 hardwareSpecHash;
    }

    /// @notice Token total and share total of one share pool.
    struct Pool {
        uint128 stake;
        uint128 shares;
    }

    /// @notice A pending withdrawal: shares of a node's unbonding pool, withdrawable after a time.
    struct UnbondingLock {
        uint128 shares;
        uint64 withdrawableAt;
    }

    // ------------------------------------------------------------------ events

    /// @notice A node was registered by its operator.
    event NodeRegistered(address indexed node, string endpoint, bytes32 hardwareSpecHash, uint16 commissionBps);

    /// @notice A node's operator changed its endpoint, hardware spec hash or commission.
    event NodeUpdated(address indexed node, string endpoint, bytes32 hardwareSpecHash, uint16 commissionBps);

    /// @notice `staker` added `amount` tokens to `node`'s active pool and received `shares`.
    event Staked(address indexed node, address indexed staker, uint256 amount, uint256 shares);

    /// @notice `staker` moved `amount` tokens (`activeShares` burned) into the unbonding pool
    /// as lock `lockId`, holding `unbondingShares`, withdrawable at `withdrawableAt`.
    event Unbonded(
        address indexed node,
        address indexed staker,
        uint256 indexed lockId,
        uint256 amount,
        uint256 activeShares,
        uint256 unbondingShares,
        uint64 withdrawableAt
    );

    /// @notice `staker` cancelled lock `lockId`: `amount` tokens went back to the active pool as `shares`.
    event Rebonded(
        address indexed node,
        address indexed staker,
        uint256 indexed lockId,
        uint256 amount,
        uint256 unbondingShares,
        uint256 shares
    );

    /// @notice `staker` withdrew lock `lockId`, receiving `amount` tokens.
    event Withdrawn(
        address indexed node,
        address indexed staker,
        uint256 indexed lockId,
        uint256 amount,
        uint256 unbondingShares
    );

    /// @notice `amount` reward tokens were added to `node`'s active pool, compounding for all its stakers.
    event RewardsAdded(address indexed node, address indexed from, uint256 amount);

    /// @notice `from` moved `amount` of settled earnings into the earnings reserve, from which claims are paid.
    event EarningsFunded(address indexed from, uint256 amount);

    /// @notice `amount` of `account`'s earnings left the reserve: `toStakers` into its active pool,
    /// `commissionAccrued` to its operator's withdrawable commission, and the rest
    /// (`amount - toStakers - commissionAccrued`) transferred to `account` (an account that is not a node).
    event EarningsPaid(address indexed account, uint256 amount, uint256 toStakers, uint256 commissionAccrued);

    /// @notice `node`'s operator withdrew `amount` of accrued commission.
    event CommissionWithdrawn(address indexed node, uint256 amount);

    /// @notice `node` was slashed by `amount` (`fromActive` + `fromUnbonding`) for the evidence `evidenceHash`.
    event Slashed(
        address indexed node,
        bytes32 indexed evidenceHash,
        uint256 amount,
        uint256 fromActive,
        uint256 fromUnbonding,
        uint256 burned,
        uint256 redistributed,
        uint64 jailedUntil
    );

    /// @notice Every share count of `node`'s unbonding pool (total and locks) was divided by 2^`bits`;
    /// `scale` is the total number of bits divided so far. Lock share counts in earlier events are
    /// in the denomination of their time.
    event UnbondingPoolRedenominated(address indexed node, uint256 bits, uint64 scale);

    /// @notice Slashed tokens owed to the burn address and the redistribution recipient were paid out.
    event SlashedStakeReleased(address indexed recipient, uint256 redistributed, uint256 burned);

    /// @notice Governance freed a jailed node.
    event NodeUnjailed(address indexed node);

    /// @notice New stake, registrations and rebonds were stopped by `account`.
    event Paused(address account);

    /// @notice Governance (`account`) lifted the pause.
    event Unpaused(address account);

    /// @notice Governance changed the parameters.
    event ParametersSet(Parameters parameters);

    /// @notice Governance changed the tier thresholds (ascending active-stake amounts).
    event TierThresholdsSet(uint256[] thresholds);

    /// @notice Governance changed who receives the redistributed part of slashes.
    event RedistributionRecipientSet(address indexed recipient);

    // ------------------------------------------------------------------ errors

    /// @notice The call is stopped while the contract is paused (unbond and withdraw never are).
    error EnforcedPause();

    /// @notice The contract is not paused.
    error ExpectedPause();

    /// @notice An amount of zero was given where a positive amount is required.
    error ZeroAmount();

    /// @notice The address given as a node has not been registered.
    error UnknownNode(address node);

    /// @notice The operator has already registered its node.
    error NodeAlreadyRegistered(address node);

    /// @notice A commission above 100% was requested.
    error CommissionTooHigh(uint16 commissionBps, uint16 maxBps);

    /// @notice The operator's self-stake would be below the minimum (`have` after the call, `need` required).
    error SelfStakeBelowMinimum(uint256 have, uint256 need);

    /// @notice The staker asked to unbond more than its active stake on the node.
    error InsufficientStake(uint256 have, uint256 need);

    /// @notice No unbonding lock `lockId` exists for this staker on this node (never made, withdrawn or rebonded).
    error LockNotFound(address node, address staker, uint256 lockId);

    /// @notice The lock cannot be withdrawn before `withdrawableAt`.
    error LockNotMatured(uint256 lockId, uint64 withdrawableAt, uint256 nowTimestamp);

    /// @notice The requested slash exceeds the per-incident cap.
    error SlashExceedsCap(uint256 amount, uint256 cap);

    /// @notice This evidence was already used for a slash.
    error EvidenceAlreadyUsed(bytes32 evidenceHash);

    /// @notice The node is not jailed.
    error NodeNotJailed(address node);

    /// @notice A parameter is out of its allowed range.
    error InvalidParameter(string name, uint256 value);

    /// @notice Tier thresholds must be strictly ascending.
    error TierThresholdsNotAscending(uint256 index, uint256 previous, uint256 value);

    /// @notice The zero address was given where an account is required.
    error ZeroAddress(string name);

    /// @notice The amount is too small to buy a single share of the pool at its current price.
    error AmountTooSmall(uint256 amount);

    /// @notice The node's pool was slashed to dust: its share price no longer fits new stake.
    /// Stakers can still unbond and withdraw what is left; the operator should register a new node.
    error PoolDepleted(address node);

    /// @notice Rewards cannot be added to a node whose active pool has no stakers.
    error NoStakers(address node);

    /// @notice Paying `amount` would take more than the `reserve` of funded, unpaid earnings.
    error InsufficientEarningsReserve(uint256 amount, uint256 reserve);

    /// @notice Only the claims contract (the redistribution recipient, `claims`) funds and pays earnings.
    error NotClaimsContract(address caller, address claims);

    /// @notice `node` has no accrued commission to withdraw.
    error NoCommission(address node);

    // ------------------------------------------------------------------ operator

    /// @notice Registers the caller as a node operator. The node id is the caller's address.
    /// @param endpoint URI where the node agent serves inference.
    /// @param hardwareSpecHash Hash of the node's hardware description.
    /// @param commissionBps Operator's commission on the node's earnings, in basis points.
    function registerNode(string calldata endpoint, bytes32 hardwareSpecHash, uint16 commissionBps) external;

    /// @notice Updates the caller's node record.
    /// @param endpoint New inference endpoint URI.
    /// @param hardwareSpecHash New hardware description hash.
    /// @param commissionBps New commission, in basis points.
    function updateNode(string calldata endpoint, bytes32 hardwareSpecHash, uint16 commissionBps) external;

    // ------------------------------------------------------------------ stakers

    /// @notice Stakes `amount` tokens on `node`: self-stake when the caller is the node, delegation otherwise.
    /// @dev An operator's first self-stake must reach the minimum; top-ups may be any size.
    /// Delegation is open to any registered node (check `isEligible`/`tierOf` first). Not while paused.
    /// @param node The node to stake on.
    /// @param amount Tokens to transfer from the caller (approval or permit first).
    /// @return shares Active-pool shares minted to the caller.
    function stake(address node, uint256 amount) external returns (uint256 shares);

    /// @notice Same as `stake`, with an EIP-2612 permit for the transfer in the same transaction.
    /// @param node The node to stake on.
    /// @param amount Tokens to transfer from the caller.
    /// @param deadline Permit deadline.
    /// @param v Permit signature v.
    /// @param r Permit signature r.
    /// @param s Permit signature s.
    /// @return shares Active-pool shares minted to the caller.
    function stakeWithPermit(
        address node,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256 shares);

    /// @notice Moves `amount` of the caller's active stake on `node` into the unbonding pool.
    /// @dev Works while paused and while the node is jailed. The stake stays slashable until withdrawn.
    /// @param node The node to unbond from.
    /// @param amount Tokens to unbond.
    /// @return lockId The caller's lock id on this node, for `rebond` and `withdraw`.
    function unbond(address node, uint256 amount) external returns (uint256 lockId);

    /// @notice Cancels an unbonding lock and returns its (possibly slashed) tokens to the active pool.
    /// @param node The node of the lock.
    /// @param lockId The lock to cancel.
    /// @return shares Active-pool shares minted to the caller.
    function rebond(address node, uint256 lockId) external returns (uint256 shares);

    /// @notice Pays out an unbonding lock once `withdrawableAt` has passed. Works while paused.
    /// @param node The node of the lock.
    /// @param lockId The lock to withdraw.
    /// @return amount Tokens paid to the caller.
    function withdraw(address node, uint256 lockId) external returns (uint256 amount);

    // ------------------------------------------------------------------ protocol roles

    /// @notice Adds `amount` reward tokens to `node`'s active pool so they compound for all its stakers.
    /// @dev Rewarder role only (the settlement contract).
    /// @param node The node whose stakers earn the reward.
    /// @param amount Tokens transferred from the caller.
    function addRewards(address node, uint256 amount) external;

    /// @notice Moves `amount` of settled earnings from the caller into the earnings reserve, once per epoch.
    /// @dev The claims contract only (the redistribution recipient), funding an epoch. Claims then draw
    /// on the reserve with no token transfer: the tokens are already here. The reserve stays with the
    /// claims side if governance names a new recipient.
    /// @param amount Tokens transferred from the caller.
    function fundEarnings(uint256 amount) external;

    /// @notice Pays `amount` earned by `account` out of the earnings reserve. For a registered node, its
    /// commission (`amount * commissionBps / 10_000`, rounded down; everything if the pool has no
    /// stakers) accrues to the operator, withdrawable with `withdrawCommission`, and the rest is added to
    /// the node's active pool, where it compounds for every staker. Any other account (a model
    /// publisher, the treasury) is sent the whole amount.
    /// @dev The claims contract only (the redistribution recipient). A node's payment moves no token:
    /// the reserve, the pool and the node record are updated in place, which keeps a repeat claim cheap.
    /// @param account The account paid (a node's id is its operator's address).
    /// @param amount Tokens earned.
    /// @return toStakers What went into the node's pool.
    /// @return commissionAccrued What accrued to the node's operator.
    function payEarnings(
        address account,
        uint256 amount
    ) external returns (uint256 toStakers, uint256 commissionAccrued);

    /// @notice Pays the caller (a node's operator) all its accrued commission. Works while paused.
    /// @return amount Tokens paid.
    function withdrawCommission() external returns (uint256 amount);

    /// @notice Slashes `node` by `amount`, taken pro rata from its active and unbonding pools, and jails it.
    /// @dev Slasher role only. Capped at `maxSlashBps` of the slashable stake; each evidence hash slashes once.
    /// @param node The node to slash.
    /// @param amount Tokens to take.
    /// @param evidenceHash sha256 of the evidence published to the blob store.
    function slash(address node, uint256 amount, bytes32 evidenceHash) external;

    /// @notice Pays the slashed tokens owed so far to the burn address and the redistribution recipient.
    /// @dev Permissionless: the destinations are fixed by governance.
    function releaseSlashedStake() external;

    /// @notice Frees a jailed node before its jail period ends. Governance only.
    /// @param node The node to free.
    function unjail(address node) external;

    /// @notice Sets the parameters. Governance only.
    /// @param parameters The new parameters.
    function setParameters(Parameters calldata parameters) external;

    /// @notice Sets the tier thresholds: strictly ascending active-stake amounts. Governance only.
    /// @param thresholds The new thresholds.
    function setTierThresholds(uint256[] calldata thresholds) external;

    /// @notice Sets the recipient of redistributed slashes (the settlement contract). Governance only.
    /// @param recipient The new recipient.
    function setRedistributionRecipient(address recipient) external;

    /// @notice Stops new stake, registrations and rebonds. Unbonding and withdrawals keep working. Pauser only.
    function pause() external;

    /// @notice Lifts a pause. Governance only.
    function unpause() external;

    // ------------------------------------------------------------------ views

    /// @notice Whether new stake, registrations and rebonds are stopped.
    function paused() external view returns (bool);

    /// @notice The current parameters.
    function parameters() external view returns (Parameters memory);

    /// @notice The tier thresholds.
    function tierThresholds() external view returns (uint256[] memory);

    /// @notice The recipient of redistributed slashes.
    function redistributionRecipient() external view returns (address);

    /// @notice A node's record.
    function nodeInfo(address node) external view returns (NodeInfo memory);

    /// @notice A node's endpoint URI.
    function endpointOf(address node) external view returns (string memory);

    /// @notice A node's active pool.
    function activePool(address node) external view returns (Pool memory);

    /// @notice A node's unbonding pool.
    function unbondingPool(address node) external view returns (Pool memory);

    /// @notice `staker`'s active-pool shares on `node`.
    function sharesOf(address node, address staker) external view returns (uint256);

    /// @notice `staker`'s active stake on `node`, in tokens.
    function stakeOf(address node, address staker) external view returns (uint256);

    /// @notice The operator's own active stake on its node, in tokens.
    function selfStakeOf(address node) external view returns (uint256);

    /// @notice Number of unbonding locks `staker` has created on `node` (lock ids are 0 .. count-1).
    function lockCount(address node, address staker) external view returns (uint256);

    /// @notice An unbonding lock (zero shares when it does not exist or was used), its shares
    /// counted in the unbonding pool's current denomination.
    function unbondingLock(address node, address staker, uint256 lockId) external view returns (UnbondingLock memory);

    /// @notice Tokens an unbonding lock is worth now (slashes included).
    function lockValue(address node, address staker, uint256 lockId) external view returns (uint256);

    /// @notice Active plus unbonding stake of a node: what a slash can reach.
    function slashableStake(address node) external view returns (uint256);

    /// @notice The largest slash allowed now on `node`.
    function maxSlashOf(address node) external view returns (uint256);

    /// @notice Whether the node is jailed now.
    function isJailed(address node) external view returns (bool);

    /// @notice Whether the node may serve: registered, not jailed, self-stake at or above the minimum.
    function isEligible(address node) external view returns (bool);

    /// @notice The node's tier: 0 when not eligible, else 1 + the number of thresholds its active stake reaches.
    function tierOf(address node) external view returns (uint8);

    /// @notice Slashed tokens not yet released: `redistribution` to the recipient and `burn` to the burn address.
    function slashedOwed() external view returns (uint256 redistribution, uint256 burn);

    /// @notice Slashed tokens since deployment: `redistribution` (to the recipient) and `burn`, released or not.
    function slashedTotal() external view returns (uint256 redistribution, uint256 burn);

    /// @notice Funded earnings not yet paid out (see `fundEarnings` and `payEarnings`).
    function earningsReserve() external view returns (uint256);

    /// @notice Whether an evidence hash was already used for a slash.
    function evidenceUsed(bytes32 evidenceHash) external view returns (bool);
}

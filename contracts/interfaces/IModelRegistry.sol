// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IModelRegistry
/// @notice Models, their publishers, their published versions and the version each model serves.
/// @dev A model is a numeric id (from 1) with a unique name and one publisher. A version is an
/// immutable record, numbered from 0 per model: the sha256 of its `model.yaml` descriptor, the
/// sha256 of its shard manifest (the blob the loader fetches), the Merkle root of its shard
/// hashes, its price per call, an optional zk verifier and its access policy. `setMatureModel`
/// points a model at the version it serves; older versions stay readable. Every change emits
/// an event, so the whole history can be rebuilt from logs.
interface IModelRegistry {
    // ------------------------------------------------------------------ types

    /// @notice Who may call a version.
    /// @dev `Public`: anyone. `Allowlist`: accounts the publisher put on the model's allowlist.
    /// `ERC20Holders` / `ERC721Holders`: accounts whose `balanceOf` on `token` is at least
    /// `threshold`. The registry stores the policy; the gateway enforces it.
    enum AccessKind {
        Public,
        Allowlist,
        ERC20Holders,
        ERC721Holders
    }

    /// @notice A version's access policy. `token` and `threshold` are zero unless the kind is a holder kind.
    struct AccessPolicy {
        AccessKind kind;
        address token;
        uint256 threshold;
    }

    /// @notice What a publisher gives to publish a version.
    /// @param version The version string (1..MAX_VERSION_LENGTH bytes, unique per model), e.g. "1.2.0".
    /// @param descriptorHash sha256 of the version's `model.yaml` bytes.
    /// @param manifestHash sha256 of the manifest JSON bytes, as 64 lowercase hex characters (no "0x").
    /// @param shardRoot Merkle root of the shard hashes (see `verifyShard`).
    /// @param shardCount Number of shards (leaves) under `shardRoot`.
    /// @param price Price per call, in the payment token's smallest unit.
    /// @param zkVerifier Verifier contract for zkML proofs of this version, or zero when none is required.
    /// @param verifyingKeyHash Hash of the verifying key; zero exactly when `zkVerifier` is zero.
    /// @param access Who may call the version.
    struct VersionInput {
        string version;
        bytes32 descriptorHash;
        string manifestHash;
        bytes32 shardRoot;
        uint32 shardCount;
        uint96 price;
        address zkVerifier;
        bytes32 verifyingKeyHash;
        AccessPolicy access;
    }

    /// @notice A published version as stored.
    /// @dev `manifestHash` holds the same 32 bytes as the hex string given at publication.
    /// `price` is the one set at publication or by the latest `setMatureModel` naming this version.
    struct Version {
        string version;
        bytes32 descriptorHash;
        bytes32 manifestHash;
        bytes32 shardRoot;
        uint32 shardCount;
        uint96 price;
        address zkVerifier;
        bytes32 verifyingKeyHash;
        AccessPolicy access;
    }

    /// @notice A model's public record.
    /// @param name The model's unique name.
    /// @param publisher Account allowed to publish versions, set the serving version and manage the allowlist.
    /// @param hasServingVersion Whether `setMatureModel` was ever called.
    /// @param pendingPublisher Account that may accept the publisher role (zero when no transfer is pending).
    /// @param versionCount Number of published versions (version numbers are 0 .. versionCount-1).
    /// @param servingVersion The version the model serves (meaningful only when `hasServingVersion`).
    struct ModelInfo {
        string name;
        address publisher;
        bool hasServingVersion;
        address pendingPublisher;
        uint256 versionCount;
        uint256 servingVersion;
    }

    // ------------------------------------------------------------------ events

    /// @notice `publisher` registered model `modelId` under `name`.
    event ModelRegistered(uint256 indexed modelId, address indexed publisher, string name);

    /// @notice The current publisher offered the publisher role of `modelId` to `newPublisher`
    /// (zero cancels a pending offer).
    event PublisherTransferStarted(uint256 indexed modelId, address indexed publisher, address indexed newPublisher);

    /// @notice The publisher role of `modelId` passed from `previousPublisher` to `newPublisher`.
    event PublisherTransferred(
        uint256 indexed modelId,
        address indexed previousPublisher,
        address indexed newPublisher
    );

    /// @notice Version `version` of `modelId` was published, with manifest `manifestHash`.
    event VersionPublished(
        uint256 indexed modelId,
        uint256 indexed version,
        bytes32 indexed manifestHash,
        VersionInput input
    );

    /// @notice `modelId` now serves `version` (manifest `manifestHash`) at `price` per call.
    event MatureModelSet(uint256 indexed modelId, uint256 indexed version, bytes32 indexed manifestHash, uint256 price);

    /// @notice The price per call of `version` of `modelId` changed from `previousPrice` to `price`.
    event VersionPriceSet(uint256 indexed modelId, uint256 indexed version, uint256 previousPrice, uint256 price);

    /// @notice The publisher added `account` to (`allowed`) or removed it from the allowlist of `modelId`.
    event AllowlistSet(uint256 indexed modelId, address indexed account, bool allowed);

    // ------------------------------------------------------------------ errors

    /// @notice No model has id `modelId`.
    error UnknownModel(uint256 modelId);

    /// @notice Model `modelId` has no version `version` (it has `versionCount`).
    error UnknownVersion(uint256 modelId, uint256 version, uint256 versionCount);

    /// @notice Model `modelId` has no version whose manifest is `manifestHash`.
    error UnknownManifest(uint256 modelId, string manifestHash);

    /// @notice `caller` is not the publisher (`publisher`) of `modelId`.
    error NotPublisher(uint256 modelId, address caller, address publisher);

    /// @notice `caller` is not the pending publisher (`pendingPublisher`) of `modelId`.
    error NotPendingPublisher(uint256 modelId, address caller, address pendingPublisher);

    /// @notice A model name must not be empty.
    error EmptyName();

    /// @notice The name is `length` bytes long; at most `maxLength` are allowed.
    error NameTooLong(uint256 length, uint256 maxLength);

    /// @notice Model `modelId` already uses `name`.
    error NameTaken(string name, uint256 modelId);

    /// @notice A version string must not be empty.
    error EmptyVersion();

    /// @notice The version string is `length` bytes long; at most `maxLength` are allowed.
    error VersionTooLong(uint256 length, uint256 maxLength);

    /// @notice Model `modelId` already has a version named `versionString` (number `version`).
    error VersionTaken(uint256 modelId, string versionString, uint256 version);

    /// @notice Model `modelId` already has a version (number `version`) with manifest `manifestHash`.
    error ManifestTaken(uint256 modelId, string manifestHash, uint256 version);

    /// @notice The manifest hash is not 64 lowercase hex characters.
    error InvalidManifestHash(string manifestHash);

    /// @notice A zero hash was given for `field`, which must be a real hash.
    error ZeroHash(string field);

    /// @notice The shard count is zero or above `maxShardCount`.
    error InvalidShardCount(uint256 shardCount, uint256 maxShardCount);

    /// @notice The price is above `maxPrice` (it is stored in 96 bits).
    error PriceTooHigh(uint256 price, uint256 maxPrice);

    /// @notice `zkVerifier` and `verifyingKeyHash` must both be set or both be zero.
    error InvalidZkVerifier(address zkVerifier, bytes32 verifyingKeyHash);

    /// @notice The access policy is inconsistent: holder kinds need a token and a positive
    /// threshold, other kinds need both to be zero.
    error InvalidAccessPolicy(AccessKind kind, address token, uint256 threshold);

    /// @notice The zero address was given where an account is required.
    error ZeroAddress();

    /// @notice Shard `index` does not exist: the version has `shardCount` shards.
    error ShardIndexOutOfRange(uint256 index, uint256 shardCount);

    // ------------------------------------------------------------------ publisher

    /// @notice Registers a model named `name`; the caller becomes its publisher.
    /// @param name Unique name, 1..MAX_NAME_LENGTH bytes.
    /// @return modelId The new model's id (ids count from 1).
    function registerModel(string calldata name) external returns (uint256 modelId);

    /// @notice Offers the publisher role of `modelId` to `newPublisher`, who must accept it. Publisher only.
    /// @dev Passing the zero address cancels a pending offer.
    /// @param modelId The model.
    /// @param newPublisher The account that may accept.
    function transferPublisher(uint256 modelId, address newPublisher) external;

    /// @notice Accepts the publisher role of `modelId` offered to the caller.
    /// @param modelId The model.
    function acceptPublisher(uint256 modelId) external;

    /// @notice Publishes a new version of `modelId`. Publisher only. It does not serve until `setMatureModel`.
    /// @param modelId The model.
    /// @param input The version's record.
    /// @return version The new version's number (versions count from 0 per model).
    function publishVersion(uint256 modelId, VersionInput calldata input) external returns (uint256 version);

    /// @notice Points `modelId` at the published version whose manifest is `manifestHash` and sets
    /// that version's price per call. Publisher only.
    /// @dev The pointer names a manifest blob (the shard manifest), not a weights blob.
    /// @param modelId The model.
    /// @param manifestHash sha256 of the manifest JSON, 64 lowercase hex characters.
    /// @param price Price per call, in the payment token's smallest unit.
    /// @return version The version now serving.
    function setMatureModel(
        uint256 modelId,
        string calldata manifestHash,
        uint256 price
    ) external returns (uint256 version);

    /// @notice Adds accounts to (`allowed`) or removes them from the allowlist of `modelId`. Publisher only.
    /// @param modelId The model.
    /// @param accounts The accounts.
    /// @param allowed Whether they may call versions whose policy is `Allowlist`.
    function setAllowlisted(uint256 modelId, address[] calldata accounts, bool allowed) external;

    // ------------------------------------------------------------------ views

    /// @notice Number of registered models (ids are 1 .. modelCount).
    function modelCount() external view returns (uint256);

    /// @notice The id of the model named `name`, or 0 when there is none.
    function modelIdOf(string calldata name) external view returns (uint256);

    /// @notice A model's record.
    function modelInfo(uint256 modelId) external view returns (ModelInfo memory);

    /// @notice A model's publisher.
    function publisherOf(uint256 modelId) external view returns (address);

    /// @notice A published version.
    function versionInfo(uint256 modelId, uint256 version) external view returns (Version memory);

    /// @notice The number of the version of `modelId` whose manifest is `manifestHash`; reverts when none.
    function versionOfManifest(uint256 modelId, string calldata manifestHash) external view returns (uint256);

    /// @notice The version `modelId` serves and its record; `found` is false (and the rest empty) when
    /// `setMatureModel` was never called.
    function servingVersion(uint256 modelId) external view returns (bool found, uint256 version, Version memory record);

    /// @notice Whether `account` is on the allowlist of `modelId`.
    function isAllowlisted(uint256 modelId, address account) external view returns (bool);

    /// @notice Whether `shardHash` is shard `index` of `version` of `modelId`, given its Merkle `proof`.
    /// @dev Reverts for an unknown model or version and for an index at or above the shard count;
    /// returns false for a wrong hash or proof. Hashing: see `ShardMerkle`.
    /// @param modelId The model.
    /// @param version The version number.
    /// @param index The shard's index in the manifest.
    /// @param shardHash sha256 of the shard's bytes.
    /// @param proof Sibling hashes from the leaf's level upwards, skipping levels where the node has no sibling.
    function verifyShard(
        uint256 modelId,
        uint256 version,
        uint256 index,
        bytes32 shardHash,
        bytes32[] calldata proof
    ) external view returns (bool);
}

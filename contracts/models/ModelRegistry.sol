// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IModelRegistry} from "../interfaces/IModelRegistry.sol";
import {ShardMerkle} from "./ShardMerkle.sol";

/// @title ModelRegistry
/// @notice Registers models, publishes their versions (descriptor, shard manifest, shard Merkle
/// root, price, zk verifier, access policy) and points each model at the version it serves.
/// @dev Permissionless: anyone may register a model and becomes its publisher; each model's
/// publisher alone changes it. Versions are never edited except for their price, which moves
/// only through `setMatureModel` and always with an event.
contract ModelRegistry is IModelRegistry {
    using SafeCast for uint256;

    // ------------------------------------------------------------------ constants

    /// @notice Longest model name, in bytes.
    uint256 public constant MAX_NAME_LENGTH = 64;
    /// @notice Longest version string, in bytes.
    uint256 public constant MAX_VERSION_LENGTH = 64;
    /// @notice Most shards one version may have (keeps shard proofs at most 20 hashes long).
    uint256 public constant MAX_SHARD_COUNT = 1 << 20;
    /// @notice Highest price per call (prices are stored in 96 bits).
    uint256 public constant MAX_PRICE = type(uint96).max;
    /// @notice Length of a manifest hash string: a sha256 in lowercase hex, without "0x".
    uint256 public constant MANIFEST_HASH_LENGTH = 64;

    // ------------------------------------------------------------------ storage

    /// @dev One slot. `servingVersionPlusOne` is 0 until the first `setMatureModel`.
    struct Model {
        address publisher;
        uint32 versionCount;
        uint32 servingVersionPlusOne;
    }

    /// @dev `price` with `zkVerifier`, and `shardCount` with the policy's kind and token, share a
    /// slot each; `verifyShard` reads only `shardRoot` and the `shardCount` slot.
    struct StoredVersion {
        bytes32 descriptorHash;
        bytes32 manifestHash;
        bytes32 shardRoot;
        uint96 price;
        address zkVerifier;
        uint32 shardCount;
        AccessKind accessKind;
        address accessToken;
        uint256 accessThreshold;
        bytes32 verifyingKeyHash;
        string version;
    }

    uint256 private _modelCount;

    mapping(uint256 modelId => Model) private _models;
    mapping(uint256 modelId => string) private _names;
    mapping(uint256 modelId => address) private _pendingPublishers;
    mapping(bytes32 nameHash => uint256 modelId) private _modelIdByName;
    mapping(uint256 modelId => mapping(uint256 version => StoredVersion)) private _versions;
    /// @dev Keyed by keccak256 of the manifest hash string; values are version + 1 (0: none).
    mapping(uint256 modelId => mapping(bytes32 manifestKey => uint256 versionPlusOne)) private _versionByManifest;
    /// @dev Keyed by keccak256 of the version string; values are version + 1 (0: none).
    mapping(uint256 modelId => mapping(bytes32 versionKey => uint256 versionPlusOne)) private _versionByName;
    mapping(uint256 modelId => mapping(address account => bool)) private _allowlist;

    // ------------------------------------------------------------------ modifiers

    modifier onlyPublisher(uint256 modelId) {
        _checkPublisher(modelId);
        _;
    }

    // ------------------------------------------------------------------ internal

    function _checkPublisher(uint256 modelId) internal view {
        address publisher = _models[modelId].publisher;
        if (publisher == address(0)) revert UnknownModel(modelId);
        if (publisher != msg.sender) revert NotPublisher(modelId, msg.sender, publisher);
    }

    function _checkName(string calldata name) internal view {
        uint256 length = bytes(name).length;
        if (length == 0) revert EmptyName();
        if (length > MAX_NAME_LENGTH) revert NameTooLong(length, MAX_NAME_LENGTH);
        uint256 existing = _modelIdByName[keccak256(bytes(name))];
        if (existing != 0) revert NameTaken(name, existing);
    }

    function _checkVersionInput(uint256 modelId, VersionInput calldata input) internal view {
        uint256 length = bytes(input.version).length;
        if (length == 0) revert EmptyVersion();
        if (length > MAX_VERSION_LENGTH) revert VersionTooLong(length, MAX_VERSION_LENGTH);
        uint256 taken = _versionByName[modelId][keccak256(bytes(input.version))];
        if (taken != 0) revert VersionTaken(modelId, input.version, taken - 1);
        taken = _versionByManifest[modelId][keccak256(bytes(input.manifestHash))];
        if (taken != 0) revert ManifestTaken(modelId, input.manifestHash, taken - 1);
        if (input.descriptorHash == bytes32(0)) revert ZeroHash("descriptorHash");
        if (input.shardRoot == bytes32(0)) revert ZeroHash("shardRoot");
        if (input.shardCount == 0 || input.shardCount > MAX_SHARD_COUNT) {
            revert InvalidShardCount(input.shardCount, MAX_SHARD_COUNT);
        }
        if ((input.zkVerifier == address(0)) != (input.verifyingKeyHash == bytes32(0))) {
            revert InvalidZkVerifier(input.zkVerifier, input.verifyingKeyHash);
        }
        AccessPolicy calldata access = input.access;
        bool holders = access.kind == AccessKind.ERC20Holders || access.kind == AccessKind.ERC721Holders;
        bool consistent =
            holders
                ? access.token != address(0) && access.threshold > 0
                : access.token == address(0) && access.threshold == 0;
        if (!consistent) revert InvalidAccessPolicy(access.kind, access.token, access.threshold);
    }

    /// @dev Parses a sha256 written as 64 lowercase hex characters; reverts on anything else.
    function _parseManifestHash(string calldata manifestHash) internal pure returns (bytes32 value) {
        bytes calldata text = bytes(manifestHash);
        if (text.length != MANIFEST_HASH_LENGTH) revert InvalidManifestHash(manifestHash);
        uint256 result = 0;
        for (uint256 i = 0; i < MANIFEST_HASH_LENGTH; ++i) {
            uint8 c = uint8(text[i]);
            uint256 nibble;
            if (c >= 0x30 && c <= 0x39) {
                nibble = c - 0x30; // '0'..'9'
            } else if (c >= 0x61 && c <= 0x66) {
                nibble = c - 0x57; // 'a'..'f' -> 10..15
            } else {
                revert InvalidManifestHash(manifestHash);
            }
            result = (result << 4) | nibble;
        }
        return bytes32(result);
    }

    function _storedVersion(uint256 modelId, uint256 version) internal view returns (StoredVersion storage stored) {
        stored = _versions[modelId][version];
        // Every published version has a non-zero shard root, so an empty one means "not published".
        if (stored.shardRoot == bytes32(0)) _revertUnknownVersion(modelId, version);
    }

    function _revertUnknownVersion(uint256 modelId, uint256 version) internal view {
        Model memory model = _models[modelId];
        if (model.publisher == address(0)) revert UnknownModel(modelId);
        revert UnknownVersion(modelId, version, model.versionCount);
    }

    function _toVersion(StoredVersion storage stored) internal view returns (Version memory) {
        return
            Version({
                version: stored.version,
                descriptorHash: stored.descriptorHash,
                manifestHash: stored.manifestHash,
                shardRoot: stored.shardRoot,
                shardCount: stored.shardCount,
                price: stored.price,
                zkVerifier: stored.zkVerifier,
                verifyingKeyHash: stored.verifyingKeyHash,
                access: AccessPolicy(stored.accessKind, stored.accessToken, stored.accessThreshold)
            });
    }

    // ------------------------------------------------------------------ external: publisher

    /// @inheritdoc IModelRegistry
    function registerModel(string calldata name) external returns (uint256 modelId) {
        _checkName(name);
        modelId = ++_modelCount;
        _models[modelId].publisher = msg.sender;
        _names[modelId] = name;
        _modelIdByName[keccak256(bytes(name))] = modelId;
        emit ModelRegistered(modelId, msg.sender, name);
    }

    /// @inheritdoc IModelRegistry
    function transferPublisher(uint256 modelId, address newPublisher) external onlyPublisher(modelId) {
        _pendingPublishers[modelId] = newPublisher;
        emit PublisherTransferStarted(modelId, msg.sender, newPublisher);
    }

    /// @inheritdoc IModelRegistry
    function acceptPublisher(uint256 modelId) external {
        Model storage model = _models[modelId];
        address previous = model.publisher;
        if (previous == address(0)) revert UnknownModel(modelId);
        address pending = _pendingPublishers[modelId];
        if (pending != msg.sender) revert NotPendingPublisher(modelId, msg.sender, pending);
        delete _pendingPublishers[modelId];
        model.publisher = msg.sender;
        emit PublisherTransferred(modelId, previous, msg.sender);
    }

    /// @inheritdoc IModelRegistry
    function publishVersion(
        uint256 modelId,
        VersionInput calldata input
    ) external onlyPublisher(modelId) returns (uint256 version) {
        _checkVersionInput(modelId, input);
        bytes32 manifestHash = _parseManifestHash(input.manifestHash);

        Model storage model = _models[modelId];
        version = model.versionCount;
        model.versionCount = (version + 1).toUint32();
        _versionByName[modelId][keccak256(bytes(input.version))] = version + 1;
        _versionByManifest[modelId][keccak256(bytes(input.manifestHash))] = version + 1;

        StoredVersion storage stored = _versions[modelId][version];
        stored.descriptorHash = input.descriptorHash;
        stored.manifestHash = manifestHash;
        stored.shardRoot = input.shardRoot;
        stored.price = input.price;
        stored.zkVerifier = input.zkVerifier;
        stored.shardCount = input.shardCount;
        stored.accessKind = input.access.kind;
        stored.accessToken = input.access.token;
        stored.accessThreshold = input.access.threshold;
        stored.verifyingKeyHash = input.verifyingKeyHash;
        stored.version = input.version;
        emit VersionPublished(modelId, version, manifestHash, input);
    }

    /// @inheritdoc IModelRegistry
    function setMatureModel(
        uint256 modelId,
        string calldata manifestHash,
        uint256 price
    ) external onlyPublisher(modelId) returns (uint256 version) {
        if (price > MAX_PRICE) revert PriceTooHigh(price, MAX_PRICE);
        uint256 versionPlusOne = _versionByManifest[modelId][keccak256(bytes(manifestHash))];
        if (versionPlusOne == 0) revert UnknownManifest(modelId, manifestHash);
        version = versionPlusOne - 1;

        StoredVersion storage stored = _versions[modelId][version];
        uint256 previousPrice = stored.price;
        if (previousPrice != price) {
            stored.price = uint96(price);
            emit VersionPriceSet(modelId, version, previousPrice, price);
        }
        // Fits: `publishVersion` counts versions in 32 bits, so every stored version + 1 does.
        _models[modelId].servingVersionPlusOne = uint32(versionPlusOne);
        emit MatureModelSet(modelId, version, stored.manifestHash, price);
    }

    /// @inheritdoc IModelRegistry
    function setAllowlisted(
        uint256 modelId,
        address[] calldata accounts,
        bool allowed
    ) external onlyPublisher(modelId) {
        mapping(address account => bool) storage allowlist = _allowlist[modelId];
        for (uint256 i = 0; i < accounts.length; ++i) {
            address account = accounts[i];
            if (account == address(0)) revert ZeroAddress();
            allowlist[account] = allowed;
            emit AllowlistSet(modelId, account, allowed);
        }
    }

    // ------------------------------------------------------------------ external: views

    /// @inheritdoc IModelRegistry
    function modelCount() external view returns (uint256) {
        return _modelCount;
    }

    /// @inheritdoc IModelRegistry
    function modelIdOf(string calldata name) external view returns (uint256) {
        return _modelIdByName[keccak256(bytes(name))];
    }

    /// @inheritdoc IModelRegistry
    function modelInfo(uint256 modelId) external view returns (ModelInfo memory) {
        Model memory model = _models[modelId];
        if (model.publisher == address(0)) revert UnknownModel(modelId);
        bool hasServing = model.servingVersionPlusOne != 0;
        return
            ModelInfo({
                name: _names[modelId],
                publisher: model.publisher,
                pendingPublisher: _pendingPublishers[modelId],
                versionCount: model.versionCount,
                hasServingVersion: hasServing,
                servingVersion: hasServing ? model.servingVersionPlusOne - 1 : 0
            });
    }

    /// @inheritdoc IModelRegistry
    function publisherOf(uint256 modelId) external view returns (address publisher) {
        publisher = _models[modelId].publisher;
        if (publisher == address(0)) revert UnknownModel(modelId);
    }

    /// @inheritdoc IModelRegistry
    function versionInfo(uint256 modelId, uint256 version) external view returns (Version memory) {
        return _toVersion(_storedVersion(modelId, version));
    }

    /// @inheritdoc IModelRegistry
    function versionOfManifest(uint256 modelId, string calldata manifestHash) external view returns (uint256) {
        if (_models[modelId].publisher == address(0)) revert UnknownModel(modelId);
        uint256 versionPlusOne = _versionByManifest[modelId][keccak256(bytes(manifestHash))];
        if (versionPlusOne == 0) revert UnknownManifest(modelId, manifestHash);
        return versionPlusOne - 1;
    }

    /// @inheritdoc IModelRegistry
    function servingVersion(
        uint256 modelId
    ) external view returns (bool found, uint256 version, Version memory record) {
        Model memory model = _models[modelId];
        if (model.publisher == address(0)) revert UnknownModel(modelId);
        if (model.servingVersionPlusOne == 0) return (false, 0, record);
        version = model.servingVersionPlusOne - 1;
        return (true, version, _toVersion(_versions[modelId][version]));
    }

    /// @inheritdoc IModelRegistry
    function isAllowlisted(uint256 modelId, address account) external view returns (bool) {
        return _allowlist[modelId][account];
    }

    /// @inheritdoc IModelRegistry
    function verifyShard(
        uint256 modelId,
        uint256 version,
        uint256 index,
        bytes32 shardHash,
        bytes32[] calldata proof
    ) external view returns (bool) {
        StoredVersion storage stored = _storedVersion(modelId, version);
        uint256 shardCount = stored.shardCount;
        if (index >= shardCount) revert ShardIndexOutOfRange(index, shardCount);
        return ShardMerkle.verify(stored.shardRoot, shardCount, index, shardHash, proof);
    }
}

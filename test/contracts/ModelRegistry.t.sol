// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IModelRegistry} from "../../contracts/interfaces/IModelRegistry.sol";
import {ModelRegistry} from "../../contracts/models/ModelRegistry.sol";
import {ShardMerkle} from "../../contracts/models/ShardMerkle.sol";
import {ShardMerkleVectors} from "./generated/ShardMerkleVectors.sol";
import {ModelTestBase} from "./utils/ModelTestBase.sol";

/// @notice Checks the Solidity shard Merkle tree against the shared vectors (the same file the
/// TypeScript tests check), through both the library and the registry's `verifyShard`.
contract ModelRegistryTest is ModelTestBase {
    bytes16 private constant HEX_DIGITS = "0123456789abcdef";

    ModelRegistry private registry;
    uint256 private modelId;

    function setUp() public {
        registry = new ModelRegistry();
        modelId = registry.registerModel("vector-model");
    }

    function _case(uint256 i) private pure returns (bytes32[] memory hashes, bytes32 root, bytes32[][] memory proofs) {
        return abi.decode(ShardMerkleVectors.encodedCase(i), (bytes32[], bytes32, bytes32[][]));
    }

    function _hex(bytes32 value) private pure returns (string memory) {
        bytes memory text = new bytes(64);
        for (uint256 i = 0; i < 32; ++i) {
            text[2 * i] = HEX_DIGITS[uint8(value[i]) >> 4];
            text[2 * i + 1] = HEX_DIGITS[uint8(value[i]) & 0x0f];
        }
        return string(text);
    }

    function _publish(bytes32 root, uint256 count, bytes32 manifest) private returns (uint256) {
        IModelRegistry.VersionInput memory input = IModelRegistry.VersionInput({
            version: _hex(manifest),
            descriptorHash: sha256("model.yaml"),
            manifestHash: _hex(manifest),
            shardRoot: root,
            shardCount: uint32(count),
            price: 1,
            zkVerifier: address(0),
            verifyingKeyHash: bytes32(0),
            access: IModelRegistry.AccessPolicy(IModelRegistry.AccessKind.Public, address(0), 0)
        });
        return registry.publishVersion(modelId, input);
    }

    function test_vectorRootsMatchLibrary() public pure {
        for (uint256 i = 0; i < ShardMerkleVectors.CASE_COUNT; ++i) {
            (bytes32[] memory hashes, bytes32 root, ) = _case(i);
            assertEq(ShardMerkle.rootOf(hashes), root, "root of vector case");
        }
    }

    function test_vectorProofsVerifyOnRegistry() public {
        for (uint256 i = 0; i < ShardMerkleVectors.CASE_COUNT; ++i) {
            (bytes32[] memory hashes, bytes32 root, bytes32[][] memory proofs) = _case(i);
            uint256 version = _publish(root, hashes.length, keccak256(abi.encode(i)));
            for (uint256 index = 0; index < hashes.length; ++index) {
                assertTrue(registry.verifyShard(modelId, version, index, hashes[index], proofs[index]), "proof");
                bytes32 wrong = hashes[index] ^ bytes32(uint256(1));
                assertFalse(registry.verifyShard(modelId, version, index, wrong, proofs[index]), "wrong hash");
                if (hashes.length > 1) {
                    // The same leaf claimed at another position must fail.
                    uint256 other = (index + 1) % hashes.length;
                    assertFalse(registry.verifyShard(modelId, version, other, hashes[index], proofs[index]), "moved");
                }
            }
        }
    }

    function test_proofWithExtraOrMissingSiblingFails() public {
        (bytes32[] memory hashes, bytes32 root, bytes32[][] memory proofs) = _case(13); // 14 shards
        uint256 version = _publish(root, hashes.length, bytes32(uint256(14)));
        bytes32[] memory proof = proofs[5];
        bytes32[] memory longer = new bytes32[](proof.length + 1);
        bytes32[] memory shorter = new bytes32[](proof.length - 1);
        for (uint256 i = 0; i < proof.length; ++i) {
            longer[i] = proof[i];
            if (i < shorter.length) shorter[i] = proof[i];
        }
        assertFalse(registry.verifyShard(modelId, version, 5, hashes[5], longer), "extra sibling");
        assertFalse(registry.verifyShard(modelId, version, 5, hashes[5], shorter), "missing sibling");
    }

    function test_indexOutOfRangeReverts() public {
        (bytes32[] memory hashes, bytes32 root, bytes32[][] memory proofs) = _case(13);
        uint256 version = _publish(root, hashes.length, bytes32(uint256(14)));
        VM.expectRevert(abi.encodeWithSelector(IModelRegistry.ShardIndexOutOfRange.selector, 14, 14));
        registry.verifyShard(modelId, version, 14, hashes[0], proofs[0]);
    }

    /// @notice A leaf hash can never pass as an inner node: the two domains differ.
    function testFuzz_leafAndNodeDomainsDiffer(bytes32 left, bytes32 right) public pure {
        bytes32 node = ShardMerkle.nodeHash(left, right);
        assertTrue(ShardMerkle.leafHash(node) != node, "domains");
        assertTrue(ShardMerkle.leafHash(left) != ShardMerkle.nodeHash(left, right), "leaf vs node");
    }

    /// @notice Any sha256 written in lowercase hex publishes and reads back as the same 32 bytes.
    function testFuzz_manifestHashRoundTrip(bytes32 manifest) public {
        uint256 version = _publish(bytes32(uint256(1)), 1, manifest);
        assertEq(registry.versionInfo(modelId, version).manifestHash, manifest, "manifest hash");
        assertEq(registry.versionOfManifest(modelId, _hex(manifest)), version, "lookup");
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ShardMerkle
/// @notice The Merkle tree over a manifest's shard hashes, with sha256 and domain separation.
/// @dev The tree is RFC 6962's Merkle Tree Hash (as in Certificate Transparency) over the 32-byte
/// shard hashes in index order:
///   leaf  = sha256(0x00 || shardHash)
///   node  = sha256(0x01 || left || right)
/// Built bottom-up, a level with an odd number of nodes promotes its last node unchanged to the
/// next level (it is never duplicated, so no two shard lists share a root the way Bitcoin's
/// duplicated-last-node trees do). A proof lists the sibling of each level from the leaf
/// upwards, skipping the levels where the node was promoted; the verifier needs the shard count
/// to know which levels those are. The TypeScript twin is `sdk/manifest/merkle.ts`; the shared
/// vectors in `test/vectors/shard-merkle.json` hold both to the same roots.
library ShardMerkle {
    /// @dev Domain prefix of leaf hashes.
    bytes1 internal constant LEAF_PREFIX = 0x00;
    /// @dev Domain prefix of inner-node hashes.
    bytes1 internal constant NODE_PREFIX = 0x01;

    /// @notice The leaf hash of a shard hash.
    function leafHash(bytes32 shardHash) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(LEAF_PREFIX, shardHash));
    }

    /// @notice The hash of an inner node from its two children.
    function nodeHash(bytes32 left, bytes32 right) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(NODE_PREFIX, left, right));
    }

    /// @notice The root of the tree implied by `proof` for shard `index` of `count` with hash `shardHash`.
    /// @dev `ok` is false when the proof has too few or too many siblings for the position, or when
    /// `index` is not below `count`.
    function computeRoot(
        uint256 count,
        uint256 index,
        bytes32 shardHash,
        bytes32[] calldata proof
    ) internal pure returns (bool ok, bytes32 root) {
        if (index >= count) return (false, bytes32(0));
        root = leafHash(shardHash);
        uint256 used = 0;
        uint256 width = count;
        while (width > 1) {
            bool isRight = index & 1 == 1;
            // A left node at the end of an odd level has no sibling: it is promoted unchanged.
            if (isRight || index + 1 < width) {
                if (used == proof.length) return (false, bytes32(0));
                bytes32 sibling = proof[used];
                ++used;
                root = isRight ? nodeHash(sibling, root) : nodeHash(root, sibling);
            }
            index >>= 1;
            width = (width + 1) >> 1;
        }
        return (used == proof.length, root);
    }

    /// @notice Whether `proof` shows that `shardHash` is leaf `index` of the `count`-leaf tree with root `root`.
    function verify(
        bytes32 root,
        uint256 count,
        uint256 index,
        bytes32 shardHash,
        bytes32[] calldata proof
    ) internal pure returns (bool) {
        (bool ok, bytes32 computed) = computeRoot(count, index, shardHash, proof);
        return ok && computed == root;
    }

    /// @notice The root of the tree over `shardHashes` (which must not be empty).
    /// @dev For tests, tools and small lists: it hashes in memory, O(n).
    function rootOf(bytes32[] memory shardHashes) internal pure returns (bytes32) {
        uint256 width = shardHashes.length;
        bytes32[] memory level = new bytes32[](width);
        for (uint256 i = 0; i < width; ++i) {
            level[i] = leafHash(shardHashes[i]);
        }
        while (width > 1) {
            uint256 next = 0;
            for (uint256 i = 0; i < width; i += 2) {
                level[next] = i + 1 < width ? nodeHash(level[i], level[i + 1]) : level[i];
                ++next;
            }
            width = next;
        }
        return level[0];
    }
}

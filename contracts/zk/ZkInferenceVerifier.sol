// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IGroth16Verifier3, IZkInferenceVerifier} from "../interfaces/IZkInferenceVerifier.sol";

/// @title ZkInferenceVerifier
/// @notice One model version's zk verifier: its circuit's Groth16 verifier with the version's weights
/// commitment fixed as the first public signal, so a proof made with other weights never verifies here.
contract ZkInferenceVerifier is IZkInferenceVerifier {
    /// @notice The BN254 scalar field order: public signals must be below it.
    uint256 public constant SNARK_SCALAR_FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// @notice The circuit's generated Groth16 verifier.
    IGroth16Verifier3 public immutable GROTH16_VERIFIER;
    /// @notice The Poseidon commitment of this version's quantised weights.
    uint256 public immutable WEIGHTS_COMMITMENT;
    /// @notice sha256 of the circuit's verification key JSON.
    bytes32 public immutable VERIFYING_KEY_HASH;

    /// @param verifier The circuit's generated verifier.
    /// @param commitment The Poseidon commitment of the version's weights.
    /// @param vkHash sha256 of the circuit's verification key JSON.
    constructor(IGroth16Verifier3 verifier, uint256 commitment, bytes32 vkHash) {
        if (address(verifier) == address(0)) revert ZeroAddress("verifier");
        if (commitment == 0 || commitment >= SNARK_SCALAR_FIELD) {
            revert InvalidFieldElement("weightsCommitment", commitment);
        }
        if (vkHash == bytes32(0)) revert ZeroHash("verifyingKeyHash");
        GROTH16_VERIFIER = verifier;
        WEIGHTS_COMMITMENT = commitment;
        VERIFYING_KEY_HASH = vkHash;
    }

    /// @inheritdoc IZkInferenceVerifier
    function verifyInference(
        Groth16Proof calldata proof,
        uint256 inputHash,
        uint256 outputHash
    ) external view returns (bool valid) {
        return GROTH16_VERIFIER.verifyProof(proof.a, proof.b, proof.c, [WEIGHTS_COMMITMENT, inputHash, outputHash]);
    }

    /// @inheritdoc IZkInferenceVerifier
    function groth16Verifier() external view returns (IGroth16Verifier3 verifier) {
        return GROTH16_VERIFIER;
    }

    /// @inheritdoc IZkInferenceVerifier
    function weightsCommitment() external view returns (uint256 commitment) {
        return WEIGHTS_COMMITMENT;
    }

    /// @inheritdoc IZkInferenceVerifier
    function verifyingKeyHash() external view returns (bytes32 hash) {
        return VERIFYING_KEY_HASH;
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IGroth16Verifier3
/// @notice A snarkjs-generated Groth16 verifier with three public signals (e.g. `SimplenetVerifier`).
interface IGroth16Verifier3 {
    /// @notice Whether `(pA, pB, pC)` proves the circuit for `pubSignals`; false (never a revert) otherwise.
    /// @param pA The proof's A point (G1).
    /// @param pB The proof's B point (G2, coordinates in the precompile's order).
    /// @param pC The proof's C point (G1).
    /// @param pubSignals The public signals, each below the BN254 scalar field order.
    /// @return valid True when the pairing check passes.
    function verifyProof(
        uint256[2] calldata pA,
        uint256[2][2] calldata pB,
        uint256[2] calldata pC,
        uint256[3] calldata pubSignals
    ) external view returns (bool valid);
}

/// @title IZkInferenceVerifier
/// @notice The zk verifier of one model version: a circuit's Groth16 verifier bound to the Poseidon
/// commitment of that version's weights. Its address is the version's `zkVerifier` in the model
/// registry, so the version records both the circuit (through `groth16Verifier`) and the weights.
/// @dev Public signals, in order: weights commitment, Poseidon hash of the input, Poseidon hash of the output.
interface IZkInferenceVerifier {
    /// @notice A Groth16 proof in the layout `verifyProof` takes.
    /// @param a The A point.
    /// @param b The B point, G2 coordinates in the precompile's order.
    /// @param c The C point.
    struct Groth16Proof {
        uint256[2] a;
        uint256[2][2] b;
        uint256[2] c;
    }

    /// @notice A constructor argument was the zero address.
    /// @param name The argument's name.
    error ZeroAddress(string name);

    /// @notice A value that must be a BN254 scalar field element (non-zero where stated) was not.
    /// @param name What the value is.
    /// @param value The value given.
    error InvalidFieldElement(string name, uint256 value);

    /// @notice A hash that must be set was zero.
    /// @param name The hash's name.
    error ZeroHash(string name);

    /// @notice Whether `proof` proves that this version's weights map the input hashed to `inputHash`
    /// to the output hashed to `outputHash`.
    /// @param proof The Groth16 proof.
    /// @param inputHash Poseidon hash of the quantised input vector.
    /// @param outputHash Poseidon hash of the quantised output vector.
    /// @return valid True when the proof verifies with this version's commitment.
    function verifyInference(
        Groth16Proof calldata proof,
        uint256 inputHash,
        uint256 outputHash
    ) external view returns (bool valid);

    /// @notice The circuit's generated Groth16 verifier.
    /// @return verifier Its address.
    function groth16Verifier() external view returns (IGroth16Verifier3 verifier);

    /// @notice The Poseidon commitment of this version's quantised weights (the first public signal).
    /// @return commitment The commitment, a BN254 scalar field element.
    function weightsCommitment() external view returns (uint256 commitment);

    /// @notice sha256 of the circuit's verification key JSON: equal to the version's `verifyingKeyHash`.
    /// @return hash The hash.
    function verifyingKeyHash() external view returns (bytes32 hash);
}

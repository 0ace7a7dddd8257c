// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title InframeshTypes
/// @notice The EIP-712 messages of Inframesh: a client's `WorkUnit`, a node's `ProofOfServing` and the
/// oracle committee's epoch `Settlement`, with their type hashes and struct hashes (EIP-712 `hashStruct`).
/// @dev sdk/eip712.ts defines the same types for viem; test/contracts/TypedData.test.ts proves
/// that both sides compute the same digests. The domain (name "Inframesh", version "1", chain id,
/// the settlement contract) is applied by `InframeshTypedData`.
library InframeshTypes {
    /// @notice What a client signs to ask for one inference.
    /// @param jobId Unique id of the job, chosen by the client; a job id is paid at most once.
    /// @param modelId The model's id in the model registry.
    /// @param modelVersion The version number of the model (index in the registry).
    /// @param inputHash sha256 of the raw input bytes (never of a JSON re-serialisation).
    /// @param maxFee Most the client agrees to be debited for this job, in payment-token base units.
    /// @param client The client's address: the signer, and the escrow account debited.
    /// @param expiresAt Unix time after which the job may no longer be served.
    struct WorkUnit {
        bytes32 jobId;
        uint256 modelId;
        uint256 modelVersion;
        bytes32 inputHash;
        uint256 maxFee;
        address client;
        uint64 expiresAt;
    }

    /// @notice What a node signs after serving a work unit.
    /// @param jobId The work unit's job id.
    /// @param workUnitHash The EIP-712 digest of the work unit, exactly as the client signed it.
    /// @param outputHash sha256 of the raw output bytes.
    /// @param latencyMs Milliseconds from receiving the work unit to producing the output.
    /// @param node The serving node's id (its operator address): the signer.
    struct ProofOfServing {
        bytes32 jobId;
        bytes32 workUnitHash;
        bytes32 outputHash;
        uint32 latencyMs;
        address node;
    }

    /// @notice What the oracle committee signs to close an epoch.
    /// @param epoch The epoch settled.
    /// @param earningsRoot Merkle root of every node's cumulative earnings up to and including this epoch.
    /// @param totalDebits Tokens debited from clients' escrow balances for this epoch's receipts.
    /// @param fees Protocol fees of this epoch.
    /// @param royalties Model publishers' royalties of this epoch.
    /// @param redistributedSlash Slashed stake redistributed to the other nodes in this epoch.
    /// @param receiptCount Number of receipts settled.
    /// @param batchSha256 sha256 of the published receipt batch.
    // Signed and passed in calldata, never stored: field order follows the protocol, not slot packing.
    // solhint-disable-next-line gas-struct-packing
    struct Settlement {
        uint64 epoch;
        bytes32 earningsRoot;
        uint256 totalDebits;
        uint256 fees;
        uint256 royalties;
        uint256 redistributedSlash;
        uint64 receiptCount;
        bytes32 batchSha256;
    }

    // The type strings below are hashed at compile time: their length costs nothing at run time.
    // solhint-disable gas-small-strings

    /// @notice EIP-712 type hash of `WorkUnit`.
    bytes32 internal constant WORK_UNIT_TYPEHASH = keccak256(
        "WorkUnit(bytes32 jobId,uint256 modelId,uint256 modelVersion,bytes32 inputHash,uint256 maxFee,address client,uint64 expiresAt)"
    );

    /// @notice EIP-712 type hash of `ProofOfServing`.
    bytes32 internal constant PROOF_OF_SERVING_TYPEHASH = keccak256(
        "ProofOfServing(bytes32 jobId,bytes32 workUnitHash,bytes32 outputHash,uint32 latencyMs,address node)"
    );

    /// @notice EIP-712 type hash of `Settlement`.
    bytes32 internal constant SETTLEMENT_TYPEHASH = keccak256(
        "Settlement(uint64 epoch,bytes32 earningsRoot,uint256 totalDebits,uint256 fees,uint256 royalties,uint256 redistributedSlash,uint64 receiptCount,bytes32 batchSha256)"
    );

    // solhint-enable gas-small-strings

    /// @notice EIP-712 `hashStruct` of a work unit.
    function hash(WorkUnit memory workUnit) internal pure returns (bytes32) {
        return
            keccak256(
                abi.encode(
                    WORK_UNIT_TYPEHASH,
                    workUnit.jobId,
                    workUnit.modelId,
                    workUnit.modelVersion,
                    workUnit.inputHash,
                    workUnit.maxFee,
                    workUnit.client,
                    workUnit.expiresAt
                )
            );
    }

    /// @notice EIP-712 `hashStruct` of a proof of serving.
    function hash(ProofOfServing memory proof) internal pure returns (bytes32) {
        return
            keccak256(
                abi.encode(
                    PROOF_OF_SERVING_TYPEHASH,
                    proof.jobId,
                    proof.workUnitHash,
                    proof.outputHash,
                    proof.latencyMs,
                    proof.node
                )
            );
    }

    /// @notice EIP-712 `hashStruct` of a settlement.
    function hash(Settlement memory settlement) internal pure returns (bytes32) {
        return
            keccak256(
                abi.encode(
                    SETTLEMENT_TYPEHASH,
                    settlement.epoch,
                    settlement.earningsRoot,
                    settlement.totalDebits,
                    settlement.fees,
                    settlement.royalties,
                    settlement.redistributedSlash,
                    settlement.receiptCount,
                    settlement.batchSha256
                )
            );
    }
}

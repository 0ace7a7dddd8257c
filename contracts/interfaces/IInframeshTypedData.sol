// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InframeshTypes} from "../settlement/InframeshTypes.sol";

/// @title IInframeshTypedData
/// @notice EIP-712 digests and signature checks of Inframesh work units and proofs of serving,
/// under the domain name "Inframesh", version "1", this chain and this contract (the settlement
/// contract). Oracles, auditors and tests use these views to check their own digests.
interface IInframeshTypedData {
    /// @notice The EIP-712 digest a client signs for `workUnit`.
    function hashWorkUnit(InframeshTypes.WorkUnit calldata workUnit) external view returns (bytes32);

    /// @notice The EIP-712 digest a node signs for `proof`.
    function hashProofOfServing(InframeshTypes.ProofOfServing calldata proof) external view returns (bytes32);

    /// @notice The EIP-712 digest each oracle signs for `settlement`.
    function hashSettlement(InframeshTypes.Settlement calldata settlement) external view returns (bytes32);

    /// @notice Whether `signature` is `workUnit.client`'s ECDSA signature of the work unit under this
    /// domain. False for a malformed signature, a zero client or a signature made for another
    /// chain or contract.
    function isValidWorkUnitSignature(
        InframeshTypes.WorkUnit calldata workUnit,
        bytes calldata signature
    ) external view returns (bool);

    /// @notice Whether `signature` is `proof.node`'s ECDSA signature of the proof under this domain.
    /// False for a malformed signature, a zero node or a signature made for another chain or contract.
    function isValidProofOfServingSignature(
        InframeshTypes.ProofOfServing calldata proof,
        bytes calldata signature
    ) external view returns (bool);

    /// @notice The EIP-712 domain separator of this contract on this chain.
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32);
}

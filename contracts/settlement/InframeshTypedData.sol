// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {IInframeshTypedData} from "../interfaces/IInframeshTypedData.sol";
import {InframeshTypes} from "./InframeshTypes.sol";

/// @title InframeshTypedData
/// @notice The Inframesh EIP-712 domain (name "Inframesh", version "1") and the digests and
/// signature checks of work units and proofs of serving. The settlement contract inherits it, so
/// the domain's verifying contract is the settlement contract, as the protocol fixes.
/// @dev OpenZeppelin's EIP712 caches the separator and rebuilds it after a chain fork, so a
/// signature for another chain id never verifies here.
abstract contract InframeshTypedData is IInframeshTypedData, EIP712 {
    using InframeshTypes for InframeshTypes.WorkUnit;
    using InframeshTypes for InframeshTypes.ProofOfServing;
    using InframeshTypes for InframeshTypes.Settlement;

    // ------------------------------------------------------------------ constants

    /// @notice EIP-712 domain name.
    string public constant EIP712_NAME = "Inframesh";
    /// @notice EIP-712 domain version.
    string public constant EIP712_VERSION = "1";

    // ------------------------------------------------------------------ constructor

    constructor() EIP712(EIP712_NAME, EIP712_VERSION) {}

    // ------------------------------------------------------------------ internal

    /// @dev The signer of `digest` is `expected` (a non-zero address); never reverts.
    function _isSignedBy(bytes32 digest, bytes calldata signature, address expected) internal pure returns (bool) {
        (address recovered, ECDSA.RecoverError err, ) = ECDSA.tryRecoverCalldata(digest, signature);
        return err == ECDSA.RecoverError.NoError && recovered == expected && expected != address(0);
    }

    // ------------------------------------------------------------------ external: views

    /// @inheritdoc IInframeshTypedData
    function hashWorkUnit(InframeshTypes.WorkUnit calldata workUnit) public view returns (bytes32) {
        return _hashTypedDataV4(workUnit.hash());
    }

    /// @inheritdoc IInframeshTypedData
    function hashProofOfServing(InframeshTypes.ProofOfServing calldata proof) public view returns (bytes32) {
        return _hashTypedDataV4(proof.hash());
    }

    /// @inheritdoc IInframeshTypedData
    function hashSettlement(InframeshTypes.Settlement calldata settlement) public view returns (bytes32) {
        return _hashTypedDataV4(settlement.hash());
    }

    /// @inheritdoc IInframeshTypedData
    function isValidWorkUnitSignature(
        InframeshTypes.WorkUnit calldata workUnit,
        bytes calldata signature
    ) external view returns (bool) {
        return _isSignedBy(hashWorkUnit(workUnit), signature, workUnit.client);
    }

    /// @inheritdoc IInframeshTypedData
    function isValidProofOfServingSignature(
        InframeshTypes.ProofOfServing calldata proof,
        bytes calldata signature
    ) external view returns (bool) {
        return _isSignedBy(hashProofOfServing(proof), signature, proof.node);
    }

    /// @inheritdoc IInframeshTypedData
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }
}

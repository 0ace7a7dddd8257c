// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {IModelRegistry} from "../interfaces/IModelRegistry.sol";
import {INodeStaking} from "../interfaces/INodeStaking.sol";
import {IZkChallenge} from "../interfaces/IZkChallenge.sol";
import {IZkInferenceVerifier} from "../interfaces/IZkInferenceVerifier.sol";

/// @title ZkChallenge
/// @notice Answer-or-be-slashed challenges for jobs of zk-required model versions (see IZkChallenge).
contract ZkChallenge is IZkChallenge, AccessControl {
    /// @notice Accounts allowed to open challenges (the keeper, slashers).
    bytes32 public constant CHALLENGER_ROLE = keccak256("CHALLENGER_ROLE");
    /// @notice The BN254 scalar field order: hashes at or above it can never be public signals.
    uint256 public constant SNARK_SCALAR_FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice Bounds on the response window: long enough to prove (seconds of CPU) through network
    /// delays, short enough that a slash cannot be outrun by unbonding.
    uint64 public constant MIN_RESPONSE_WINDOW = 1 hours;
    uint64 public constant MAX_RESPONSE_WINDOW = 7 days;

    /// @notice The staking contract slashes go through (this contract holds its SLASHER_ROLE).
    INodeStaking public immutable STAKING;
    /// @notice The model registry whose versions record the zk verifiers.
    IModelRegistry public immutable MODELS;

    uint64 private _responseWindow;
    mapping(bytes32 jobId => Challenge) private _challenges;

    /// @param staking NodeStaking; this contract needs its SLASHER_ROLE to execute slashes.
    /// @param models The model registry whose versions record the zk verifiers.
    /// @param admin Holder of DEFAULT_ADMIN_ROLE (the timelock).
    /// @param initialResponseWindow Seconds a node has to answer.
    constructor(INodeStaking staking, IModelRegistry models, address admin, uint64 initialResponseWindow) {
        if (address(staking) == address(0)) revert ZeroAddress("staking");
        if (address(models) == address(0)) revert ZeroAddress("models");
        if (admin == address(0)) revert ZeroAddress("admin");
        STAKING = staking;
        MODELS = models;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setResponseWindow(initialResponseWindow);
    }

    /// @inheritdoc IZkChallenge
    function openChallenge(
        bytes32 jobId,
        address node,
        uint256 modelId,
        uint256 version,
        uint256 inputHash,
        uint256 outputHash,
        uint256 slashAmount
    ) external onlyRole(CHALLENGER_ROLE) returns (uint64 deadline) {
        if (node == address(0)) revert ZeroNode();
        if (_challenges[jobId].status != Status.None) revert ChallengeExists(jobId);
        if (inputHash >= SNARK_SCALAR_FIELD) revert InvalidFieldElement("inputHash", inputHash);
        if (outputHash >= SNARK_SCALAR_FIELD) revert InvalidFieldElement("outputHash", outputHash);
        _verifierOf(modelId, version);

        deadline = uint64(block.timestamp) + _responseWindow;
        _challenges[jobId] = Challenge({
            node: node,
            deadline: deadline,
            status: Status.Open,
            modelId: modelId,
            version: version,
            inputHash: inputHash,
            outputHash: outputHash,
            slashAmount: slashAmount
        });
        emit ChallengeOpened(jobId, node, modelId, version, inputHash, outputHash, slashAmount, deadline);
    }

    /// @inheritdoc IZkChallenge
    function answerChallenge(bytes32 jobId, IZkInferenceVerifier.Groth16Proof calldata proof) external {
        Challenge storage challenge = _challenges[jobId];
        Status status = challenge.status;
        if (status != Status.Open) revert ChallengeNotOpen(jobId, status);
        if (block.timestamp > challenge.deadline) {
            revert ResponseDeadlinePassed(jobId, challenge.deadline, block.timestamp);
        }
        // The verifier is read again: a proof must bind the version as recorded now, and a
        // version's record never changes once published.
        IZkInferenceVerifier verifier = _verifierOf(challenge.modelId, challenge.version);
        if (!verifier.verifyInference(proof, challenge.inputHash, challenge.outputHash)) revert InvalidProof(jobId);

        challenge.status = Status.Answered;
        emit ChallengeAnswered(jobId, challenge.node, msg.sender);
    }

    /// @inheritdoc IZkChallenge
    function executeSlash(bytes32 jobId) external returns (uint256 amount) {
        Challenge storage challenge = _challenges[jobId];
        Status status = challenge.status;
        if (status != Status.Open) revert ChallengeNotOpen(jobId, status);
        if (block.timestamp <= challenge.deadline) {
            revert ResponseWindowOpen(jobId, challenge.deadline, block.timestamp);
        }
        address node = challenge.node;
        // A slash above NodeStaking's per-incident cap would revert and leave the challenge stuck open.
        amount = Math.min(challenge.slashAmount, STAKING.maxSlashOf(node));
        bytes32 evidenceHash = _evidenceHash(jobId, challenge);

        challenge.status = Status.Slashed;
        emit ChallengeSlashed(jobId, node, amount, evidenceHash);
        if (amount > 0) STAKING.slash(node, amount, evidenceHash);
    }

    /// @inheritdoc IZkChallenge
    function setResponseWindow(uint64 newResponseWindow) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setResponseWindow(newResponseWindow);
    }

    /// @inheritdoc IZkChallenge
    function challengeOf(bytes32 jobId) external view returns (Challenge memory challenge) {
        return _challenges[jobId];
    }

    /// @inheritdoc IZkChallenge
    function responseWindow() external view returns (uint64) {
        return _responseWindow;
    }

    /// @inheritdoc IZkChallenge
    function evidenceHashOf(bytes32 jobId) external view returns (bytes32 evidenceHash) {
        return _evidenceHash(jobId, _challenges[jobId]);
    }

    function _setResponseWindow(uint64 newResponseWindow) private {
        if (newResponseWindow < MIN_RESPONSE_WINDOW || newResponseWindow > MAX_RESPONSE_WINDOW) {
            revert InvalidResponseWindow(newResponseWindow);
        }
        _responseWindow = newResponseWindow;
        emit ResponseWindowSet(newResponseWindow);
    }

    function _verifierOf(uint256 modelId, uint256 version) private view returns (IZkInferenceVerifier verifier) {
        IModelRegistry.Version memory record = MODELS.versionInfo(modelId, version);
        if (record.zkVerifier == address(0)) revert ZkNotRequired(modelId, version);
        verifier = IZkInferenceVerifier(record.zkVerifier);
        bytes32 verifierKeyHash = verifier.verifyingKeyHash();
        if (verifierKeyHash != record.verifyingKeyHash) {
            revert VerifyingKeyMismatch(modelId, version, record.verifyingKeyHash, verifierKeyHash);
        }
    }

    function _evidenceHash(bytes32 jobId, Challenge memory challenge) private view returns (bytes32) {
        return
            sha256(
                abi.encode(
                    address(this),
                    jobId,
                    challenge.node,
                    challenge.modelId,
                    challenge.version,
                    challenge.inputHash,
                    challenge.outputHash
                )
            );
    }
}

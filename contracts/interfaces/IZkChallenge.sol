// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IZkInferenceVerifier} from "./IZkInferenceVerifier.sol";

/// @title IZkChallenge
/// @notice Slash challenges for jobs of zk-required model versions. A challenger (the keeper or a
/// slasher) names a job, its node and the Poseidon hashes of its input and output; the node answers
/// within the response window with a proof that the version's weights map that input to that output,
/// and the challenge fails. Unanswered by the deadline, anyone may execute it as a slash through
/// `NodeStaking` (this contract needs its SLASHER_ROLE).
/// @dev The challenger is trusted to state the job's hashes truthfully (they come from the receipt
/// the oracle accepted); the contract does not recompute them from the job's bytes.
interface IZkChallenge {
    /// @notice Where a challenge stands. `None` means never opened.
    enum Status {
        None,
        Open,
        Answered,
        Slashed
    }

    /// @notice A challenge as stored, keyed by job id (one challenge per job, ever).
    /// @param node The node that served the job.
    /// @param deadline Last second (inclusive) at which an answer is accepted.
    /// @param status Where it stands.
    /// @param modelId The model served.
    /// @param version The version served; it must have a zk verifier.
    /// @param inputHash Poseidon hash of the job's quantised input.
    /// @param outputHash Poseidon hash of the job's quantised output.
    /// @param slashAmount Stake to slash if unanswered (capped by NodeStaking's per-incident maximum).
    struct Challenge {
        address node;
        uint64 deadline;
        Status status;
        uint256 modelId;
        uint256 version;
        uint256 inputHash;
        uint256 outputHash;
        uint256 slashAmount;
    }

    // ------------------------------------------------------------------ events

    /// @notice A challenge was opened for `jobId`, served by `node`, answerable until `deadline`.
    event ChallengeOpened(
        bytes32 indexed jobId,
        address indexed node,
        uint256 indexed modelId,
        uint256 version,
        uint256 inputHash,
        uint256 outputHash,
        uint256 slashAmount,
        uint64 deadline
    );

    /// @notice `answeredBy` submitted a valid proof for `jobId`: the challenge failed.
    event ChallengeAnswered(bytes32 indexed jobId, address indexed node, address answeredBy);

    /// @notice The challenge of `jobId` went unanswered: `node` was slashed `amount` for `evidenceHash`.
    event ChallengeSlashed(bytes32 indexed jobId, address indexed node, uint256 amount, bytes32 evidenceHash);

    /// @notice The time a node has to answer new challenges became `responseWindow` seconds.
    event ResponseWindowSet(uint64 responseWindow);

    // ------------------------------------------------------------------ errors

    /// @notice A constructor argument was the zero address.
    /// @param name The argument's name.
    error ZeroAddress(string name);

    /// @notice The response window is outside [MIN_RESPONSE_WINDOW, MAX_RESPONSE_WINDOW].
    /// @param responseWindow The value given.
    error InvalidResponseWindow(uint64 responseWindow);

    /// @notice `jobId` was already challenged (whatever the outcome).
    /// @param jobId The job.
    error ChallengeExists(bytes32 jobId);

    /// @notice `jobId` has no open challenge.
    /// @param jobId The job.
    /// @param status Its current status.
    error ChallengeNotOpen(bytes32 jobId, Status status);

    /// @notice The model version does not require zk proofs (no verifier recorded), so it cannot be challenged.
    /// @param modelId The model.
    /// @param version The version.
    error ZkNotRequired(uint256 modelId, uint256 version);

    /// @notice The version's recorded verifying-key hash differs from its verifier's.
    /// @param modelId The model.
    /// @param version The version.
    /// @param recorded The registry's `verifyingKeyHash`.
    /// @param verifier The verifier's `verifyingKeyHash()`.
    error VerifyingKeyMismatch(uint256 modelId, uint256 version, bytes32 recorded, bytes32 verifier);

    /// @notice A hash is not a BN254 scalar field element, so no proof could ever answer it.
    /// @param name Which hash.
    /// @param value The value given.
    error InvalidFieldElement(string name, uint256 value);

    /// @notice The node is zero.
    error ZeroNode();

    /// @notice The answer came after the deadline.
    /// @param jobId The job.
    /// @param deadline The last second an answer was accepted.
    /// @param nowTimestamp The current block time.
    error ResponseDeadlinePassed(bytes32 jobId, uint64 deadline, uint256 nowTimestamp);

    /// @notice The slash was executed while the node may still answer.
    /// @param jobId The job.
    /// @param deadline The last second an answer is accepted.
    /// @param nowTimestamp The current block time.
    error ResponseWindowOpen(bytes32 jobId, uint64 deadline, uint256 nowTimestamp);

    /// @notice The proof does not verify for this version's weights and the job's input and output hashes.
    /// @param jobId The job.
    error InvalidProof(bytes32 jobId);

    // ------------------------------------------------------------------ functions

    /// @notice Opens a challenge for `jobId`. Challenger role only.
    /// @param jobId The job (as in its work unit).
    /// @param node The node that served it.
    /// @param modelId The model served.
    /// @param version The version served; it must record a zk verifier.
    /// @param inputHash Poseidon hash of the job's quantised input.
    /// @param outputHash Poseidon hash of the job's quantised output.
    /// @param slashAmount Stake to slash if unanswered.
    /// @return deadline Last second at which an answer is accepted.
    function openChallenge(
        bytes32 jobId,
        address node,
        uint256 modelId,
        uint256 version,
        uint256 inputHash,
        uint256 outputHash,
        uint256 slashAmount
    ) external returns (uint64 deadline);

    /// @notice Answers the open challenge of `jobId` with a proof; on success the challenge fails.
    /// @dev Anyone may answer: the proof is what counts. Reverts with `InvalidProof` on a bad proof,
    /// so the node may try again until the deadline.
    /// @param jobId The job.
    /// @param proof The Groth16 proof for (version commitment, inputHash, outputHash).
    function answerChallenge(bytes32 jobId, IZkInferenceVerifier.Groth16Proof calldata proof) external;

    /// @notice Slashes the node of an unanswered challenge whose deadline passed. Anyone may call.
    /// @param jobId The job.
    /// @return amount Stake slashed (the challenge's amount capped at the node's per-incident maximum).
    function executeSlash(bytes32 jobId) external returns (uint256 amount);

    /// @notice Sets the response window of challenges opened from now on. Admin only.
    /// @param responseWindow Seconds a node has to answer.
    function setResponseWindow(uint64 responseWindow) external;

    /// @notice The challenge of `jobId` (status `None` if never opened).
    /// @param jobId The job.
    /// @return challenge The stored record.
    function challengeOf(bytes32 jobId) external view returns (Challenge memory challenge);

    /// @notice Seconds a node has to answer a challenge opened now.
    /// @return responseWindow The window.
    function responseWindow() external view returns (uint64);

    /// @notice The evidence hash a slash of `jobId` records in NodeStaking.
    /// @param jobId The job.
    /// @return evidenceHash sha256 of the ABI-encoded challenge record and this contract's address.
    function evidenceHashOf(bytes32 jobId) external view returns (bytes32 evidenceHash);
}

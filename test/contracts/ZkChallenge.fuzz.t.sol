// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IModelRegistry} from "../../contracts/interfaces/IModelRegistry.sol";
import {IZkChallenge} from "../../contracts/interfaces/IZkChallenge.sol";
import {IGroth16Verifier3, IZkInferenceVerifier} from "../../contracts/interfaces/IZkInferenceVerifier.sol";
import {ModelRegistry} from "../../contracts/models/ModelRegistry.sol";
import {SimplenetVerifier} from "../../contracts/zk/SimplenetVerifier.sol";
import {ZkChallenge} from "../../contracts/zk/ZkChallenge.sol";
import {ZkInferenceVerifier} from "../../contracts/zk/ZkInferenceVerifier.sol";
import {SimplenetProofVector} from "./generated/SimplenetProofVector.sol";
import {StakingFixture} from "./utils/StakingFixture.sol";
import {vm} from "./utils/Vm.sol";

/// @title ZkChallengeFuzzTest
/// @notice The generated simplenet verifier and ZkChallenge against random proofs, random public
/// signals and random answer times: no random proof ever verifies or answers a challenge, the
/// committed real proof answers exactly until the deadline, and only an unanswered challenge past
/// its deadline slashes, never more than the node's per-incident cap.
contract ZkChallengeFuzzTest is StakingFixture {
    address internal constant NODE = address(0x40DE);
    uint64 internal constant WINDOW = 6 hours;
    bytes32 internal constant JOB = keccak256("job");
    bytes32 internal constant VK_HASH = keccak256("verification_key.json");
    uint256 internal constant FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617;

    SimplenetVerifier internal groth16;
    ZkInferenceVerifier internal versionVerifier;
    ModelRegistry internal models;
    ZkChallenge internal challenge;

    function setUp() public {
        _deploy();
        _approve(NODE);
        _register(NODE);
        _stake(NODE, NODE, MIN_SELF_STAKE);

        groth16 = new SimplenetVerifier();
        versionVerifier = new ZkInferenceVerifier(
            IGroth16Verifier3(address(groth16)),
            SimplenetProofVector.WEIGHTS_COMMITMENT,
            VK_HASH
        );
        models = new ModelRegistry();
        uint256 modelId = models.registerModel("simplenet");
        models.publishVersion(
            modelId,
            IModelRegistry.VersionInput({
                version: "1.0.0-zk",
                descriptorHash: keccak256("model.yaml"),
                manifestHash: "abababababababababababababababababababababababababababababababab",
                shardRoot: keccak256("root"),
                shardCount: 1,
                price: 1,
                zkVerifier: address(versionVerifier),
                verifyingKeyHash: VK_HASH,
                access: IModelRegistry.AccessPolicy({
                    kind: IModelRegistry.AccessKind.Public,
                    token: address(0),
                    threshold: 0
                })
            })
        );
        challenge = new ZkChallenge(staking, models, address(this), WINDOW);
        challenge.grantRole(challenge.CHALLENGER_ROLE(), address(this));
        staking.grantRole(staking.SLASHER_ROLE(), address(challenge));
    }

    function _open(uint256 slashAmount) internal returns (uint64 deadline) {
        return
            challenge.openChallenge(
                JOB,
                NODE,
                1,
                0,
                SimplenetProofVector.INPUT_HASH,
                SimplenetProofVector.OUTPUT_HASH,
                slashAmount
            );
    }

    function _realProof() internal pure returns (IZkInferenceVerifier.Groth16Proof memory proof) {
        (proof.a, proof.b, proof.c) = SimplenetProofVector.proof();
    }

    function test_realProofVerifies() public view {
        (uint256[2] memory a, uint256[2][2] memory b, uint256[2] memory c) = SimplenetProofVector.proof();
        uint256[3] memory signals = [
            SimplenetProofVector.WEIGHTS_COMMITMENT,
            SimplenetProofVector.INPUT_HASH,
            SimplenetProofVector.OUTPUT_HASH
        ];
        assertTrue(groth16.verifyProof(a, b, c, signals), "the committed proof verifies");
    }

    function testFuzz_randomProofNeverVerifies(
        uint256[2] memory a,
        uint256[2][2] memory b,
        uint256[2] memory c
    ) public view {
        uint256[3] memory signals = [
            SimplenetProofVector.WEIGHTS_COMMITMENT,
            SimplenetProofVector.INPUT_HASH,
            SimplenetProofVector.OUTPUT_HASH
        ];
        assertFalse(groth16.verifyProof(a, b, c, signals), "a random proof verified");
    }

    function testFuzz_realProofRefusesOtherSignals(uint256 inputHash, uint256 outputHash) public view {
        vm.assume(inputHash != SimplenetProofVector.INPUT_HASH || outputHash != SimplenetProofVector.OUTPUT_HASH);
        assertFalse(
            versionVerifier.verifyInference(_realProof(), inputHash, outputHash),
            "the proof verified for another input or output"
        );
    }

    function testFuzz_randomAnswerNeverAnswers(uint256[2] memory a, uint256[2] memory c) public {
        _open(1e18);
        IZkInferenceVerifier.Groth16Proof memory proof = _realProof();
        vm.assume(a[0] != proof.a[0] || a[1] != proof.a[1] || c[0] != proof.c[0] || c[1] != proof.c[1]);
        proof.a = a;
        proof.c = c;
        vm.expectRevert(abi.encodeWithSelector(IZkChallenge.InvalidProof.selector, JOB));
        challenge.answerChallenge(JOB, proof);
    }

    function testFuzz_answerOnlyUntilDeadline(uint256 delay) public {
        delay = bound(delay, 0, 2 * WINDOW);
        uint64 deadline = _open(1e18);
        vm.warp(block.timestamp + delay);
        if (block.timestamp > deadline) {
            vm.expectRevert(
                abi.encodeWithSelector(IZkChallenge.ResponseDeadlinePassed.selector, JOB, deadline, block.timestamp)
            );
            challenge.answerChallenge(JOB, _realProof());
        } else {
            challenge.answerChallenge(JOB, _realProof());
            assertEq(uint256(challenge.challengeOf(JOB).status), uint256(IZkChallenge.Status.Answered), "answered");
        }
    }

    function testFuzz_slashOnlyAfterDeadlineAndWithinCap(uint256 delay, uint256 slashAmount) public {
        delay = bound(delay, 0, 2 * WINDOW);
        slashAmount = bound(slashAmount, 0, 10 * MIN_SELF_STAKE);
        uint64 deadline = _open(slashAmount);
        vm.warp(block.timestamp + delay);
        uint256 cap = staking.maxSlashOf(NODE);
        uint256 stakeBefore = staking.slashableStake(NODE);
        if (block.timestamp <= deadline) {
            vm.expectRevert(
                abi.encodeWithSelector(IZkChallenge.ResponseWindowOpen.selector, JOB, deadline, block.timestamp)
            );
            challenge.executeSlash(JOB);
            return;
        }
        uint256 slashed = challenge.executeSlash(JOB);
        assertEq(slashed, slashAmount < cap ? slashAmount : cap, "slashes the amount capped at the node's maximum");
        assertEq(staking.slashableStake(NODE), stakeBefore - slashed, "stake fell by the slash");
        assertEq(uint256(challenge.challengeOf(JOB).status), uint256(IZkChallenge.Status.Slashed), "slashed");
    }

    function testFuzz_hashesOutsideTheFieldCannotBeChallenged(uint256 inputHash) public {
        inputHash = bound(inputHash, FIELD, type(uint256).max);
        vm.expectRevert(abi.encodeWithSelector(IZkChallenge.InvalidFieldElement.selector, "inputHash", inputHash));
        challenge.openChallenge(JOB, NODE, 1, 0, inputHash, 1, 1);
    }
}

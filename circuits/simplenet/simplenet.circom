pragma circom 2.1.0;

// simplenet (16 → 32 ReLU → 8) in fixed point, proving that the committed int8 weights map the
// committed input to the committed output. circuits/simplenet/quantised.ts is the same computation in
// TypeScript; a test holds the two equal bit for bit.
//
// Fixed point (see docs/zkml.md):
//   weights and biases: int8 at scale 2^8 (w ≈ q / 256), q in [-128, 127]
//   input:              integers at scale 2^8, x in [-2^15, 2^15)
//   hidden:             floor(relu(x·W1 + b1·2^8) / 2^8), scale 2^8
//   output:             h·W2 + b2·2^8, scale 2^16 (no rounding)
//
// Public inputs, in this order: the Poseidon commitment of the weights (packed 31 to a field element),
// the Poseidon hash of the input vector, the Poseidon hash of the output vector.

include "circomlib/circuits/poseidon.circom";
include "circomlib/circuits/bitify.circom";

// Poseidon over n field elements: Poseidon(16) of the first 16, then each further chunk of up to 15
// is absorbed with the running hash as its first element. Same chaining as poseidonChain in quantised.ts.
template PoseidonChain(n) {
    signal input in[n];
    signal output out;

    var first = n < 16 ? n : 16;
    var rest = n - first;
    var calls = 1 + (rest + 14) \ 15;
    component h[calls];

    h[0] = Poseidon(first);
    for (var i = 0; i < first; i++) h[0].inputs[i] <== in[i];

    var taken = first;
    for (var c = 1; c < calls; c++) {
        var size = n - taken < 15 ? n - taken : 15;
        h[c] = Poseidon(size + 1);
        h[c].inputs[0] <== h[c - 1].out;
        for (var i = 0; i < size; i++) h[c].inputs[i + 1] <== in[taken + i];
        taken += size;
    }
    out <== h[calls - 1].out;
}

template Simplenet(nIn, nHidden, nOut) {
    // Bit widths that bound every accumulator; quantised.ts rejects inputs outside them.
    var WEIGHT_BITS = 8;
    var WEIGHT_OFFSET = 1 << (WEIGHT_BITS - 1);
    var SCALE_BITS = 8;
    var ACC_BITS = 28;
    var PACK = 31;

    var nW1 = nIn * nHidden;
    var nW2 = nHidden * nOut;
    var nWeights = nW1 + nHidden + nW2 + nOut;
    var nPacked = (nWeights + PACK - 1) \ PACK;

    signal input weightsCommitment;
    signal input inputHash;
    signal input outputHash;

    signal input x[nIn];
    // Canonical order: W1 row-major [in][hidden], b1, W2 row-major [hidden][out], b2.
    signal input w[nWeights];

    // Range-check each weight to int8 so that packing 31 of them per field element is injective:
    // without it, other weights with the same packed value would satisfy the commitment.
    component weightBits[nWeights];
    for (var i = 0; i < nWeights; i++) {
        weightBits[i] = Num2Bits(WEIGHT_BITS);
        weightBits[i].in <== w[i] + WEIGHT_OFFSET;
    }
    component commitment = PoseidonChain(nPacked);
    for (var p = 0; p < nPacked; p++) {
        var packed = 0;
        var shift = 1;
        for (var k = 0; k < PACK; k++) {
            if (p * PACK + k < nWeights) {
                packed += (w[p * PACK + k] + WEIGHT_OFFSET) * shift;
                shift *= 1 << WEIGHT_BITS;
            }
        }
        commitment.in[p] <== packed;
    }
    weightsCommitment === commitment.out;

    component inHash = PoseidonChain(nIn);
    for (var i = 0; i < nIn; i++) inHash.in[i] <== x[i];
    inputHash === inHash.out;

    // Layer 1 with ReLU, then floor-divide by 2^8. The bits of acc + 2^(ACC_BITS-1) give both the
    // sign (top bit) and, for a non-negative acc, its magnitude bits, so floor(acc / 2^8) is a sum of bits.
    signal prod1[nIn][nHidden];
    signal hidden[nHidden];
    component accBits[nHidden];
    for (var j = 0; j < nHidden; j++) {
        var acc = w[nW1 + j] * (1 << SCALE_BITS);
        for (var i = 0; i < nIn; i++) {
            prod1[i][j] <== x[i] * w[i * nHidden + j];
            acc += prod1[i][j];
        }
        accBits[j] = Num2Bits(ACC_BITS);
        accBits[j].in <== acc + (1 << (ACC_BITS - 1));
        var magnitude = 0;
        for (var b = SCALE_BITS; b < ACC_BITS - 1; b++) magnitude += accBits[j].out[b] * (1 << (b - SCALE_BITS));
        hidden[j] <== accBits[j].out[ACC_BITS - 1] * magnitude;
    }

    // Layer 2, kept at scale 2^16: no rounding at all.
    signal prod2[nHidden][nOut];
    signal y[nOut];
    for (var k = 0; k < nOut; k++) {
        var acc = w[nW1 + nHidden + nW2 + k] * (1 << SCALE_BITS);
        for (var j = 0; j < nHidden; j++) {
            prod2[j][k] <== hidden[j] * w[nW1 + nHidden + j * nOut + k];
            acc += prod2[j][k];
        }
        y[k] <== acc;
    }

    component outHash = PoseidonChain(nOut);
    for (var k = 0; k < nOut; k++) outHash.in[k] <== y[k];
    outputHash === outHash.out;
}

component main {public [weightsCommitment, inputHash, outputHash]} = Simplenet(16, 32, 8);

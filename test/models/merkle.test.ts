import { readFile } from "node:fs/promises";
import { expect } from "chai";
import { ManifestError } from "../../sdk/manifest/errors.ts";
import { hashFromHex, sha256 } from "../../sdk/manifest/hash.ts";
import { leafHash, merkleProof, merkleRoot, nodeHash, rootFromProof, verifyProof } from "../../sdk/manifest/merkle.ts";
import {
  buildVectors,
  JSON_PATH,
  renderJson,
  renderSolidity,
  SOLIDITY_PATH,
  type MerkleVectors,
} from "../../scripts/vectors/shard-merkle-vectors.ts";

const repo = new URL("../../", import.meta.url);
const readRepoFile = (path: string) => readFile(new URL(path, repo), "utf8");

/** RFC 6962 §2.1 Merkle Tree Hash, written recursively and independently of merkle.ts. */
function rfc6962Root(leaves: Buffer[]): Buffer {
  if (leaves.length === 1) return sha256(Buffer.of(0), leaves[0]!);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha256(Buffer.of(1), rfc6962Root(leaves.slice(0, k)), rfc6962Root(leaves.slice(k)));
}

describe("shard Merkle tree (sdk/manifest/merkle.ts)", () => {
  let vectors: MerkleVectors;

  before(async () => {
    vectors = JSON.parse(await readRepoFile(JSON_PATH)) as MerkleVectors;
  });

  it("the committed JSON vectors are exactly what the generator renders now", async () => {
    expect(await readRepoFile(JSON_PATH)).to.equal(await renderJson(buildVectors()));
  });

  it("the committed Solidity vectors are rendered from the committed JSON", async () => {
    expect(await readRepoFile(SOLIDITY_PATH)).to.equal(await renderSolidity(vectors));
  });

  it("computes every vector root, and every root equals RFC 6962's Merkle Tree Hash", () => {
    expect(vectors.cases.map((c) => c.count)).to.include.members([1, 2, 3, 4, 5, 7, 8, 9, 14, 16, 17, 33]);
    for (const c of vectors.cases) {
      const hashes = c.shard_hashes.map(hashFromHex);
      expect(merkleRoot(hashes).toString("hex"), `root of ${c.count}`).to.equal(c.root);
      expect(rfc6962Root(hashes).toString("hex"), `rfc6962 root of ${c.count}`).to.equal(c.root);
    }
  });

  it("generates the vector proofs and verifies each one, and only at its own index", () => {
    for (const c of vectors.cases) {
      const hashes = c.shard_hashes.map(hashFromHex);
      const root = hashFromHex(c.root);
      hashes.forEach((hash, index) => {
        const proof = merkleProof(hashes, index);
        expect(proof.map((p) => p.toString("hex"))).to.deep.equal(c.proofs[index]);
        expect(verifyProof(root, c.count, index, hash, proof)).to.equal(true);
        if (c.count > 1) {
          expect(verifyProof(root, c.count, (index + 1) % c.count, hash, proof)).to.equal(false);
        }
        const flipped = Buffer.from(hash);
        flipped[31]! ^= 1;
        expect(verifyProof(root, c.count, index, flipped, proof)).to.equal(false);
      });
    }
  });

  it("rejects proofs with a missing or an extra sibling, and out-of-range indices", () => {
    const hashes = Array.from({ length: 14 }, (_, i) => sha256(Buffer.from([i])));
    const root = merkleRoot(hashes);
    const proof = merkleProof(hashes, 5);
    expect(rootFromProof(14, 5, hashes[5]!, proof.slice(1))).to.equal(null);
    expect(rootFromProof(14, 5, hashes[5]!, [...proof, root])).to.equal(null);
    expect(verifyProof(root, 14, 14, hashes[5]!, proof)).to.equal(false);
    expect(verifyProof(root, 14, -1, hashes[5]!, proof)).to.equal(false);
    // The count decides which levels a proof skips: where the shapes differ, the wrong count fails.
    // (Where they agree the root is the same; the registry and the manifest fix the count.)
    expect(verifyProof(root, 13, 12, hashes[12]!, merkleProof(hashes, 12))).to.equal(false);
    expect(verifyProof(root, 14, 12, hashes[12]!, merkleProof(hashes, 12))).to.equal(true);
  });

  it("separates leaf and node domains: a one-shard root is not the shard hash, an inner node is no leaf", () => {
    const a = sha256(Buffer.from("a"));
    const b = sha256(Buffer.from("b"));
    expect(merkleRoot([a]).equals(a)).to.equal(false);
    expect(merkleRoot([a])).to.deep.equal(leafHash(a));
    // Two leaves whose concatenation is an inner node's preimage do not give that node's root.
    const inner = nodeHash(leafHash(a), leafHash(b));
    expect(merkleRoot([a, b])).to.deep.equal(inner);
    expect(merkleRoot([inner]).equals(inner)).to.equal(false);
  });

  it("throws typed errors on bad input", () => {
    const fail = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        expect(error).to.be.instanceOf(ManifestError);
        return (error as ManifestError).code;
      }
      throw new Error("expected a ManifestError");
    };
    expect(fail(() => merkleRoot([]))).to.equal("INVALID_MERKLE_INPUT");
    expect(fail(() => merkleRoot([Buffer.alloc(31)]))).to.equal("INVALID_MERKLE_INPUT");
    expect(fail(() => merkleProof([Buffer.alloc(32)], 1))).to.equal("INVALID_MERKLE_INPUT");
    expect(fail(() => merkleProof([Buffer.alloc(32)], 0.5))).to.equal("INVALID_MERKLE_INPUT");
    expect(fail(() => hashFromHex("AB".repeat(32)))).to.equal("INVALID_HASH");
    expect(fail(() => hashFromHex("0x" + "ab".repeat(32)))).to.equal("INVALID_HASH");
  });
});

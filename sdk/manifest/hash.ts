// sha256 and the hex spelling used by manifests and the registry: 64 lowercase hex
// characters, no "0x" (the `0x` form is only for ethers' bytes32 arguments).
import { createHash } from "node:crypto";
import { ManifestError } from "./errors.ts";

export const HASH_BYTES = 32;
const HEX_HASH = /^[0-9a-f]{64}$/;

export function sha256(...parts: readonly Uint8Array[]): Buffer {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** Whether `text` is a hash as manifests spell it: 64 lowercase hex characters. */
export function isHexHash(text: unknown): text is string {
  return typeof text === "string" && HEX_HASH.test(text);
}

/** The 32 bytes of a manifest-style hex hash; throws INVALID_HASH on anything else. */
export function hashFromHex(text: string): Buffer {
  if (!isHexHash(text))
    throw new ManifestError("INVALID_HASH", `not a 64-character lowercase hex hash: ${JSON.stringify(text)}`);
  return Buffer.from(text, "hex");
}

/** The manifest-style hex spelling of a 32-byte hash. */
export function hashToHex(hash: Uint8Array): string {
  if (hash.length !== HASH_BYTES) throw new ManifestError("INVALID_HASH", `a hash has 32 bytes, got ${hash.length}`);
  return Buffer.from(hash).toString("hex");
}

/** The `0x`-prefixed bytes32 form that contracts take. */
export function hashToBytes32(hash: Uint8Array): string {
  return `0x${hashToHex(hash)}`;
}

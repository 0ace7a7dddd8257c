// Typed errors of the manifest library: a short message, a machine-readable code, and the
// underlying `cause` where there is one.

export type ManifestErrorCode =
  | "INVALID_HASH"
  | "INVALID_MERKLE_INPUT"
  | "INVALID_OPTIONS"
  | "EMPTY_WEIGHTS"
  | "IO"
  | "INVALID_MANIFEST"
  | "TOO_FEW_SHARDS"
  | "SHARD_HASH_MISMATCH"
  | "ROOT_MISMATCH"
  | "CODEC";

export class ManifestError extends Error {
  readonly code: ManifestErrorCode;

  constructor(code: ManifestErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ManifestError";
    this.code = code;
  }
}

// Reed-Solomon erasure coding over stripes, on the native @ronomon/reed-solomon addon.
// The addon works column-wise: shard i of a stripe is the i-th equal slice of the stripe, and
// coding a long shard stripe by stripe gives the same parity as coding it whole. Stripe sizes
// must be multiples of 8 bytes.
import { createRequire } from "node:module";
import { ManifestError } from "./errors.ts";

interface ReedSolomonAddon {
  MAX_K: number;
  MAX_M: number;
  create(data: number, parity: number): unknown;
  encode(
    context: unknown,
    sources: number,
    targets: number,
    buffer: Buffer,
    bufferOffset: number,
    bufferSize: number,
    parity: Buffer,
    parityOffset: number,
    paritySize: number,
    callback: (error: Error | undefined) => void,
  ): void;
}

const addon = createRequire(import.meta.url)("@ronomon/reed-solomon") as ReedSolomonAddon;

/** Shard and stripe sizes must be multiples of this many bytes. */
export const RS_ALIGNMENT = 8;

export interface ErasureCodec {
  readonly data: number;
  readonly parity: number;
  readonly context: unknown;
}

export function createErasureCodec(data: number, parity: number): ErasureCodec {
  const valid = (n: number, max: number) => Number.isInteger(n) && n >= 1 && n <= max;
  if (!valid(data, addon.MAX_K) || !valid(parity, addon.MAX_M)) {
    throw new ManifestError(
      "INVALID_OPTIONS",
      `Reed-Solomon needs 1..${addon.MAX_K} data and 1..${addon.MAX_M} parity shards, got ${data}+${parity}`,
    );
  }
  return { data, parity, context: addon.create(data, parity) };
}

/**
 * Recomputes the `targets` shards of one stripe from the `sources` shards (bit i = shard i).
 * `dataBuffer` holds the data shards' slices (data × size bytes), `parityBuffer` the parity ones.
 */
export function codeStripe(
  codec: ErasureCodec,
  sources: number,
  targets: number,
  dataBuffer: Buffer,
  parityBuffer: Buffer,
  size: number,
): Promise<void> {
  if (size % RS_ALIGNMENT !== 0) {
    return Promise.reject(new ManifestError("CODEC", `stripe slice of ${size} bytes is not a multiple of 8`));
  }
  return new Promise((resolve, reject) => {
    addon.encode(
      codec.context,
      sources,
      targets,
      dataBuffer,
      0,
      codec.data * size,
      parityBuffer,
      0,
      codec.parity * size,
      (error) => {
        if (error) reject(new ManifestError("CODEC", "Reed-Solomon coding failed", { cause: error }));
        else resolve();
      },
    );
  });
}

/** Encodes the parity slices of a stripe whose data slices are all present. */
export function encodeParity(codec: ErasureCodec, dataBuffer: Buffer, parityBuffer: Buffer, size: number) {
  const all = (from: number, count: number) => ((1 << count) - 1) << from;
  return codeStripe(codec, all(0, codec.data), all(codec.data, codec.parity), dataBuffer, parityBuffer, size);
}

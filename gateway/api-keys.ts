// API keys: `imk_<id>_<secret>`. The gateway stores only `{ id, salt, hash }` with
// hash = HMAC-SHA256(salt, secret), so a leaked key table yields no usable key and two equal
// secrets never hash alike. The id (not secret) finds the record and names the key in logs and
// rate limits; the secret is compared in constant time and never logged.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

import { z } from "zod";

import { GatewayError } from "./errors.ts";

const KEY_PATTERN = /^imk_([a-z0-9]{8,32})_([A-Za-z0-9_-]{32,128})$/;

/** A stored key: never the key itself. */
export const apiKeyRecordSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9]{8,32}$/, "expected 8..32 lowercase letters or digits"),
  salt: z.string().regex(/^[0-9a-f]{32}$/, "expected 16 bytes as 32 lowercase hex digits"),
  hash: z.string().regex(/^[0-9a-f]{64}$/, "expected HMAC-SHA256 as 64 lowercase hex digits"),
});
export type ApiKeyRecord = z.output<typeof apiKeyRecordSchema>;

/** HMAC-SHA256(salt, secret) as hex. Pure. */
export function hashApiSecret(saltHex: string, secret: string): string {
  return createHmac("sha256", Buffer.from(saltHex, "hex")).update(secret, "utf8").digest("hex");
}

/** A new key and the record to store for it. The key is shown once and kept nowhere. */
export function generateApiKey(): { key: string; record: ApiKeyRecord } {
  const id = randomBytes(6).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  const salt = randomBytes(16).toString("hex");
  return { key: `imk_${id}_${secret}`, record: { id, salt, hash: hashApiSecret(salt, secret) } };
}

/** The key's id, or a 401 saying what a key looks like. Pure. */
export function parseApiKey(key: string): { id: string; secret: string } {
  const match = KEY_PATTERN.exec(key);
  if (match === null) {
    throw new GatewayError(401, "bad_api_key", "the API key is malformed: expected imk_<id>_<secret> as issued");
  }
  return { id: match[1]!, secret: match[2]! };
}

/**
 * The record a presented key matches, or a 401. The same reason for an unknown id and a wrong
 * secret, so the answer does not tell which ids exist. Pure.
 */
export function verifyApiKey<R extends ApiKeyRecord>(key: string, lookup: (id: string) => R | undefined): R {
  const { id, secret } = parseApiKey(key);
  const record = lookup(id);
  const presented = Buffer.from(hashApiSecret(record?.salt ?? "00".repeat(16), secret), "hex");
  const stored = Buffer.from(record?.hash ?? "00".repeat(32), "hex");
  if (record === undefined || !timingSafeEqual(presented, stored)) {
    throw new GatewayError(401, "bad_api_key", "the API key is not valid (revoked, mistyped, or for another gateway)");
  }
  return record;
}

/** The presented key from `Authorization: Bearer <key>` or `X-Api-Key`, if any. Pure. */
export function apiKeyFromHeaders(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === "string" && auth !== "") {
    const match = /^Bearer\s+(\S+)$/i.exec(auth);
    if (match === null) {
      throw new GatewayError(401, "bad_api_key", "Authorization must be 'Bearer <API key>'");
    }
    return match[1];
  }
  const header = headers["x-api-key"];
  if (typeof header === "string" && header !== "") return header;
  return undefined;
}

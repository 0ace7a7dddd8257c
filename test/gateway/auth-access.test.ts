// API keys (salted HMAC, constant-time check), token-bucket math, access policy decisions,
// signed heartbeats and the config schema: pure pieces, no network.
import { expect } from "chai";
import type { Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { checkAccess, factNeeded } from "../../gateway/access.ts";
import { apiKeyFromHeaders, generateApiKey, hashApiSecret, parseApiKey, verifyApiKey } from "../../gateway/api-keys.ts";
import { GatewayConfigError, parseGatewayConfig } from "../../gateway/config.ts";
import { GatewayError } from "../../gateway/errors.ts";
import {
  canonicalJson,
  heartbeatSigner,
  signHeartbeat,
  verifyHeartbeat,
  verifySignedHeartbeat,
  type Heartbeat,
} from "../../gateway/heartbeat.ts";
import { takeToken } from "../../gateway/rate-limit.ts";

const ACCOUNT = "0x00000000000000000000000000000000000000aa" as Address;
const TOKEN = "0x00000000000000000000000000000000000000bb" as Address;

function refusal(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error("expected a GatewayError");
}

async function refusalAsync(fn: () => Promise<unknown>): Promise<GatewayError> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error("expected a GatewayError");
}

describe("gateway API keys", function () {
  it("stores a salted HMAC, never the key, and verifies the key it issued", function () {
    const { key, record } = generateApiKey();
    expect(JSON.stringify(record)).to.not.include(parseApiKey(key).secret);
    expect(record.hash).to.equal(hashApiSecret(record.salt, parseApiKey(key).secret));
    expect(verifyApiKey(key, (id) => (id === record.id ? record : undefined))).to.equal(record);
  });

  it("gives two keys with the same secret different hashes (per-key salt)", function () {
    expect(hashApiSecret("00".repeat(16), "s".repeat(40))).to.not.equal(hashApiSecret("01".repeat(16), "s".repeat(40)));
  });

  it("refuses a wrong secret, an unknown id and a malformed key with a 401 and the same reason for the first two", function () {
    const { key, record } = generateApiKey();
    const lookup = (id: string) => (id === record.id ? record : undefined);
    const wrong = refusal(() => verifyApiKey(`${key.slice(0, -1)}${key.endsWith("A") ? "B" : "A"}`, lookup));
    const unknown = refusal(() => verifyApiKey(generateApiKey().key, lookup));
    expect([wrong.status, wrong.code]).to.deep.equal([401, "bad_api_key"]);
    expect(unknown.message).to.equal(wrong.message);
    const malformed = refusal(() => verifyApiKey("hello", lookup));
    expect(malformed.status).to.equal(401);
    expect(malformed.message).to.match(/imk_<id>_<secret>/);
  });

  it("reads the key from Authorization: Bearer or X-Api-Key, and refuses another Authorization scheme", function () {
    expect(apiKeyFromHeaders({ authorization: "Bearer imk_x" })).to.equal("imk_x");
    expect(apiKeyFromHeaders({ "x-api-key": "imk_y" })).to.equal("imk_y");
    expect(apiKeyFromHeaders({})).to.equal(undefined);
    expect(refusal(() => apiKeyFromHeaders({ authorization: "Basic abc" })).status).to.equal(401);
  });
});

describe("gateway token bucket", function () {
  const limit = { capacity: 3, refillPerSecond: 2 };

  it("lets a full bucket's capacity through, then refuses with the time until the next token", function () {
    let state;
    for (let i = 0; i < 3; i++) {
      const r = takeToken(state, 1_000, limit);
      expect(r.allowed).to.equal(true);
      state = r.state;
    }
    const refused = takeToken(state, 1_000, limit);
    expect(refused.allowed).to.equal(false);
    expect(refused.retryAfterMs).to.equal(500);
  });

  it("refills at the rate, never above capacity, and ignores a clock going backwards", function () {
    const empty = { tokens: 0, updatedMs: 1_000 };
    expect(takeToken(empty, 1_499, limit).allowed).to.equal(false);
    expect(takeToken(empty, 1_500, limit).allowed).to.equal(true);
    expect(takeToken(empty, 100_000, limit).state.tokens).to.equal(2);
    expect(takeToken({ tokens: 0.5, updatedMs: 5_000 }, 4_000, limit)).to.deep.include({
      allowed: false,
      retryAfterMs: 250,
    });
  });
});

describe("gateway access policy", function () {
  it("lets anyone call a public version", function () {
    expect(factNeeded({ kind: "public", token: TOKEN, threshold: 0n })).to.equal("none");
    checkAccess({ kind: "public", token: TOKEN, threshold: 0n }, ACCOUNT, {}, "m");
  });

  it("needs the allowlist bit for an allowlist version", function () {
    const policy = { kind: "allowlist" as const, token: TOKEN, threshold: 0n };
    expect(factNeeded(policy)).to.equal("allowlist");
    checkAccess(policy, ACCOUNT, { allowlisted: true }, "m");
    const e = refusal(() => checkAccess(policy, ACCOUNT, { allowlisted: false }, "m"));
    expect([e.status, e.code]).to.deep.equal([403, "access_denied"]);
    expect(e.message).to.include(ACCOUNT);
  });

  it("needs a balance at or above the threshold for ERC-20 and ERC-721 holder versions", function () {
    for (const kind of ["erc20-holders", "erc721-holders"] as const) {
      const policy = { kind, token: TOKEN, threshold: 5n };
      expect(factNeeded(policy)).to.equal("balance");
      checkAccess(policy, ACCOUNT, { balance: 5n }, "m");
      const e = refusal(() => checkAccess(policy, ACCOUNT, { balance: 4n }, "m"));
      expect(e.status).to.equal(403);
      expect(e.message).to.include("holds 4");
      expect(refusal(() => checkAccess(policy, ACCOUNT, {}, "m")).status).to.equal(403);
    }
  });
});

describe("gateway heartbeats", function () {
  const node = privateKeyToAccount(generatePrivateKey());
  const NOW = 1_700_000_000_000;
  const rules = { chainId: 31337, nowMs: NOW, maxAgeMs: 10_000, maxFutureMs: 2_000 };
  const heartbeat = (over: Partial<Heartbeat> = {}) => ({
    chain_id: 31337,
    node: node.address,
    endpoint: "http://127.0.0.1:9001",
    models: [1],
    load: 0.25,
    hardware: { cpus: 2, memory_bytes: 2 ** 30, gpus: [] },
    timestamp: NOW - 100,
    ...over,
  });

  it("signs canonical JSON (sorted keys, no spaces) that any key order reproduces", function () {
    expect(canonicalJson({ b: [2, { d: 1, c: "x" }], a: null })).to.equal('{"a":null,"b":[2,{"c":"x","d":1}]}');
  });

  it("accepts the node's own signed heartbeat", async function () {
    const signed = await signHeartbeat(node, heartbeat());
    const verified = await verifyHeartbeat(JSON.parse(JSON.stringify(signed)), rules);
    expect(verified.node).to.equal(node.address);
    expect(verified.models).to.deep.equal([1]);
  });

  it("keeps the heartbeat as the node signed it (a lowercase address too), for anyone to check later", async function () {
    const sent = await signHeartbeat(node, heartbeat({ node: node.address.toLowerCase() as Address }));
    const { heartbeat: parsed, signed } = await verifySignedHeartbeat(JSON.parse(JSON.stringify(sent)), rules);
    expect(parsed.node).to.equal(node.address);
    expect(signed.heartbeat.node).to.equal(node.address.toLowerCase());
    expect(await heartbeatSigner(JSON.parse(JSON.stringify(signed)) as typeof signed)).to.equal(node.address);
    expect(await heartbeatSigner({ ...signed, heartbeat: { ...signed.heartbeat, load: 1 } })).to.not.equal(
      node.address,
    );
  });

  it("refuses a forged, altered, stale, future, other-chain or malformed heartbeat with a 4xx reason", async function () {
    const other = privateKeyToAccount(generatePrivateKey());
    const forged = await signHeartbeat(other, heartbeat());
    expect((await refusalAsync(() => verifyHeartbeat(forged, rules))).code).to.equal("bad_signature");
    const altered = await signHeartbeat(node, heartbeat());
    altered.heartbeat.endpoint = "http://127.0.0.1:6666";
    expect((await refusalAsync(() => verifyHeartbeat(altered, rules))).status).to.equal(401);
    const stale = await signHeartbeat(node, heartbeat({ timestamp: NOW - 10_001 }));
    expect((await refusalAsync(() => verifyHeartbeat(stale, rules))).code).to.equal("stale_heartbeat");
    const future = await signHeartbeat(node, heartbeat({ timestamp: NOW + 2_001 }));
    expect((await refusalAsync(() => verifyHeartbeat(future, rules))).code).to.equal("future_heartbeat");
    const chain = await signHeartbeat(node, heartbeat({ chain_id: 1 }));
    expect((await refusalAsync(() => verifyHeartbeat(chain, rules))).code).to.equal("wrong_chain");
    for (const body of [
      null,
      {},
      { heartbeat: heartbeat({ load: 2 }), signature: forged.signature },
      { heartbeat: heartbeat(), signature: "0x12" },
    ]) {
      const e = await refusalAsync(() => verifyHeartbeat(body, rules));
      expect(e.status, JSON.stringify(body)).to.equal(400);
      expect(e.message).to.not.equal("");
    }
  });
});

describe("gateway config", function () {
  const base = {
    listen: { port: 0 },
    chain: { rpc_url: "http://127.0.0.1:8545", deployment: "deployments/localhost.json" },
    redis: { url: "redis://127.0.0.1:6379" },
  };

  it("fills defaults and resolves paths against the config's directory", function () {
    const c = parseGatewayConfig(base, "/srv/gw");
    expect(c.chain.deployment).to.equal("/srv/gw/deployments/localhost.json");
    expect(c.routing.max_attempts).to.equal(3);
    expect(c.rate_limit).to.deep.equal({ capacity: 100, refill_per_second: 50 });
  });

  it("names every wrong field on its own line", function () {
    try {
      parseGatewayConfig(
        { ...base, listen: { port: 99999 }, redis: { url: "localhost" }, api_keys: [{ id: "x" }], extra: 1 },
        "/srv",
        "gw.yaml",
      );
      expect.fail("expected a config error");
    } catch (error) {
      expect(error).to.be.instanceOf(GatewayConfigError);
      const paths = (error as GatewayConfigError).issues.map((i) => i.path);
      expect(paths).to.include.members([
        "listen.port",
        "redis.url",
        "api_keys.0.salt",
        "api_keys.0.client",
        "(document)",
      ]);
      expect((error as Error).message).to.match(/^invalid gateway config gw\.yaml:/);
    }
  });

  it("refuses two keys with one id", function () {
    const { record } = generateApiKey();
    const key = { ...record, client: { private_key_env: "CLIENT_KEY" } };
    expect(() => parseGatewayConfig({ ...base, api_keys: [key, key] }, "/srv")).to.throw(/duplicate key id/);
  });
});

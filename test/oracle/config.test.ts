// Oracle configuration: validated once, every wrong setting named, the key only from the
// environment or an encrypted keystore.
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { encryptKeystoreJsonSync } from "ethers";

import { OracleConfigError } from "../../oracle/errors.ts";
import { loadOracleConfig, parseOracleConfig } from "../../oracle/config.ts";

const KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const contracts = {
  nodeStaking: "0x0000000000000000000000000000000000000001",
  modelRegistry: "0x0000000000000000000000000000000000000002",
  paymentEscrow: "0x0000000000000000000000000000000000000003",
  epochSettlement: "0x0000000000000000000000000000000000000004",
  rewardClaims: "0x0000000000000000000000000000000000000005",
};
const base = { rpcUrl: "http://127.0.0.1:8545", redisUrl: "redis://127.0.0.1:6379", contracts };

describe("oracle config", function () {
  it("fills the defaults and derives the oracle address from the key", function () {
    const config = parseOracleConfig(base, { INFRAMESH_ORACLE_KEY: KEY });
    expect(config).to.deep.include({
      oracleAddress: ADDRESS,
      workerConcurrency: 16,
      port: 7310,
      roles: ["api", "worker", "settlement"],
      expiryGraceSeconds: 30,
    });
  });

  it("names every wrong setting at once", function () {
    const bad = { ...base, rpcUrl: "ftp://x", redisUrl: "http://x", workerConcurrency: 0, extra: 1 };
    expect(() => parseOracleConfig(bad, { INFRAMESH_ORACLE_KEY: KEY }))
      .to.throw(OracleConfigError)
      .with.property("message")
      .that.matches(/rpcUrl: expected an http\(s\) URL/)
      .and.matches(/redisUrl: expected redis:\/\/ or rediss:\/\//)
      .and.matches(/workerConcurrency/)
      .and.matches(/extra/);
  });

  it("refuses fee bps above 100%, a committee threshold above its size, and no contracts", function () {
    const fees = { ...base, feeSchedule: { treasury: ADDRESS, protocolFeeBps: 6_000, royaltyBps: 5_000 } };
    expect(() => parseOracleConfig(fees, { INFRAMESH_ORACLE_KEY: KEY })).to.throw(/exceeds 10000/);
    const committee = {
      ...base,
      committee: { members: [{ address: ADDRESS, url: "http://127.0.0.1:1" }], threshold: 2 },
    };
    expect(() => parseOracleConfig(committee, { INFRAMESH_ORACLE_KEY: KEY })).to.throw(/threshold exceeds/);
    const { contracts: _c, ...none } = base;
    expect(() => parseOracleConfig(none, { INFRAMESH_ORACLE_KEY: KEY })).to.throw(/set deployment/);
  });

  it("needs a well-formed key, and says where to put it", function () {
    expect(() => parseOracleConfig(base, {})).to.throw(/no oracle key: set INFRAMESH_ORACLE_KEY/);
    expect(() => parseOracleConfig(base, { INFRAMESH_ORACLE_KEY: "0x1234" })).to.throw(/64 hex digits/);
  });

  it("reads a YAML file, lets the environment win, and decrypts a keystore", async function () {
    const dir = await mkdtemp(path.join(tmpdir(), "oracle-config-"));
    const file = path.join(dir, "oracle.yaml");
    await writeFile(
      file,
      `rpcUrl: http://127.0.0.1:1\nredisUrl: redis://127.0.0.1:6379\nport: 9000\ncontracts:\n${Object.entries(contracts)
        .map(([k, v]) => `  ${k}: "${v}"`)
        .join("\n")}\n`,
    );
    const keystore = path.join(dir, "key.json");
    await writeFile(
      keystore,
      encryptKeystoreJsonSync({ address: ADDRESS, privateKey: KEY }, "pw", { scrypt: { N: 2 ** 10 } }),
    );
    const config = loadOracleConfig({
      INFRAMESH_ORACLE_CONFIG: file,
      INFRAMESH_ORACLE_PORT: "9100",
      INFRAMESH_ORACLE_KEYSTORE: keystore,
      INFRAMESH_ORACLE_KEYSTORE_PASSWORD: "pw",
    });
    expect(config.port).to.equal(9100);
    expect(config.oracleAddress).to.equal(ADDRESS);
    expect(() =>
      loadOracleConfig({
        INFRAMESH_ORACLE_CONFIG: file,
        INFRAMESH_ORACLE_KEYSTORE: keystore,
        INFRAMESH_ORACLE_KEYSTORE_PASSWORD: "no",
      }),
    ).to.throw(/cannot decrypt the keystore/);
    expect(() => loadOracleConfig({ INFRAMESH_ORACLE_CONFIG: path.join(dir, "missing.yaml") })).to.throw(
      /cannot read config file/,
    );
    expect(() =>
      loadOracleConfig({ INFRAMESH_ORACLE_CONFIG: file, INFRAMESH_ORACLE_PORT: "abc", INFRAMESH_ORACLE_KEY: KEY }),
    ).to.throw(/INFRAMESH_ORACLE_PORT="abc" is not a number/);
  });
});

// The node agent's config, keystore and outbox rules: pure checks plus the real keystore format
// (ethers v6 scrypt JSON) and a real PGlite outbox.
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { Wallet } from "ethers";
import pg from "pg";

import { AgentConfigError, loadAgentConfig, parseAgentConfigYaml, publicEndpoint } from "../../node-agent/config.ts";
import { createKeystore, KeystoreError, keystorePassword, openKeystore } from "../../node-agent/keystore.ts";
import {
  classifyOracleAnswer,
  Outbox,
  openOutboxDatabase,
  retryDelayMs,
  type SqlClient,
} from "../../node-agent/outbox.ts";

const GOOD = `
chain:
  rpc_url: http://127.0.0.1:8545/
  network: localhost
listen: { host: 127.0.0.1, port: 8700 }
models:
  - model: simplenet
  - model: 2
    bundle: ./bundles/two
oracles: [http://127.0.0.1:8800]
data_dir: ./data
keystore: ./operator.json
`;

function issuesOf(text: string): string[] {
  try {
    parseAgentConfigYaml(text, "/etc/inframesh");
  } catch (error) {
    expect(error).to.be.instanceOf(AgentConfigError);
    return (error as AgentConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error("expected the config to be refused");
}

describe("node agent config", function () {
  it("accepts a good config, fills defaults and resolves paths against the file's directory", function () {
    const config = parseAgentConfigYaml(GOOD, "/etc/inframesh");
    expect(config.chain.rpc_url).to.equal("http://127.0.0.1:8545");
    expect(config.runtime).to.equal("process");
    expect(config.job_timeout_ms).to.equal(10_000);
    expect(config.blob_peers).to.deep.equal([]);
    expect(config.data_dir).to.equal("/etc/inframesh/data");
    expect(config.keystore).to.equal("/etc/inframesh/operator.json");
    expect(config.models).to.deep.equal([{ model: "simplenet" }, { model: 2, bundle: "/etc/inframesh/bundles/two" }]);
    expect(publicEndpoint(config)).to.equal("http://127.0.0.1:8700");
    expect(publicEndpoint({ ...config, endpoint: "https://node.example" })).to.equal("https://node.example");
  });

  const bad: [string, string, string][] = [
    ["a missing field", GOOD.replace("data_dir: ./data\n", ""), "data_dir: is required"],
    ["an unknown field", `${GOOD}colour: blue\n`, "(document): unknown field(s) colour"],
    [
      "a bad RPC URL",
      GOOD.replace("http://127.0.0.1:8545/", "localhost:8545"),
      "chain.rpc_url: expected an http(s) URL",
    ],
    [
      "both network and deployment",
      GOOD.replace("network: localhost", "network: localhost\n  deployment: ./d.json"),
      "chain: give exactly one of network",
    ],
    ["a port out of range", GOOD.replace("port: 8700", "port: 70000"), "listen.port: expected 0..65535"],
    ["no models", GOOD.replace(/models:[\s\S]*?oracles/, "models: []\noracles"), "models: serve at least one model"],
    ["a bad model name", GOOD.replace("model: simplenet", "model: Simple Net"), "models.0.model:"],
    ["an unknown runtime", `${GOOD}runtime: vm\n`, "runtime: expected one of process, docker"],
    ["no oracles", GOOD.replace("oracles: [http://127.0.0.1:8800]", "oracles: []"), "oracles: give at least one"],
    ["a duplicated key", `${GOOD}data_dir: ./other\n`, "(yaml): Map keys must be unique"],
  ];
  for (const [what, text, issue] of bad) {
    it(`names ${what}`, function () {
      expect(issuesOf(text).join("\n")).to.include(issue);
    });
  }

  it("reports every wrong field at once", function () {
    const issues = issuesOf(GOOD.replace("port: 8700", "port: -1").replace("./data", "''"));
    expect(issues).to.have.length(2);
  });

  it("names a config file that cannot be read", async function () {
    try {
      await loadAgentConfig("/nonexistent/node-agent.yaml");
      expect.fail("expected an error");
    } catch (error) {
      expect((error as Error).message).to.include("/nonexistent/node-agent.yaml");
      expect((error as Error).message).to.include("create it with infra node init");
    }
  });
});

describe("operator keystore", function () {
  this.timeout(60_000);
  let dir: string;
  before(async function () {
    dir = await mkdtemp(path.join(tmpdir(), "inframesh-keystore-"));
  });
  after(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it("encrypts a new key (mode 0600, no plaintext), opens it with the password, refuses to overwrite", async function () {
    const file = path.join(dir, "operator.json");
    const { address } = await createKeystore(file, "a long password");
    expect((await stat(file)).mode & 0o777).to.equal(0o600);
    const text = await readFile(file, "utf8");
    const json = JSON.parse(text) as { Crypto?: { kdf: string } };
    expect(json.Crypto?.kdf).to.equal("scrypt");
    const { privateKey } = await Wallet.fromEncryptedJson(text, "a long password");
    expect(text).to.not.include(privateKey.slice(2));
    const account = await openKeystore(file, "a long password");
    expect(account.address).to.equal(address);
    await expectKeystoreError(createKeystore(file, "a long password"), /already exists: refusing to overwrite/);
    await expectKeystoreError(openKeystore(file, "wrong password"), /wrong password for the keystore/);
  });

  it("refuses a short password, a missing file and a file that is not a keystore", async function () {
    await expectKeystoreError(createKeystore(path.join(dir, "short.json"), "short"), /at least 8 characters/);
    await expectKeystoreError(openKeystore(path.join(dir, "missing.json"), "whatever1"), /cannot read the keystore/);
    await writeFile(path.join(dir, "junk.json"), "{}");
    await expectKeystoreError(openKeystore(path.join(dir, "junk.json"), "whatever1"), /not a valid encrypted JSON/);
  });

  it("takes the password from the environment, else the password file", async function () {
    expect(await keystorePassword({ INFRAMESH_KEYSTORE_PASSWORD: "from env" })).to.equal("from env");
    const file = path.join(dir, "password.txt");
    await writeFile(file, "from file\nignored\n");
    expect(await keystorePassword({}, file)).to.equal("from file");
    await expectKeystoreError(keystorePassword({}), /set INFRAMESH_KEYSTORE_PASSWORD/);
    await writeFile(file, "");
    await expectKeystoreError(keystorePassword({}, file), /is empty/);
  });
});

async function expectKeystoreError(promise: Promise<unknown>, message: RegExp): Promise<void> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(KeystoreError);
    expect((error as Error).message).to.match(message);
    return;
  }
  expect.fail(`expected a KeystoreError matching ${message}`);
}

describe("receipt outbox", function () {
  this.timeout(60_000);
  let dir: string;
  before(async function () {
    dir = await mkdtemp(path.join(tmpdir(), "inframesh-outbox-"));
  });
  after(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it("classifies oracle answers: 2xx and 409 delivered, other 4xx rejected, 5xx/408/429 retried", function () {
    expect(classifyOracleAnswer(202, "")).to.deep.equal({ kind: "delivered" });
    expect(classifyOracleAnswer(200, "")).to.deep.equal({ kind: "delivered" });
    expect(classifyOracleAnswer(409, "dup")).to.deep.equal({ kind: "delivered" });
    expect(classifyOracleAnswer(400, "bad")).to.deep.equal({ kind: "rejected", reason: "400 bad" });
    expect(classifyOracleAnswer(503, "x").kind).to.equal("retry");
    expect(classifyOracleAnswer(429, "x").kind).to.equal("retry");
    expect(classifyOracleAnswer(408, "x").kind).to.equal("retry");
    expect([1, 2, 3, 20].map(retryDelayMs)).to.deep.equal([500, 1000, 2000, 60_000]);
  });

  /** The same rules on PGlite (always) and on PostgreSQL (when DATABASE_URL is set). */
  async function claimsOnceAndSurvivesReopen(open: () => Promise<SqlClient>): Promise<void> {
    const oracles = ["http://a", "http://b"];
    let db = await open();
    let outbox = new Outbox(db, oracles);
    expect(await outbox.add("0x01", '{"r":1}', 1_000)).to.equal(true);
    expect(await outbox.add("0x01", '{"r":2}', 1_000)).to.equal(false);
    expect(await outbox.receipt("0x01")).to.equal('{"r":1}');
    const due = await outbox.due(1_000, 10);
    expect(due.map((d) => d.oracle)).to.deep.equal(["http://a", "http://b"]);
    await outbox.record(due[0]!, { kind: "delivered" }, 1_000);
    await outbox.record(due[1]!, { kind: "retry", reason: "503" }, 1_000);
    expect(await outbox.due(1_000, 10)).to.deep.equal([]);
    await db.close();

    db = await open();
    outbox = new Outbox(db, oracles);
    const later = await outbox.due(1_000 + retryDelayMs(1), 10);
    expect(later).to.have.length(1);
    expect(later[0]).to.deep.include({ oracle: "http://b", attempts: 1, lastError: "503", receipt: '{"r":1}' });
    expect(await outbox.counts()).to.deep.equal({ pending: 1, delivered: 1, rejected: 0 });
    await db.close();
  }

  it("claims a job id once, keeps deliveries per oracle, and survives a reopen (PGlite)", async function () {
    await claimsOnceAndSurvivesReopen(() => openOutboxDatabase(dir));
  });

  it("does the same on PostgreSQL (DATABASE_URL, else 127.0.0.1:5432)", async function () {
    const url =
      process.env.DATABASE_URL === undefined || process.env.DATABASE_URL === ""
        ? "postgres://postgres@127.0.0.1:5432/test"
        : process.env.DATABASE_URL;
    const admin = new pg.Client({ connectionString: url });
    try {
      await admin.connect();
    } catch (error) {
      console.log(`    skipped: no PostgreSQL at ${url} (${(error as Error).message}); set DATABASE_URL`);
      this.skip();
    }
    // A schema of its own, so parallel runs and other services' tables never meet.
    const schema = `outbox_test_${randomBytes(6).toString("hex")}`;
    await admin.query(`CREATE SCHEMA ${schema}`);
    try {
      const scoped = `${url}${url.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
      await claimsOnceAndSurvivesReopen(() => openOutboxDatabase(dir, scoped));
    } finally {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    }
  });
});

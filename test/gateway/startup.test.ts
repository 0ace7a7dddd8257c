// What stops a gateway from starting, with a message saying what to fix: an unreadable or
// malformed config file, a custodial client key that cannot be unlocked.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { Wallet } from "ethers";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { ClientKeyError, KEYSTORE_PASSWORD_ENV, openClientAccount } from "../../gateway/client-accounts.ts";
import { GatewayConfigError, loadGatewayConfig } from "../../gateway/config.ts";

describe("gateway start-up checks", function () {
  this.timeout(60_000);
  let dir: string;

  before(async function () {
    dir = await mkdtemp(path.join(tmpdir(), "inframesh-gateway-startup-"));
  });

  after(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a YAML config and resolves its paths against the file's directory", async function () {
    const file = path.join(dir, "gateway.yaml");
    await writeFile(
      file,
      "listen: { port: 8080 }\nchain: { rpc_url: http://127.0.0.1:8545, deployment: d/localhost.json }\nredis: { url: redis://127.0.0.1:6379 }\n",
    );
    const config = await loadGatewayConfig(file);
    expect(config.chain.deployment).to.equal(path.join(dir, "d", "localhost.json"));
    expect(config.listen).to.deep.equal({ host: "127.0.0.1", port: 8080 });
  });

  it("names a missing file, bad YAML and a duplicate key", async function () {
    const expectError = async (file: string, pattern: RegExp) => {
      try {
        await loadGatewayConfig(file);
        expect.fail("expected a config error");
      } catch (error) {
        expect(error).to.be.instanceOf(GatewayConfigError);
        expect((error as Error).message).to.match(pattern);
      }
    };
    await expectError(path.join(dir, "nope.yaml"), /\(file\): cannot be read/);
    const bad = path.join(dir, "bad.yaml");
    await writeFile(bad, "listen: { port: 1\n");
    await expectError(bad, /\(yaml\)/);
    const dup = path.join(dir, "dup.yaml");
    await writeFile(dup, "listen: { port: 1 }\nlisten: { port: 2 }\n");
    await expectError(dup, /\(yaml\)/);
  });

  it("unlocks a client key from an environment variable or an encrypted keystore", async function () {
    const key = generatePrivateKey();
    const account = privateKeyToAccount(key);
    expect((await openClientAccount({ private_key_env: "K" }, "id1", { K: key })).address).to.equal(account.address);
    const keystore = path.join(dir, "client.json");
    await writeFile(keystore, await new Wallet(key).encrypt("a good password"));
    const opened = await openClientAccount({ keystore }, "id2", { [KEYSTORE_PASSWORD_ENV]: "a good password" });
    expect(opened.address).to.equal(account.address);
  });

  it("refuses a missing or malformed key variable, a missing password, a wrong password, a missing keystore", async function () {
    const keystore = path.join(dir, "client.json");
    const cases: [Parameters<typeof openClientAccount>[0], NodeJS.ProcessEnv, RegExp][] = [
      [{ private_key_env: "K" }, {}, /K must hold the client's private key/],
      [{ private_key_env: "K" }, { K: "0x1234" }, /K must hold/],
      [{ keystore }, {}, new RegExp(`set ${KEYSTORE_PASSWORD_ENV}`)],
      [{ keystore }, { [KEYSTORE_PASSWORD_ENV]: "wrong password" }, /cannot unlock keystore .* \(wrong password\?\)/],
      [{ keystore: path.join(dir, "none.json") }, { [KEYSTORE_PASSWORD_ENV]: "x" }, /cannot read keystore/],
    ];
    for (const [client, env, pattern] of cases) {
      try {
        await openClientAccount(client, "kid", env);
        expect.fail(`expected a refusal for ${JSON.stringify(client)}`);
      } catch (error) {
        expect(error).to.be.instanceOf(ClientKeyError);
        expect((error as Error).message).to.match(pattern);
        expect((error as Error).message).to.include("API key kid");
      }
    }
  });
});

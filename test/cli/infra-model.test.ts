// `infra model …` as a user runs it: a child process against its own `hardhat node` (deployed
// with `npx hardhat deploy`), two blob-store peers on loopback, keys from INFRAMESH_PRIVATE_KEY.
//
// Slow (child processes): run alone with `npx hardhat test mocha test/cli/infra-model.test.ts`.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { createPublicClient, http, type PublicClient } from "viem";

import {
  PROJECT_ROOT,
  runHardhat,
  spawnGroup,
  startHardhatNode,
  type LocalChain,
} from "../../scripts/lib/local-chain.ts";
import { startBlobServer, type BlobServer } from "../../sdk/blob/server.ts";
import { loadModel } from "../../sdk/manifest/loader.ts";
import { servingPointerReader } from "../../sdk/models.ts";
import { CLI, runInfra, type Run } from "./run-infra.ts";

const DEPLOYMENT_ID = "local-test-cli";

// Hardhat node's first two dev accounts (public, well-known test keys).
const PUBLISHER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const PUBLISHER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const OTHER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

const modelYaml = (version: string) => `name: cli-model
version: "${version}"
runtime: onnxruntime
entrypoint: model.onnx
resources: { cpu: 1, memory: 512Mi }
input_schema: { type: object }
output_schema: { type: object }
`;

describe("infra model (CLI)", function () {
  this.timeout(240_000);

  let chain: LocalChain;
  let work: string;
  let peers: BlobServer[];
  let env: NodeJS.ProcessEnv;

  const infra = (args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> =>
    runInfra(env, args, extraEnv);

  async function writeRelease(name: string, version: string, bytes: Buffer): Promise<string> {
    const dir = path.join(work, name);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "model.yaml"), modelYaml(version));
    await writeFile(path.join(dir, "model.onnx"), bytes);
    return dir;
  }

  const peerArgs = () => peers.flatMap((p) => ["--peer", p.url]);
  const peerFiles = async () => (await Promise.all(peers.map((_, i) => readdir(path.join(work, `peer-${i}`))))).flat();

  before(async function () {
    chain = await startHardhatNode();
    work = await mkdtemp(path.join(tmpdir(), "inframesh-cli-test-"));
    env = {
      ...process.env,
      INFRAMESH_RPC_URL: chain.rpcUrl,
      INFRAMESH_DEPLOYMENT_ID: DEPLOYMENT_ID,
      INFRAMESH_DEPLOYMENTS_DIR: work,
      INFRAMESH_PRIVATE_KEY: PUBLISHER_KEY,
      HARDHAT_BUILD_PROFILE: "default",
    };
    delete env.HH_TEST;
    const deployed = await runHardhat(["deploy", "--network", "localhost"], { env });
    expect(deployed.code, deployed.output).to.equal(0);
    peers = [];
    for (let i = 0; i < 2; i++) peers.push(await startBlobServer({ dir: path.join(work, `peer-${i}`) }));
  });

  after(async function () {
    for (const peer of peers ?? []) await peer.close();
    await chain?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
    await rm(path.join(PROJECT_ROOT, "ignition", "deployments", DEPLOYMENT_ID), { recursive: true, force: true });
  });

  it("prints its help with the pinned Node", async function () {
    const run = await infra(["model", "--help"]);
    expect(run.code).to.equal(0);
    expect(run.stdout).to.match(/register <name>/);
    expect(run.stdout).to.match(/publish \[options\] <dir>/);
  });

  it("names a missing deployment file", async function () {
    const run = await infra(["--network", "nowhere", "model", "show", "1"]);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.include('infra: no deployment for network "nowhere": ');
    expect(run.stderr).to.include("nowhere.json not found (deploy first: npx hardhat deploy --network nowhere)");
  });

  it("registers a model and refuses its name twice", async function () {
    const run = await infra(["--json", "model", "register", "cli-model"]);
    expect(run.code, run.stderr).to.equal(0);
    expect(JSON.parse(run.stdout)).to.deep.include({ modelId: "1", name: "cli-model", publisher: PUBLISHER });
    const again = await infra(["model", "register", "cli-model"]);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.include('infra: model name "cli-model" is taken by model 1');
  });

  it("refuses to sign without a keystore or INFRAMESH_PRIVATE_KEY", async function () {
    const run = await infra(["model", "register", "other"], { INFRAMESH_PRIVATE_KEY: "" });
    expect(run.code).to.equal(1);
    expect(run.stderr).to.include(
      "infra: no signing key: pass --keystore <file> (or set INFRAMESH_KEYSTORE), or set INFRAMESH_PRIVATE_KEY",
    );
  });

  it("refuses a wrong publisher before writing or uploading anything", async function () {
    const dir = await writeRelease("release-wrong", "1.0.0", randomBytes(300_000));
    const run = await infra(["model", "publish", dir, ...peerArgs()], { INFRAMESH_PRIVATE_KEY: OTHER_KEY });
    expect(run.code).to.equal(1);
    expect(run.stderr).to.match(
      new RegExp(
        `infra: wrong publisher: model 1 \\("cli-model"\\) is published by ${PUBLISHER}, not by 0x70997970`,
        "i",
      ),
    );
    expect(await readdir(dir)).to.deep.equal(["model.onnx", "model.yaml"]);
    expect(await peerFiles()).to.deep.equal([".incoming", ".incoming"]);
  });

  it("refuses to publish a model nobody registered", async function () {
    const dir = await writeRelease("release-unknown", "1.0.0", randomBytes(1_000));
    await writeFile(path.join(dir, "model.yaml"), modelYaml("1.0.0").replace("cli-model", "nobody-model"));
    const run = await infra(["model", "publish", dir, ...peerArgs()]);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.include('infra: unknown model "nobody-model": register it with infra model register');
  });

  let firstManifest: string;
  let firstWeights: Buffer;

  it("publishes a release: shards, uploads, publishVersion and setMatureModel; a fresh loader rebuilds it", async function () {
    firstWeights = randomBytes(300_000);
    const dir = await writeRelease("release-1", "1.0.0", firstWeights);
    const run = await infra(["--json", "model", "publish", dir, ...peerArgs(), "--price", "7"]);
    expect(run.code, run.stderr).to.equal(0);
    const result = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(result).to.deep.include({ modelId: "1", version: "1.0.0", versionNumber: "0", shards: 14, price: "7" });
    expect(result.mature).to.have.property("transaction");
    expect(result.uploads).to.equal(2 + 14 * 2);
    firstManifest = result.manifestHash as string;
    expect(await readFile(path.join(dir, "blobs", firstManifest))).to.have.length.above(0);

    const publicClient = createPublicClient({ transport: http(chain.rpcUrl) }) as PublicClient;
    const record = JSON.parse(await readFile(path.join(work, "localhost.json"), "utf8")) as {
      contracts: { modelRegistry: { address: `0x${string}` } };
    };
    const loaded = await loadModel({
      modelId: 1n,
      readPointer: servingPointerReader({ publicClient, modelRegistry: record.contracts.modelRegistry.address }),
      peers: peers.map((p) => p.url),
      cacheDir: path.join(work, "fresh-cache"),
    });
    expect(loaded.manifestHash).to.equal(firstManifest);
    expect((await readFile(loaded.weightsPath)).equals(firstWeights)).to.equal(true);
  });

  it("shows a model by name or id, as text and as JSON", async function () {
    const json = await infra(["--json", "model", "show", "cli-model"]);
    expect(json.code, json.stderr).to.equal(0);
    const shown = JSON.parse(json.stdout) as { serving: Record<string, unknown> } & Record<string, unknown>;
    expect(shown).to.deep.include({ modelId: "1", name: "cli-model", publisher: PUBLISHER, versionCount: "1" });
    expect(shown.serving).to.deep.include({
      versionNumber: "0",
      version: "1.0.0",
      manifestHash: firstManifest,
      shardCount: 14,
      price: "7",
    });

    const text = await infra(["model", "show", "1"]);
    expect(text.code, text.stderr).to.equal(0);
    expect(text.stdout).to.match(/^serving +1\.0\.0 \(version #0\)$/m);
    expect(text.stdout).to.match(new RegExp(`^manifest hash +${firstManifest}$`, "m"));
  });

  it("names an unknown model", async function () {
    for (const [ref, message] of [
      ["99", "infra: unknown model 99"],
      ["no-such-model", 'infra: unknown model "no-such-model"'],
    ] as const) {
      const run = await infra(["model", "show", ref]);
      expect(run.code).to.equal(1);
      expect(run.stderr).to.include(message);
    }
  });

  it("publishes without maturing, then points the model back and forth with mature", async function () {
    const weights = Buffer.concat([firstWeights, Buffer.from("v2")]);
    const dir = await writeRelease("release-2", "2.0.0", weights);
    const run = await infra(["--json", "model", "publish", dir, ...peerArgs(), "--no-mature", "--price", "9"]);
    expect(run.code, run.stderr).to.equal(0);
    const second = JSON.parse(run.stdout) as { manifestHash: string; mature: unknown };
    expect(second.mature).to.equal(null);
    const serving = async () =>
      (JSON.parse((await infra(["--json", "model", "show", "1"])).stdout) as { serving: { versionNumber: string } })
        .serving;
    expect((await serving()).versionNumber).to.equal("0");

    const matured = await infra(["model", "mature", "cli-model", second.manifestHash]);
    expect(matured.code, matured.stderr).to.equal(0);
    expect(matured.stdout).to.include(`now serves version #1 (manifest ${second.manifestHash}) at price 9`);
    expect(await serving()).to.deep.include({ versionNumber: "1", version: "2.0.0", price: "9" });

    const back = await infra(["--json", "model", "mature", "1", `0x${firstManifest}`, "--price", "3"]);
    expect(back.code, back.stderr).to.equal(0);
    expect(JSON.parse(back.stdout)).to.deep.include({ versionNumber: "0", price: "3" });
  });

  it("serves a blob directory on loopback until stopped", async function () {
    const group = spawnGroup(
      process.execPath,
      [CLI, "--json", "blob", "serve", path.join(work, "served"), "--port", "0"],
      {
        env,
      },
    );
    try {
      let url: string | undefined;
      for (let i = 0; i < 100 && url === undefined; i++) {
        url = /"url": "(http:\/\/127\.0\.0\.1:\d+)"/.exec(group.output())?.[1];
        if (url === undefined) await new Promise((r) => setTimeout(r, 100));
      }
      expect(url, group.output()).to.be.a("string");
      const body = Buffer.from("a blob");
      const hash = createHash("sha256").update(body).digest("hex");
      expect((await fetch(`${url}/blob/${hash}`, { method: "PUT", body })).status).to.equal(201);
      expect(Buffer.from(await (await fetch(`${url}/blob/${hash}`)).arrayBuffer()).equals(body)).to.equal(true);
    } finally {
      await group.stop();
    }
    expect((await group.exited).code).to.equal(0);
  });

  it("refuses mature with an unpublished manifest, a bad hash, or another publisher's key", async function () {
    const unknown = createHash("sha256").update("never published").digest("hex");
    const run = await infra(["model", "mature", "1", unknown]);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.include(`infra: model 1 has no published version with manifest ${unknown}`);

    const bad = await infra(["model", "mature", "1", "abc"]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.include('infra: manifest hash must be 64 hex characters, got "abc"');

    const wrong = await infra(["model", "mature", "1", firstManifest], { INFRAMESH_PRIVATE_KEY: OTHER_KEY });
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr).to.include("infra: wrong publisher: model 1");
  });
});

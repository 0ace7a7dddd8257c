// `infra infer` as a client runs it: a child process against a real inference network (hardhat
// node with the contracts deployed and simplenet published, a node agent serving it with
// onnxruntime, a gateway on a private Redis). The client signs its own work units and pays from
// its payment-escrow deposit, or calls with a gateway API key; the answer is verified first.
//
// Slow (child processes): run alone with `npx hardhat test mocha test/cli/infra-infer.test.ts`.
import { writeFile } from "node:fs/promises";
import path from "node:path";

import { expect } from "chai";
import type { Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { generateApiKey } from "../../gateway/api-keys.ts";
import type { Gateway } from "../../gateway/server.ts";
import { decodeOutput, inputBytes, verifyAnswer, type GatewayAnswer } from "../../scripts/cli/infer.ts";
import { freePort, rpc } from "../../scripts/lib/local-chain.ts";
import {
  SIMPLENET_PRICE,
  startInferenceNetwork,
  TOKEN,
  type InferenceNetwork,
} from "../../scripts/lib/inference-network.ts";
import {
  hashWorkUnit,
  inframeshDomain,
  payloadHash,
  recoverProofOfServingSigner,
  signProofOfServing,
  type WorkUnit,
} from "../../sdk/eip712.ts";
import {
  proofOfServingJson,
  proofOfServingJsonSchema,
  proofOfServingOf,
  type ProofOfServingJson,
} from "../../sdk/receipt.ts";
import { readEscrowAccount } from "../../sdk/escrow.ts";
import { transferStakeToken } from "../../sdk/staking.ts";
import { runInfra, type Run } from "./run-infra.ts";

const INPUT = Array.from({ length: 16 }, (_, i) => i / 4 - 2);

describe("infra infer (pure parts)", function () {
  it("sends a JSON array as {input: [...]}, an object as written, and refuses anything else", function () {
    expect(Buffer.from(inputBytes("[1, 2.5]", "--input")).toString()).to.equal('{"input":[1,2.5]}');
    expect(Buffer.from(inputBytes('{"input": [3]}', "--input")).toString()).to.equal('{"input":[3]}');
    expect(() => inputBytes("[1,", "--input")).to.throw(/--input is not JSON: give a JSON array/);
    expect(() => inputBytes("7", "in.json")).to.throw(/in\.json must be a JSON array or object, got 7/);
  });

  it("decodes JSON output and leaves other bytes as text", function () {
    expect(decodeOutput(Buffer.from('{"output":[1]}'))).to.deep.equal({ output: [1] });
    expect(decodeOutput(Buffer.from("plain"))).to.equal("plain");
  });

  describe("verifies an answer before it is trusted", function () {
    const domain = inframeshDomain(31337, "0x0000000000000000000000000000000000000001");
    const node = privateKeyToAccount(generatePrivateKey());
    const output = Buffer.from('{"output":[0.5]}');
    const workUnit: WorkUnit = {
      jobId: `0x${"11".repeat(32)}`,
      modelId: 1n,
      modelVersion: 1n,
      inputHash: payloadHash(Buffer.from("in")),
      maxFee: 10n,
      client: privateKeyToAccount(generatePrivateKey()).address,
      expiresAt: 9_999_999_999n,
    };
    const expected = { jobId: workUnit.jobId, workUnitHash: hashWorkUnit(domain, workUnit) };
    const answerBy = async (signer = node, bytes = output): Promise<GatewayAnswer> => {
      const proof = {
        jobId: workUnit.jobId,
        workUnitHash: expected.workUnitHash,
        outputHash: payloadHash(bytes),
        latencyMs: 3,
        node: node.address,
      };
      const signature = await signProofOfServing(signer, domain, proof);
      return {
        output: bytes.toString("base64"),
        job_id: workUnit.jobId,
        node_id: node.address,
        output_hash: proof.outputHash,
        proof_of_serving: proofOfServingJson(proof, { model_id: 1, version: 1 }, signature),
      };
    };

    it("accepts an honest answer", async function () {
      const verified = await verifyAnswer(domain, await answerBy(), expected);
      expect(verified.node).to.equal(node.address);
      expect(verified.output.equals(output)).to.equal(true);
    });

    it("refuses an output that is not the one signed, a proof by another key, another job", async function () {
      const tampered = { ...(await answerBy()), output: Buffer.from('{"output":[9]}').toString("base64") };
      await expectRejects(verifyAnswer(domain, tampered, expected), /the output hashes to 0x[0-9a-f]{64}, the node/);
      const forged = await answerBy(privateKeyToAccount(generatePrivateKey()));
      await expectRejects(verifyAnswer(domain, forged, expected), /not signed by node/);
      await expectRejects(
        verifyAnswer(domain, await answerBy(), { ...expected, jobId: `0x${"22".repeat(32)}` }),
        /the proof is for job 0x1111/,
      );
      await expectRejects(
        verifyAnswer(domain, await answerBy(), { ...expected, workUnitHash: `0x${"33".repeat(32)}` }),
        /another work unit/,
      );
      await expectRejects(
        verifyAnswer(domain, { ...(await answerBy()), proof_of_serving: { nope: 1 } }, expected),
        /proof of serving is malformed/,
      );
    });
  });
});

async function expectRejects(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await promise;
  } catch (error) {
    expect((error as Error).message).to.match(pattern);
    expect((error as Error).message).to.include("not trusted");
    return;
  }
  expect.fail(`expected a rejection matching ${pattern}`);
}

describe("infra infer (CLI, real gateway and agent)", function () {
  this.timeout(300_000);

  let net: InferenceNetwork;
  let gateway: Gateway;
  let beats: { stop(): Promise<void> };
  let env: NodeJS.ProcessEnv;
  let operator: string;
  const clientKey = generatePrivateKey();
  const client = privateKeyToAccount(clientKey);
  const custodialKey = generatePrivateKey();
  const apiKey = generateApiKey();

  const infra = (args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> =>
    runInfra(env, args, extraEnv);

  before(async function () {
    net = await startInferenceNetwork("local-test-cli-infer");
    const op = await net.addOperator(10_000n);
    operator = op.account.address;
    const agent = await net.startAgent(op);
    gateway = await net.startGateway(
      { api_keys: [{ ...apiKey.record, client: { private_key_env: "CLI_TEST_CUSTODIAL_KEY" } }] },
      { env: { CLI_TEST_CUSTODIAL_KEY: custodialKey } },
    );
    beats = net.heartbeats(agent, [gateway.url], 250);
    const deadline = Date.now() + 60_000;
    while ((await gateway.refreshNodes()).length === 0) {
      if (Date.now() > deadline) throw new Error("the gateway never saw the node");
      await new Promise((r) => setTimeout(r, 100));
    }
    await rpc(net.chain.rpcUrl, "hardhat_setBalance", [client.address, "0x3635C9ADC5DEA00000"]);
    await transferStakeToken(net.staking, net.deployer, client.address, 10n * TOKEN);
    env = {
      ...process.env,
      INFRAMESH_RPC_URL: net.chain.rpcUrl,
      INFRAMESH_DEPLOYMENTS_DIR: net.work,
      INFRAMESH_GATEWAY_URL: gateway.url,
      INFRAMESH_PRIVATE_KEY: clientKey,
    };
    delete env.INFRAMESH_KEYSTORE;
    delete env.INFRAMESH_API_KEY;
  });

  after(async function () {
    await beats?.stop();
    await net?.stop();
  });

  const input = JSON.stringify(INPUT);

  it("refuses to call without a deposit, and with too little, saying how much to deposit", async function () {
    const none = await infra(["infer", "simplenet", "--input", input]);
    expect(none.code, none.stderr).to.equal(1);
    expect(none.stderr).to.include(`infra: no deposit: ${client.address} has nothing in the payment escrow`);
    expect(none.stderr).to.include("infra deposit --amount 0.000000000000001");

    const some = await infra(["deposit", "--amount", "0.0000000000000004"]);
    expect(some.code, some.stderr).to.equal(0);
    const short = await infra(["infer", "simplenet", "--input", input]);
    expect(short.code).to.equal(1);
    expect(short.stderr).to.match(
      /insufficient escrow balance: .* has 0\.0000000000000004 INFRA in the payment escrow and a call to simplenet may cost up to 0\.000000000000001 INFRA \(1000 base units\); deposit at least 0\.0000000000000006 INFRA more: infra deposit --amount 0\.0000000000000006/,
    );
    expect(short.stdout).to.equal("");
  });

  it("signs the work unit, prints the output, job, node and the verified proof", async function () {
    expect((await infra(["deposit", "--amount", "1"])).code).to.equal(0);
    const run = await infra(["infer", "simplenet", "--input", input]);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.match(/^output {2}\{"output":\[(-?[0-9.e-]+,){7}-?[0-9.e-]+\]\}\n/);
    expect(run.stdout).to.match(/\njob {5}0x[0-9a-f]{64}\n/);
    expect(run.stdout).to.include(`\nnode    ${operator}\n`);
    expect(run.stdout).to.match(/\nproof {3}signed by the node and verified: output sha256 0x[0-9a-f]{64}\n/);
    expect(run.stdout).to.include(`fee     at most ${SIMPLENET_PRICE} base units, debited from ${client.address}`);
    // Not a terminal: no spinner on stderr.
    expect(run.stderr).to.equal("");
  });

  it("--json: the same answer for scripts, from an @file input, and the proof checks out independently", async function () {
    const file = path.join(net.work, "input.json");
    await writeFile(file, JSON.stringify({ input: INPUT }));
    const run = await infra(["--json", "infer", "simplenet", "--input", `@${file}`]);
    expect(run.code, run.stderr).to.equal(0);
    const json = JSON.parse(run.stdout) as {
      output: { output: number[] };
      node: string;
      client: string;
      verified: boolean;
      jobId: Hex;
      outputHash: Hex;
      proofOfServing: ProofOfServingJson;
      maxFee: string;
    };
    expect(json.output.output).to.have.length(8);
    expect(json).to.include({ node: operator, client: client.address, verified: true, maxFee: "1000" });
    expect(json.proofOfServing.job_id).to.equal(json.jobId);
    expect(json.proofOfServing.output_hash).to.equal(json.outputHash);
    const signer = await recoverProofOfServingSigner(
      net.domain,
      proofOfServingOf({ proof_of_serving: proofOfServingJsonSchema.parse(json.proofOfServing) }),
      json.proofOfServing.signature as Hex,
    );
    expect(signer).to.equal(operator);
    expect(run.stderr).to.equal("");
  });

  it("calls with a gateway API key: no deposit of its own needed", async function () {
    const other = generatePrivateKey();
    const run = await infra(["infer", "simplenet", "--input", input, "--api-key", apiKey.key], {
      INFRAMESH_PRIVATE_KEY: other,
    });
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.include(`node    ${operator}`);
    expect(run.stdout).to.include("debited from the API key's account");
    const bad = await infra(["infer", "simplenet", "--input", input, "--api-key", "imk_nope_nope"]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/^infra: the gateway refused the API key: /);
  });

  it("says what is wrong: input shape, unknown model, fee below price, gateway unreachable, not JSON", async function () {
    const before = await readEscrowAccount(
      {
        publicClient: net.publicClient,
        paymentEscrow: net.record.contracts.paymentEscrow.address,
        paymentToken: net.record.contracts.stakeToken.address,
      },
      client.address,
    );
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [
        ["infer", "simplenet", "--input", "[1, 2]"],
        {},
        /^infra: the model rejected the input: .*"input" has 2 values, expected 16 \(see the input_schema in simplenet's model\.yaml/,
      ],
      [
        ["infer", "nosuch", "--input", input],
        {},
        /^infra: unknown model "nosuch": no such model is registered on this network/,
      ],
      [
        ["infer", "simplenet", "--input", input, "--max-fee", "999"],
        {},
        /^infra: --max-fee 999 is below simplenet's price of 1000 base units per call/,
      ],
      [
        ["infer", "simplenet", "--input", input, "--gateway", `http://127.0.0.1:${await freePort()}`],
        {},
        /^infra: cannot reach the gateway at http:\/\/127\.0\.0\.1:\d+: .*\(is it running\? pass --gateway <url> or set INFRAMESH_GATEWAY_URL\)/,
      ],
      [["infer", "simplenet", "--input", "{oops"], {}, /^infra: --input is not JSON/],
      [
        ["infer", "simplenet", "--input", "@/nonexistent/input.json"],
        {},
        /^infra: cannot read the input file \/nonexistent\/input\.json/,
      ],
      [["infer", "simplenet", "--input", input], { INFRAMESH_PRIVATE_KEY: "" }, /^infra: no signing key/],
    ];
    for (const [args, extra, pattern] of cases) {
      const run = await infra(args, extra);
      expect(run.code, `${args.join(" ")}: ${run.stderr}`).to.equal(1);
      expect(run.stderr, args.join(" ")).to.match(pattern);
      expect(run.stdout, args.join(" ")).to.equal("");
    }
    // Refused calls sent no transaction and moved nothing.
    const after = await readEscrowAccount(
      {
        publicClient: net.publicClient,
        paymentEscrow: net.record.contracts.paymentEscrow.address,
        paymentToken: net.record.contracts.stakeToken.address,
      },
      client.address,
    );
    expect(after.balance).to.equal(before.balance);
  });
});

// simplenet: the file is what build.ts writes, its model.yaml is valid, and two model server
// processes (real onnxruntime-node) give byte-identical outputs for the same input.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";

import { expect } from "chai";
import { pino } from "pino";

import {
  encodeInferInput,
  encodeInferOutput,
  InferInputError,
  MAX_INFER_BODY_BYTES,
  parseInferInput,
} from "../../models/simplenet/contract.ts";
import { buildSimplenet, mulberry32, SIMPLENET_INPUT_SIZE } from "../../models/simplenet/simplenet.ts";
import { ModelProcess, parseListeningLine, restartDelayMs } from "../../node-agent/process-runtime.ts";
import { modelKindOf } from "../../sdk/manifest/release.ts";
import { parseModelYaml } from "../../sdk/manifest/model-yaml.ts";

const DIR = path.join(import.meta.dirname, "..", "..", "models", "simplenet");
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const silent = pino({ level: "silent" });

describe("simplenet model", function () {
  it("regenerates simplenet.onnx byte for byte", async function () {
    const committed = await readFile(path.join(DIR, "simplenet.onnx"));
    const built = buildSimplenet();
    expect(sha256(built)).to.equal(sha256(committed));
    expect(Buffer.compare(Buffer.from(built), committed)).to.equal(0);
  });

  it("has a model.yaml the publisher accepts, naming the onnx file", async function () {
    const descriptor = parseModelYaml(await readFile(path.join(DIR, "model.yaml")));
    expect(descriptor).to.deep.include({ name: "simplenet", version: "1.0.0", runtime: "onnxruntime" });
    expect(descriptor.entrypoint).to.equal("simplenet.onnx");
    expect(modelKindOf(descriptor)).to.equal("onnx");
    expect(descriptor.resources.memory).to.equal(256 * 2 ** 20);
  });

  it("uses a fixed PRNG stream (mulberry32)", function () {
    const a = mulberry32(1);
    const b = mulberry32(1);
    const first = [a(), a(), a()];
    expect([b(), b(), b()]).to.deep.equal(first);
    expect(first.every((x) => x >= 0 && x < 1)).to.equal(true);
    expect(mulberry32(2)()).to.not.equal(first[0]);
  });
});

describe("inference contract (pure)", function () {
  const ok = encodeInferInput(Array.from({ length: 16 }, (_, i) => i / 4));

  it("parses exactly the input size of finite numbers", function () {
    expect(Array.from(parseInferInput(ok, 16))).to.deep.equal(Array.from({ length: 16 }, (_, i) => i / 4));
  });

  const bad: [string, Uint8Array, RegExp][] = [
    ["an empty body", new Uint8Array(), /empty body/],
    ["text that is not JSON", Buffer.from("hello"), /not JSON/],
    ["a JSON array", Buffer.from("[1,2]"), /must be a JSON object/],
    ["an unknown field", Buffer.from('{"input":[],"x":1}'), /unknown field\(s\) x/],
    ["a missing input", Buffer.from("{}"), /"input" must be an array of 16 numbers/],
    ["too few values", encodeInferInput([1, 2]), /has 2 values, expected 16/],
    ["a string value", Buffer.from(`{"input":[${'"1",'.repeat(15)}"1"]}`), /input\[0\] is not a finite number/],
    ["a huge value", encodeInferInput([...Array(15).fill(0), 1e9]), /input\[15\] = 1000000000 is outside/],
    ["an oversized body", new Uint8Array(MAX_INFER_BODY_BYTES + 1), /more than 65536/],
  ];
  for (const [what, body, reason] of bad) {
    it(`refuses ${what} with a reason`, function () {
      expect(() => parseInferInput(body, 16))
        .to.throw(InferInputError)
        .with.property("message")
        .that.matches(reason);
    });
  }

  it("encodes outputs canonically and refuses non-finite ones", function () {
    const bytes = encodeInferOutput(Float32Array.from([0.1, -2, 3.5]));
    expect(Buffer.from(bytes!).toString()).to.equal('{"output":[0.10000000149011612,-2,3.5]}');
    expect(encodeInferOutput(Float32Array.from([1, NaN]))).to.equal(null);
  });

  it("reads the server's listening line and backs off restarts", function () {
    expect(parseListeningLine("noise\nlistening http://127.0.0.1:4321\n")).to.equal("http://127.0.0.1:4321");
    expect(parseListeningLine("listening http://0.0.0.0:1\n")).to.equal(null);
    expect([1, 2, 3, 10].map(restartDelayMs)).to.deep.equal([250, 500, 1000, 10_000]);
  });
});

describe("simplenet model server (two real processes)", function () {
  this.timeout(60_000);
  const servers: ModelProcess[] = [];

  before(async function () {
    for (let i = 0; i < 2; i++) {
      const server = new ModelProcess(
        { name: `simplenet-${i}`, modelPath: path.join(DIR, "simplenet.onnx"), memoryBytes: 256 * 2 ** 20 },
        silent,
      );
      await server.start();
      servers.push(server);
    }
  });
  after(async function () {
    for (const server of servers) await server.stop();
  });

  it("gives the same output bytes in both processes, for many inputs", async function () {
    const next = mulberry32(7);
    for (let n = 0; n < 20; n++) {
      const input = encodeInferInput(Array.from({ length: SIMPLENET_INPUT_SIZE }, () => (next() - 0.5) * 20));
      const [a, b] = await Promise.all(servers.map((s) => s.infer(input, 5_000)));
      expect(a!.status).to.equal(200);
      expect(sha256(a!.body)).to.equal(sha256(b!.body));
      const output = JSON.parse(a!.body.toString()) as { output: number[] };
      expect(output.output).to.have.length(8);
      // Bytes are canonical: re-encoding the float32 values gives the same bytes.
      expect(Buffer.from(encodeInferOutput(Float32Array.from(output.output))!).equals(a!.body)).to.equal(true);
    }
  });

  it("gives a different output for a different input", async function () {
    const a = await servers[0]!.infer(encodeInferInput(Array(16).fill(1)), 5_000);
    const b = await servers[0]!.infer(encodeInferInput(Array(16).fill(2)), 5_000);
    expect(sha256(a.body)).to.not.equal(sha256(b.body));
  });

  it("answers bad input with 400 and a reason", async function () {
    const response = await servers[0]!.infer(Buffer.from('{"input":[1,2,3]}'), 5_000);
    expect(response.status).to.equal(400);
    expect(JSON.parse(response.body.toString())).to.deep.equal({
      error: "bad_input",
      reason: '"input" has 3 values, expected 16',
    });
    const notJson = await servers[0]!.infer(Buffer.from("{"), 5_000);
    expect(notJson.status).to.equal(400);
  });

  it("answers /health and 404/405 for other routes", async function () {
    const url = servers[0]!.url!;
    const health = (await (await fetch(`${url}/health`)).json()) as { status: string; model_sha256: string };
    expect(health.status).to.equal("ok");
    expect(health.model_sha256).to.equal(sha256(await readFile(path.join(DIR, "simplenet.onnx"))));
    expect((await fetch(`${url}/infer`)).status).to.equal(405);
    expect((await fetch(`${url}/other`)).status).to.equal(404);
  });

  it("is restarted after a crash", async function () {
    const server = servers[1]!;
    const pid = server.pid!;
    process.kill(pid, "SIGKILL");
    const deadline = Date.now() + 20_000;
    while (!(server.url !== null && server.pid !== pid && (await server.healthy()))) {
      if (Date.now() > deadline) throw new Error("not restarted within 20 s");
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(server.restarts).to.equal(1);
    const response = await server.infer(encodeInferInput(Array(16).fill(1)), 5_000);
    expect(response.status).to.equal(200);
  });
});

// The model server for ONNX models with one float32 input tensor (simplenet and its kind): loads the
// weights with onnxruntime-node (CPU build, one thread: outputs bit-identical across runs and
// processes) and serves the inference contract of contract.ts on loopback.
//
//   node models/simplenet/server.ts --model <file.onnx> [--host 127.0.0.1] [--port 0] [--socket <path>]
//
// Prints one line `listening http://HOST:PORT` (or `listening unix:PATH`) on stdout once the model is
// loaded and the port open (port 0 picks a free one), so a supervisor learns the address without
// racing for a port. In a container without network the agent reaches it through a unix socket in
// a directory shared with the host. Also reads INFRAMESH_MODEL_PATH, INFRAMESH_MODEL_HOST,
// INFRAMESH_MODEL_PORT and INFRAMESH_MODEL_SOCKET.
import { createHash } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { parseArgs } from "node:util";

import ort from "onnxruntime-node";

import { encodeInferOutput, InferInputError, MAX_INFER_BODY_BYTES, parseInferInput } from "./contract.ts";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: process.env.INFRAMESH_MODEL_PATH },
    host: { type: "string", default: process.env.INFRAMESH_MODEL_HOST ?? "127.0.0.1" },
    port: { type: "string", default: process.env.INFRAMESH_MODEL_PORT ?? "0" },
    socket: { type: "string", default: process.env.INFRAMESH_MODEL_SOCKET },
  },
});

function fail(message: string): never {
  process.stderr.write(`model server: ${message}\n`);
  process.exit(2);
}

if (values.model === undefined || values.model === "") fail("no model: pass --model <file.onnx>");
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be 0..65535, got ${values.port}`);

const modelBytes = await readFile(values.model).catch((error: unknown) =>
  fail(`cannot read ${values.model}: ${(error as Error).message}`),
);
const modelSha256 = createHash("sha256").update(modelBytes).digest("hex");
const session = await ort.InferenceSession.create(modelBytes, {
  executionProviders: ["cpu"],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
}).catch((error: unknown) => fail(`cannot load ${values.model}: ${(error as Error).message}`));

const inputMeta = session.inputMetadata[0];
if (session.inputNames.length !== 1 || inputMeta === undefined || !inputMeta.isTensor || inputMeta.type !== "float32") {
  fail("this server runs models with exactly one float32 input tensor");
}
const shape = inputMeta.shape.map((d) => (typeof d === "number" ? d : 1));
const inputSize = shape.reduce((a, b) => a * b, 1);
const inputName = session.inputNames[0]!;
const outputName = session.outputNames[0]!;

function send(res: ServerResponse, status: number, body: Uint8Array | object): void {
  const bytes = body instanceof Uint8Array ? body : Buffer.from(JSON.stringify(body));
  res.writeHead(status, { "content-type": "application/json", "content-length": bytes.length });
  res.end(bytes);
}

async function readBody(req: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > MAX_INFER_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

// Runs one inference at a time: onnxruntime sessions are not re-entrant in a useful way on one
// thread, and a queue keeps latency predictable.
let queue: Promise<unknown> = Promise.resolve();
function infer(input: Float32Array): Promise<Float32Array> {
  const run = queue.then(async () => {
    const result = await session.run({ [inputName]: new ort.Tensor("float32", input, shape) });
    return result[outputName]!.data as Float32Array;
  });
  queue = run.catch(() => undefined);
  return run;
}

// One inference before the port opens: onnxruntime sets up its kernels on the first run, and the
// first client (and the gateway's latency average of this node) should not pay for that.
await infer(new Float32Array(inputSize)).catch(() => undefined);

const server = createServer(async (req, res) => {
  try {
    if (req.method === "GET" && req.url === "/health") {
      send(res, 200, { status: "ok", model_sha256: modelSha256 });
      return;
    }
    if (req.url !== "/infer") {
      send(res, 404, { error: "not_found", reason: "routes: POST /infer, GET /health" });
      return;
    }
    if (req.method !== "POST") {
      send(res, 405, { error: "method_not_allowed", reason: "use POST /infer" });
      return;
    }
    const body = await readBody(req);
    if (body === null) {
      send(res, 413, { error: "too_large", reason: `body over ${MAX_INFER_BODY_BYTES} bytes` });
      return;
    }
    const input = parseInferInput(body, inputSize);
    const output = encodeInferOutput(await infer(input));
    if (output === null) {
      send(res, 422, { error: "non_finite_output", reason: "the model produced a value that is not finite" });
      return;
    }
    send(res, 200, output);
  } catch (error) {
    if (error instanceof InferInputError) send(res, 400, { error: "bad_input", reason: error.message });
    else send(res, 500, { error: "internal", reason: (error as Error).message });
  }
});

if (values.socket !== undefined && values.socket !== "") {
  const socket = values.socket;
  await rm(socket, { force: true }); // a socket left by a previous run of a restarted container
  server.listen(socket, () => process.stdout.write(`listening unix:${socket}\n`));
} else {
  server.listen(port, values.host, () => {
    const address = server.address();
    if (address === null || typeof address === "string") fail("no TCP address");
    process.stdout.write(`listening http://${values.host}:${address.port}\n`);
  });
}
// Under a supervisor that holds our stdin open, its end means the supervisor died: exit with it.
if (process.env.INFRAMESH_MODEL_EXIT_WITH_PARENT === "1") {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  process.stdin.resume();
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    server.close();
    process.exit(0);
  });
}

// EchoNode: a stand-in node agent for the gateway benchmark only. It answers POST /v1/jobs at
// once with a fixed output, its sha256 and a proof-of-serving-shaped object (the signature is a
// placeholder: nothing verifies it on this path), so the proxies in front of it can be measured
// without the real agent's own cost and jitter. Usage: node bench/echo-node.ts <port> <node address>
import { createHash } from "node:crypto";
import { createServer } from "node:http";

const [portArg, node] = process.argv.slice(2);
const output = Buffer.from('{"output":[0,0,0,0,0,0,0,0]}');
const outputB64 = output.toString("base64");
const outputHash = `0x${createHash("sha256").update(output).digest("hex")}`;
const signature = `0x${"11".repeat(65)}`;
const workUnitHash = `0x${"22".repeat(32)}`;

const server = createServer((req, res) => {
  if (req.method === "GET") {
    res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ready"}');
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const unit = (JSON.parse(Buffer.concat(chunks).toString()) as { work_unit: { job_id: string; model_ref: unknown } })
      .work_unit;
    const body = JSON.stringify({
      job_id: unit.job_id,
      node_id: node,
      output: outputB64,
      output_hash: outputHash,
      proof_of_serving: {
        job_id: unit.job_id,
        model_ref: unit.model_ref,
        work_unit_hash: workUnitHash,
        output_hash: outputHash,
        latency_ms: 0,
        node_id: node,
        signature,
      },
    });
    res.writeHead(200, { "content-type": "application/json" }).end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(portArg), "127.0.0.1");

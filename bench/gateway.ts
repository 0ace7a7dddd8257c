// Gateway overhead benchmark (issue 6): on loopback, in one run, the same client-signed simplenet
// jobs sent (1) straight to a node agent, (2) through the gateway, (3) through nginx proxying to the
// same agent. Agent, gateway and nginx each run as their own process (one nginx worker); the load
// generator is this process. For each path: latency p50/p99 at concurrency 1, the latency added
// over the direct path, and throughput at concurrency 16. Prints a table and writes
// bench/results/gateway.json. Target: the gateway's added p50 ≤ 2 × nginx's added p50.
// nginx missing: the row is skipped and the target is reported as not measured.
import { spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";

import { stringify } from "yaml";
import { privateKeyToAccount } from "viem/accounts";

import { encodeInferInput } from "../models/simplenet/contract.ts";
import { startInferenceNetwork } from "../scripts/lib/inference-network.ts";
import { freePort, PROJECT_ROOT, spawnGroup, type ProcessGroup } from "../scripts/lib/local-chain.ts";
import { formatTable } from "../scripts/lib/table.ts";

const SEQUENTIAL = Number(process.env.BENCH_GATEWAY_CALLS ?? 1_000);
const CONCURRENT = Number(process.env.BENCH_GATEWAY_CONCURRENT_CALLS ?? 2_000);
const CONCURRENCY = 16;
const WARMUP = 100;
const TARGET = 2;
// Hardhat node's dev account #2 (a public, well-known test key): the client.
const CLIENT_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9d8a5d0c0e3e0";
const NGINX = process.env.NGINX_BIN ?? "nginx";

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY * 2 });

function post(url: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method: "POST",
        agent: keepAlive,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode ?? 0));
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function waitHttp(url: string, what: string, group: ProcessGroup): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(url)
      .then((r) => r.status < 500)
      .catch(() => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not answer at ${url}:\n${group.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function hasNginx(): boolean {
  return spawnSync(NGINX, ["-v"], { stdio: "ignore" }).status === 0;
}

async function startNginx(dir: string, upstreamPort: number): Promise<{ url: string; group: ProcessGroup }> {
  const port = await freePort();
  await mkdir(path.join(dir, "logs"), { recursive: true });
  const conf = path.join(dir, "nginx.conf");
  const temp = (name: string) => `${name} ${path.join(dir, name)};`;
  await writeFile(
    conf,
    `worker_processes 1;
daemon off;
pid ${path.join(dir, "nginx.pid")};
error_log ${path.join(dir, "logs", "error.log")} warn;
events { worker_connections 1024; }
http {
  access_log off;
  ${temp("client_body_temp_path")}
  ${temp("proxy_temp_path")}
  ${temp("fastcgi_temp_path")}
  ${temp("uwsgi_temp_path")}
  ${temp("scgi_temp_path")}
  upstream agent { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 16m;
    location / {
      proxy_pass http://agent;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  const group = spawnGroup(NGINX, ["-p", dir, "-c", conf]);
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/healthz`, "nginx", group);
  return { url, group };
}

interface PathResult {
  name: string;
  p50: number;
  p99: number;
  throughput: number;
}

const net = await startInferenceNetwork("local-bench-gateway");
const groups: ProcessGroup[] = [];
try {
  const operator = await net.addOperator(10_000n);
  const agent = await net.startAgent(operator, { child: true });
  const agentPort = Number(new URL(agent.url).port);

  // The gateway in its own process, like the agent and nginx.
  const gatewayPort = await freePort();
  const gatewayConfig = path.join(net.work, "gateway.yaml");
  await writeFile(
    gatewayConfig,
    stringify({
      listen: { host: "127.0.0.1", port: gatewayPort },
      chain: { rpc_url: net.chain.rpcUrl, deployment: net.deploymentFile },
      redis: { url: net.redis.url, prefix: "bench:" },
      heartbeats: { max_age_ms: 600_000, max_future_ms: 5_000 },
      rate_limit: { capacity: 1_000_000, refill_per_second: 1_000_000 },
      log_level: "warn",
    }),
  );
  const gatewayGroup = spawnGroup(process.execPath, [
    path.join(PROJECT_ROOT, "gateway", "main.ts"),
    "--config",
    gatewayConfig,
  ]);
  groups.push(gatewayGroup);
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  await waitHttp(`${gatewayUrl}/healthz`, "gateway", gatewayGroup);
  await net.heartbeatOnce(agent, [gatewayUrl]);
  await new Promise((r) => setTimeout(r, 1_000)); // the gateway's node view refreshes every 500 ms

  let nginxUrl: string | undefined;
  if (hasNginx()) {
    const nginx = await startNginx(path.join(net.work, "nginx"), agentPort);
    groups.push(nginx.group);
    nginxUrl = nginx.url;
  } else {
    console.log(`nginx is not installed ('${NGINX}' not found; Debian: apt-get install nginx): skipping the nginx row`);
  }

  const client = privateKeyToAccount(CLIENT_KEY);
  const paths = [
    { name: "direct", url: `${agent.url}/v1/jobs` },
    { name: "gateway", url: `${gatewayUrl}/inference/v1/model/simplenet` },
    ...(nginxUrl === undefined ? [] : [{ name: "nginx", url: `${nginxUrl}/v1/jobs` }]),
  ];
  const input = encodeInferInput(Array.from({ length: 16 }, (_, i) => i / 8 - 1));
  // Every job needs its own job id (the agent serves a job id once): sign them all before timing.
  const bodies = async (n: number) =>
    Promise.all(Array.from({ length: n }, async () => JSON.stringify(await net.signedCall(client, input))));

  const latencies = new Map<string, number[]>(paths.map((p) => [p.name, []]));
  for (const p of paths) for (const body of await bodies(WARMUP)) await post(p.url, body);
  // Interleaved, so a slow moment of the machine hits every path alike.
  const sequential = new Map(await Promise.all(paths.map(async (p) => [p.name, await bodies(SEQUENTIAL)] as const)));
  for (let i = 0; i < SEQUENTIAL; i++) {
    for (const p of paths) {
      const started = performance.now();
      const status = await post(p.url, sequential.get(p.name)![i]!);
      const elapsed = performance.now() - started;
      if (status !== 200) throw new Error(`${p.name}: call ${i} answered ${status}`);
      latencies.get(p.name)!.push(elapsed);
    }
  }
  const results: PathResult[] = [];
  for (const p of paths) {
    const all = await bodies(CONCURRENT);
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < all.length) {
          const status = await post(p.url, all[next++]!);
          if (status !== 200) throw new Error(`${p.name}: concurrent call answered ${status}`);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const sorted = [...latencies.get(p.name)!].sort((a, b) => a - b);
    results.push({
      name: p.name,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      throughput: CONCURRENT / seconds,
    });
  }

  const direct = results.find((r) => r.name === "direct")!;
  const gateway = results.find((r) => r.name === "gateway")!;
  const nginx = results.find((r) => r.name === "nginx");
  const ms = (x: number) => x.toFixed(3);
  console.log(
    formatTable(
      [
        { header: "path" },
        { header: "p50 ms", align: "right" },
        { header: "p99 ms", align: "right" },
        { header: "added p50 ms", align: "right" },
        { header: "added p99 ms", align: "right" },
        { header: `calls/s (c=${CONCURRENCY})`, align: "right" },
      ],
      results.map((r) => [
        r.name,
        ms(r.p50),
        ms(r.p99),
        r.name === "direct" ? "-" : ms(r.p50 - direct.p50),
        r.name === "direct" ? "-" : ms(r.p99 - direct.p99),
        r.throughput.toFixed(0),
      ]),
    ),
  );
  const json: Record<string, number> = {
    sequential_calls_per_path: SEQUENTIAL,
    concurrent_calls_per_path: CONCURRENT,
    concurrency: CONCURRENCY,
  };
  for (const r of results) {
    json[`${r.name}_p50_ms`] = r.p50;
    json[`${r.name}_p99_ms`] = r.p99;
    json[`${r.name}_calls_per_s`] = r.throughput;
    if (r.name !== "direct") {
      json[`${r.name}_added_p50_ms`] = r.p50 - direct.p50;
      json[`${r.name}_added_p99_ms`] = r.p99 - direct.p99;
    }
  }
  if (nginx !== undefined) {
    const ratio = (gateway.p50 - direct.p50) / (nginx.p50 - direct.p50);
    json.gateway_over_nginx_added_p50 = ratio;
    json.target_ratio = TARGET;
    console.log(
      `\ngateway added p50 / nginx added p50 = ${ratio.toFixed(2)} (target ≤ ${TARGET}): ${ratio <= TARGET ? "met" : "NOT met"}`,
    );
  } else {
    console.log("\ntarget not measured: no nginx");
  }
  await mkdir(path.join(PROJECT_ROOT, "bench", "results"), { recursive: true });
  await writeFile(path.join(PROJECT_ROOT, "bench", "results", "gateway.json"), `${JSON.stringify(json, null, 2)}\n`);
  console.log("wrote bench/results/gateway.json");
} finally {
  for (const g of groups) await g.stop().catch(() => undefined);
  keepAlive.destroy();
  await net.stop();
}

// Gateway overhead benchmark (issue 6): on loopback, in one run, the same client-signed simplenet
// jobs sent (1) straight to a node agent, (2) through the gateway, (3) through nginx proxying to the
// same agent. Agent, gateway and nginx each run as their own process (one nginx worker); the load
// generator is this process. For each path: latency p50/p99 at concurrency 1, the latency added
// over the direct path, and throughput at concurrency 16. The same three paths again in front of
// EchoNode (bench/echo-node.ts, a stand-in that answers at once), where the proxies' overhead is
// not buried in the agent's own jitter. Five more paths give the floors of Node.js:
// bench/node-proxy.ts (a bare node:http proxy), bench/undici-proxy.ts (the same with undici as
// the upstream client), bench/raw-proxy.ts (HTTP on node:net with a minimal codec, no node:http),
// bench/hybrid-proxy.ts (node:http server, minimal-codec client) and bench/tcp-proxy.ts (a
// Node.js process copying bytes, no HTTP at all).
// Prints a table and writes bench/results/gateway.json.
// Target: the gateway's added p50 ≤ 2 × nginx's added p50.
// nginx missing: the row is skipped and the target is reported as not measured.
import { spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";

import { stringify } from "yaml";
import { privateKeyToAccount } from "viem/accounts";

import { encodeInferInput } from "../models/simplenet/contract.ts";
import { startInferenceNetwork, type RunningAgent } from "../scripts/lib/inference-network.ts";
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
// Extra node flags for the gateway and bare proxy processes, e.g. "--cpu-prof --cpu-prof-dir=/tmp/gw-prof"
// to profile their hot paths (each profile is written when the bench stops the process with SIGTERM).
const GATEWAY_NODE_ARGS = (process.env.BENCH_GATEWAY_NODE_ARGS ?? "").split(" ").filter((a) => a !== "");
// Another checkout of the project (e.g. "/work/main") whose gateway is measured too, as the
// "gateway-base" path, interleaved with this one's: a before/after comparison under the same load.
const BASE_ROOT = process.env.BENCH_GATEWAY_BASE_ROOT;
// Which upstreams to measure ("agent,echo" by default); "echo" alone for a quick profiling run.
const UPSTREAMS = new Set((process.env.BENCH_GATEWAY_UPSTREAMS ?? "agent,echo").split(","));

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY * 2 });

/** Sum of each Server-Timing phase over the gateway calls measured (ms). */
/** Server-Timing phases of the sequential gateway calls, per upstream (ms, one entry per call). */
const phases = new Map<string, number[]>();
/** Where Server-Timing phases are recorded now ("" = not recorded: warm-up and concurrent calls). */
let phaseScope = "";

/** One call; a kept-alive socket the server closed while idle is retried once on a new one. */
async function post(url: string, body: string): Promise<number> {
  try {
    return await postOnce(url, body);
  } catch (error) {
    if ((error as { code?: string }).code !== "ECONNRESET") throw error;
    return postOnce(url, body);
  }
}

function postOnce(url: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method: "POST",
        agent: keepAlive,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (response) => {
        const header = response.headers["server-timing"];
        if (typeof header === "string" && phaseScope !== "") {
          for (const part of header.split(", ")) {
            const [name, dur] = part.split(";dur=");
            const key = `${phaseScope}_${name!}`;
            phases.set(key, [...(phases.get(key) ?? []), Number(dur)]);
          }
        }
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

async function startNginx(dir: string, upstreamPorts: number[]): Promise<{ urls: string[]; group: ProcessGroup }> {
  const ports = await Promise.all(upstreamPorts.map(() => freePort()));
  await mkdir(path.join(dir, "logs"), { recursive: true });
  const conf = path.join(dir, "nginx.conf");
  const temp = (name: string) => `${name} ${path.join(dir, name)};`;
  const servers = upstreamPorts
    .map(
      (upstream, i) => `
  upstream u${i} { server 127.0.0.1:${upstream}; keepalive 64; }
  server {
    listen 127.0.0.1:${ports[i]};
    client_max_body_size 16m;
    location / {
      proxy_pass http://u${i};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }`,
    )
    .join("\n");
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
${servers}
}
`,
  );
  const group = spawnGroup(NGINX, ["-p", dir, "-c", conf]);
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  for (const url of urls) await waitHttp(`${url}/healthz`, "nginx", group);
  return { urls, group };
}

interface PathResult {
  name: string;
  p50: number;
  p99: number;
  throughput: number;
}

const net = await startInferenceNetwork("local-bench-gateway");
const groups: ProcessGroup[] = [];

/** A gateway in its own process (like the agent and nginx) that knows only `upstream`. */
async function startGatewayProcess(prefix: string, upstream: RunningAgent, root = PROJECT_ROOT): Promise<string> {
  const port = await freePort();
  const file = path.join(net.work, `gateway-${prefix}.yaml`);
  await writeFile(
    file,
    stringify({
      listen: { host: "127.0.0.1", port },
      chain: { rpc_url: net.chain.rpcUrl, deployment: net.deploymentFile },
      redis: { url: net.redis.url, prefix: `bench-${prefix}:` },
      heartbeats: { max_age_ms: 600_000, max_future_ms: 5_000 },
      rate_limit: { capacity: 1_000_000, refill_per_second: 1_000_000 },
      log_level: "warn",
    }),
  );
  const group = spawnGroup(process.execPath, [
    ...GATEWAY_NODE_ARGS,
    path.join(root, "gateway", "main.ts"),
    "--config",
    file,
  ]);
  groups.push(group);
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/healthz`, "gateway", group);
  await net.heartbeatOnce(upstream, [url]);
  await new Promise((r) => setTimeout(r, 1_000)); // the gateway's node view refreshes every 500 ms
  return url;
}

/**
 * A bare proxy of bench/ in front of `upstream`: node-proxy.ts (node:http both sides, the floor of
 * a proxy on node:http), undici-proxy.ts (node:http server, undici client), raw-proxy.ts (HTTP on
 * node:net with a minimal codec of its own), hybrid-proxy.ts (node:http server, that codec's
 * client), tcp-proxy.ts (bytes copied, no HTTP: the floor of any hop through Node.js).
 */
async function startBareProxy(script: string, upstream: RunningAgent): Promise<string> {
  const port = await freePort();
  const group = spawnGroup(process.execPath, [
    ...GATEWAY_NODE_ARGS,
    path.join(PROJECT_ROOT, "bench", script),
    String(port),
    upstream.url,
  ]);
  groups.push(group);
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/healthz`, script, group);
  return url;
}

interface Row extends PathResult {
  upstream: string;
  added_p50: number | undefined;
  added_p99: number | undefined;
}

try {
  const agent = await net.startAgent(await net.addOperator(10_000n), { child: true });
  const echoOperator = await net.addOperator(10_000n);
  const echoPort = await freePort();
  const echoGroup = spawnGroup(process.execPath, [
    path.join(PROJECT_ROOT, "bench", "echo-node.ts"),
    String(echoPort),
    echoOperator.account.address,
  ]);
  groups.push(echoGroup);
  const echo: RunningAgent = {
    operator: echoOperator,
    url: `http://127.0.0.1:${echoPort}`,
    stop: () => echoGroup.stop(),
    kill: () => undefined,
  };
  await waitHttp(`${echo.url}/healthz`, "echo node", echoGroup);
  const upstreams = [];
  for (const [name, node] of [
    ["agent", agent],
    ["echo", echo],
  ] as const) {
    if (!UPSTREAMS.has(name)) continue;
    upstreams.push({
      name,
      node,
      gateway: await startGatewayProcess(name, node),
      base: BASE_ROOT === undefined ? undefined : await startGatewayProcess(`${name}-base`, node, BASE_ROOT),
      proxy: await startBareProxy("node-proxy.ts", node),
      undici: await startBareProxy("undici-proxy.ts", node),
      raw: await startBareProxy("raw-proxy.ts", node),
      hybrid: await startBareProxy("hybrid-proxy.ts", node),
      tcp: await startBareProxy("tcp-proxy.ts", node),
      nginx: undefined as string | undefined,
    });
  }
  if (hasNginx()) {
    const nginx = await startNginx(
      path.join(net.work, "nginx"),
      upstreams.map((u) => Number(new URL(u.node.url).port)),
    );
    groups.push(nginx.group);
    upstreams.forEach((u, i) => (u.nginx = nginx.urls[i]));
  } else {
    console.log(
      `nginx is not installed ('${NGINX}' not found; Debian: apt-get install nginx): skipping the nginx rows`,
    );
  }

  const client = privateKeyToAccount(CLIENT_KEY);
  const input = encodeInferInput(Array.from({ length: 16 }, (_, i) => i / 8 - 1));
  // Every job needs its own job id (the agent serves a job id once): sign them all before timing.
  const bodies = async (n: number) =>
    Promise.all(Array.from({ length: n }, async () => JSON.stringify(await net.signedCall(client, input))));

  const rows: Row[] = [];
  for (const u of upstreams) {
    const paths = [
      { name: "direct", url: `${u.node.url}/v1/jobs` },
      { name: "gateway", url: `${u.gateway}/inference/v1/model/simplenet` },
      ...(u.base === undefined ? [] : [{ name: "gateway-base", url: `${u.base}/inference/v1/model/simplenet` }]),
      ...(u.nginx === undefined ? [] : [{ name: "nginx", url: `${u.nginx}/v1/jobs` }]),
      { name: "node-proxy", url: `${u.proxy}/v1/jobs` },
      { name: "undici-proxy", url: `${u.undici}/v1/jobs` },
      { name: "raw-proxy", url: `${u.raw}/v1/jobs` },
      { name: "hybrid-proxy", url: `${u.hybrid}/v1/jobs` },
      { name: "tcp-proxy", url: `${u.tcp}/v1/jobs` },
    ];
    const latencies = new Map<string, number[]>(paths.map((p) => [p.name, []]));
    // Signed before any timing, and before the warm-up, so no connection idles while we sign.
    const warm = new Map(await Promise.all(paths.map(async (p) => [p.name, await bodies(WARMUP)] as const)));
    const concurrent = new Map(await Promise.all(paths.map(async (p) => [p.name, await bodies(CONCURRENT)] as const)));
    // Interleaved, so a slow moment of the machine hits every path alike.
    const sequential = new Map(await Promise.all(paths.map(async (p) => [p.name, await bodies(SEQUENTIAL)] as const)));
    for (const p of paths) for (const body of warm.get(p.name)!) await post(p.url, body);
    for (let i = 0; i < SEQUENTIAL; i++) {
      for (const p of paths) {
        phaseScope = p.name === "gateway-base" ? `${u.name}-base` : u.name;
        const started = performance.now();
        const status = await post(p.url, sequential.get(p.name)![i]!);
        const elapsed = performance.now() - started;
        if (status !== 200) throw new Error(`${u.name} ${p.name}: call ${i} answered ${status}`);
        latencies.get(p.name)!.push(elapsed);
      }
    }
    phaseScope = "";
    const results: PathResult[] = [];
    for (const p of paths) {
      const all = concurrent.get(p.name)!;
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < all.length) {
            const status = await post(p.url, all[next++]!);
            if (status !== 200) throw new Error(`${u.name} ${p.name}: concurrent call answered ${status}`);
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
    const direct = results[0]!;
    for (const r of results) {
      rows.push({
        ...r,
        upstream: u.name,
        added_p50: r === direct ? undefined : r.p50 - direct.p50,
        added_p99: r === direct ? undefined : r.p99 - direct.p99,
      });
    }
  }

  const ms = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(3));
  console.log(
    formatTable(
      [
        { header: "upstream" },
        { header: "path" },
        { header: "p50 ms", align: "right" },
        { header: "p99 ms", align: "right" },
        { header: "added p50 ms", align: "right" },
        { header: "added p99 ms", align: "right" },
        { header: `calls/s (c=${CONCURRENCY})`, align: "right" },
      ],
      rows.map((r) => [
        r.upstream,
        r.name,
        ms(r.p50),
        ms(r.p99),
        ms(r.added_p50),
        ms(r.added_p99),
        r.throughput.toFixed(0),
      ]),
    ),
  );
  const json: Record<string, number> = {
    sequential_calls_per_path: SEQUENTIAL,
    concurrent_calls_per_path: CONCURRENT,
    concurrency: CONCURRENCY,
    target_ratio: TARGET,
  };
  for (const r of rows) {
    const key = `${r.upstream}_${r.name}`;
    json[`${key}_p50_ms`] = r.p50;
    json[`${key}_p99_ms`] = r.p99;
    json[`${key}_calls_per_s`] = r.throughput;
    if (r.added_p50 !== undefined) json[`${key}_added_p50_ms`] = r.added_p50;
    if (r.added_p99 !== undefined) json[`${key}_added_p99_ms`] = r.added_p99;
  }
  console.log("\ngateway time by phase, p50 of the sequential calls (Server-Timing):");
  for (const u of upstreams.flatMap((x) => (x.base === undefined ? [x] : [x, { ...x, name: `${x.name}-base` }]))) {
    const own = [...phases].filter(([key]) => key.startsWith(`${u.name}_`));
    const line = own.map(([key, values]) => {
      const p50 = percentile(
        [...values].sort((a, b) => a - b),
        50,
      );
      json[`${key}_phase_p50_ms`] = p50;
      return `${key.slice(u.name.length + 1)} ${ms(p50)}`;
    });
    console.log(`  ${u.name}: ${line.join(", ")}`);
  }
  console.log("");
  for (const u of upstreams) {
    const gateway = rows.find((r) => r.upstream === u.name && r.name === "gateway")!;
    const nginx = rows.find((r) => r.upstream === u.name && r.name === "nginx");
    if (nginx === undefined) {
      console.log(`${u.name}: target not measured (no nginx)`);
      continue;
    }
    if (nginx.added_p50! <= 0) {
      // The agent's own jitter is larger than nginx's overhead: no ratio can be read from this run.
      console.log(`${u.name}: nginx's added p50 (${ms(nginx.added_p50)} ms) is below this run's noise: no ratio`);
      continue;
    }
    const ratio = gateway.added_p50! / nginx.added_p50!;
    json[`${u.name}_gateway_over_nginx_added_p50`] = ratio;
    // The floors: what a proxy with no logic at all adds, over nginx's added p50.
    const floors = rows
      .filter((r) => r.upstream === u.name && r.name.endsWith("-proxy"))
      .map((r) => {
        const floor = r.added_p50! / nginx.added_p50!;
        json[`${u.name}_${r.name}_over_nginx_added_p50`] = floor;
        return `${r.name} ${floor.toFixed(2)}`;
      });
    console.log(`${u.name}: bare proxies' added p50 / nginx added p50: ${floors.join(", ")}`);
    console.log(
      `${u.name}: gateway added p50 / nginx added p50 = ${ratio.toFixed(2)} (target ≤ ${TARGET}): ${ratio <= TARGET ? "met" : "NOT met"}`,
    );
  }
  await mkdir(path.join(PROJECT_ROOT, "bench", "results"), { recursive: true });
  await writeFile(path.join(PROJECT_ROOT, "bench", "results", "gateway.json"), `${JSON.stringify(json, null, 2)}\n`);
  console.log("wrote bench/results/gateway.json");
} finally {
  for (const g of groups) await g.stop().catch(() => undefined);
  keepAlive.destroy();
  await net.stop();
}

// Load generator of bench/oracle.ts, run in a worker thread so that sending requests does not share
// the oracle's event loop. Closed loop (fixed concurrency, as fast as possible) or open loop (a
// fixed rate). Reports when each request was sent (performance.timeOrigin + now, milliseconds).
import { Agent, request } from "node:http";
import { parentPort, workerData } from "node:worker_threads";

type Job = { url: string; bodies: string[]; concurrency?: number; rate?: number };
const job = workerData as Job;
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const target = new URL("/v1/receipts", job.url);
const sentAt = new Array<number>(job.bodies.length);
const statuses = new Map<number, number>();
const now = () => performance.timeOrigin + performance.now();

function post(i: number): Promise<void> {
  return new Promise((resolve) => {
    const body = job.bodies[i]!;
    sentAt[i] = now();
    const req = request(
      target,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        statuses.set(res.statusCode ?? 0, (statuses.get(res.statusCode ?? 0) ?? 0) + 1);
        res.resume();
        res.on("end", resolve);
      },
    );
    req.on("error", () => {
      statuses.set(-1, (statuses.get(-1) ?? 0) + 1);
      resolve();
    });
    req.end(body);
  });
}

if (job.rate !== undefined) {
  const interval = 1000 / job.rate;
  const start = now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < job.bodies.length; i++) {
    const due = start + i * interval;
    const wait = due - now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(post(i));
  }
  await Promise.all(inflight);
} else {
  let next = 0;
  await Promise.all(
    Array.from({ length: job.concurrency ?? 32 }, async () => {
      while (next < job.bodies.length) await post(next++);
    }),
  );
}
agent.destroy();
parentPort!.postMessage({ sentAt, statuses: Object.fromEntries(statuses) });

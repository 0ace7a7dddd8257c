// The Docker runtime against a real engine (dockerd from Debian's docker.io, started privately by
// scripts/lib/docker.ts): images built from a local rootfs, nothing pulled; simplenet in a
// container gives the same output bytes as in a process; a container that crashes, hangs, runs out
// of memory or answers garbage fails the job through the real job pipeline, with no receipt.
//
// Needs root and dockerd (apt-get install -y docker.io); without them the suite is skipped and says so.
// Slow: run alone with `npx hardhat test mocha test/agent/docker-runtime.test.ts`.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { pino } from "pino";
import { sha256, type Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { encodeInferInput } from "../../models/simplenet/contract.ts";
import { containerOptions, DockerModel } from "../../node-agent/docker-runtime.ts";
import { parseLdd } from "../../node-agent/docker-image.ts";
import { JobError, serveJob, type JobDeps } from "../../node-agent/jobs.ts";
import { Outbox, openOutboxDatabase, type SqlClient } from "../../node-agent/outbox.ts";
import { ModelProcess } from "../../node-agent/process-runtime.ts";
import { hasDockerd, startDockerEngine, type DockerEngine } from "../../scripts/lib/docker.ts";
import { PROJECT_ROOT } from "../../scripts/lib/local-chain.ts";
import { inframeshDomain, signWorkUnit, type WorkUnit } from "../../sdk/eip712.ts";
import { workUnitJson } from "../../sdk/receipt.ts";

const SIMPLENET = path.join(PROJECT_ROOT, "models", "simplenet", "simplenet.onnx");
const MISBEHAVING = path.join(import.meta.dirname, "fixtures", "misbehaving-model-server.ts");
// Well-known Hardhat dev keys (public test keys): a client and a node.
const client = privateKeyToAccount("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9d8a5d0c0e3e0");
const node = privateKeyToAccount("0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6");
const domain = inframeshDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3" as Address);
const silent = pino({ level: "silent" });
const MiB = 2 ** 20;

describe("docker runtime (pure)", function () {
  it("reads library paths from ldd output", function () {
    const output = [
      "\tlinux-vdso.so.1 (0x00007ffd)",
      "\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f)",
      "\tlibonnxruntime.so.1 => /x/node_modules/onnxruntime-node/bin/libonnxruntime.so.1 (0x1)",
      "\t/lib64/ld-linux-x86-64.so.2 (0x00007f)",
    ].join("\n");
    expect(parseLdd(output)).to.deep.equal(["/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib64/ld-linux-x86-64.so.2"]);
  });

  it("applies model.yaml's resources and isolation to the container", function () {
    const options = containerOptions(
      { name: "m", weightsPath: "/w", memoryBytes: 256 * MiB, cpus: 0.5, gpus: 1 },
      "img",
      "/tmp/s",
      "n",
    );
    expect(options.HostConfig).to.deep.include({
      NetworkMode: "none",
      ReadonlyRootfs: true,
      Memory: 256 * MiB,
      MemorySwap: 256 * MiB,
      NanoCpus: 500_000_000,
      CapDrop: ["ALL"],
      Binds: ["/tmp/s:/run/inframesh"],
    });
    expect(options.HostConfig.DeviceRequests).to.deep.equal([{ Driver: "nvidia", Count: 1, Capabilities: [["gpu"]] }]);
    expect(options.User).to.equal("65534:65534");
    const noGpu = containerOptions(
      { name: "m", weightsPath: "/w", memoryBytes: MiB, cpus: 1, gpus: 0 },
      "i",
      "/s",
      "n",
    );
    expect(noGpu.HostConfig).to.not.have.property("DeviceRequests");
  });
});

describe("docker runtime (real engine)", function () {
  this.timeout(300_000);
  let engine: DockerEngine;
  let work: string;
  let db: SqlClient;
  let outbox: Outbox;

  before(async function () {
    if (!hasDockerd() && process.env.DOCKER_HOST === undefined) {
      console.log("    skipped: no dockerd or not root (apt-get install -y docker.io, or set DOCKER_HOST)");
      this.skip();
    }
    engine = await startDockerEngine();
    work = await mkdtemp(path.join(tmpdir(), "inframesh-docker-test-"));
    db = await openOutboxDatabase(work);
    outbox = new Outbox(db, ["http://127.0.0.1:9"]);
  });
  after(async function () {
    await db?.close();
    await engine?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  async function jobBody(values: number[]) {
    const input = encodeInferInput(values);
    const workUnit: WorkUnit = {
      jobId: `0x${randomBytes(32).toString("hex")}`,
      modelId: 1n,
      modelVersion: 0n,
      inputHash: sha256(input),
      maxFee: 10n,
      client: client.address,
      expiresAt: BigInt(Math.floor(Date.now() / 1000) + 600),
    };
    return { work_unit: workUnitJson(workUnit, input), client_signature: await signWorkUnit(client, domain, workUnit) };
  }

  const deps = (runtime: DockerModel): JobDeps => ({
    domain,
    node,
    served: new Map([[1n, { modelId: 1n, name: "simplenet", version: 0n, price: 10n }]]),
    timeoutMs: 3_000,
    now: () => Date.now(),
    infer: (_id, input, timeoutMs) => runtime.infer(input, timeoutMs),
    seen: (jobId) => outbox.has(jobId),
    record: (jobId, receipt) => outbox.add(jobId, receipt, Date.now()),
  });

  async function waitHealthy(runtime: DockerModel): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (!(await runtime.healthy())) {
      if (Date.now() > deadline) throw new Error("container not healthy again within 60 s");
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it("serves simplenet in a locked-down container with the same output bytes as the process runtime", async function () {
    const docker = new DockerModel(
      { name: "simplenet", weightsPath: SIMPLENET, memoryBytes: 256 * MiB, cpus: 1, gpus: 0 },
      engine.docker,
      silent,
    );
    const local = new ModelProcess({ name: "simplenet", modelPath: SIMPLENET, memoryBytes: 256 * MiB }, silent);
    try {
      await Promise.all([docker.start(), local.start()]);
      const inspect = await engine.docker.getContainer(docker.containerId!).inspect();
      expect(inspect.HostConfig.NetworkMode).to.equal("none");
      expect(inspect.HostConfig.ReadonlyRootfs).to.equal(true);
      expect(inspect.HostConfig.Memory).to.equal(256 * MiB);
      expect(inspect.Config.User).to.equal("65534:65534");
      for (const values of [Array(16).fill(0.5), Array.from({ length: 16 }, (_, i) => i * 3 - 20)]) {
        const input = encodeInferInput(values);
        const [a, b] = await Promise.all([docker.infer(input, 5_000), local.infer(input, 5_000)]);
        expect(a.status).to.equal(200);
        expect(sha256(a.body)).to.equal(sha256(b.body));
      }
      const bad = await docker.infer(encodeInferInput([1]), 5_000);
      expect(bad.status).to.equal(400);

      const { answer } = await serveJob(deps(docker), await jobBody(Array(16).fill(1)));
      expect(await outbox.has(answer.job_id)).to.equal(true);
    } finally {
      await Promise.all([docker.stop(), local.stop()]);
    }
  });

  describe("a misbehaving model container", function () {
    let broken: DockerModel;
    before(async function () {
      broken = new DockerModel(
        { name: "broken", weightsPath: SIMPLENET, memoryBytes: 96 * MiB, cpus: 1, gpus: 0, server: MISBEHAVING },
        engine.docker,
        silent,
      );
      await broken.start();
    });
    after(async function () {
      await broken?.stop();
    });

    const cases: [string, number, number, string][] = [
      ["a crash", 1, 502, "model_failed"],
      ["a hang", 2, 504, "model_timeout"],
      ["bad output", 3, 502, "bad_output"],
      ["out of memory", 5, 502, "model_failed"],
    ];
    for (const [what, mode, status, code] of cases) {
      const replaced = mode === 3 ? "the container keeps serving" : "the container is replaced";
      it(`${what}: the job fails with ${status} ${code}, no receipt, ${replaced}`, async function () {
        await waitHealthy(broken);
        const before = await outbox.counts();
        const restarts = broken.restarts;
        try {
          await serveJob(deps(broken), await jobBody([mode, ...Array(15).fill(0)]));
          expect.fail("the job should fail");
        } catch (error) {
          expect(error).to.be.instanceOf(JobError);
          expect((error as JobError).status).to.equal(status);
          expect((error as JobError).code).to.equal(code);
        }
        expect(await outbox.counts()).to.deep.equal(before);
        if (mode !== 3) {
          await waitHealthy(broken);
          expect(broken.restarts).to.equal(restarts + 1);
          expect(broken.lastExit?.oomKilled).to.equal(mode === 5);
        }
        const { answer } = await serveJob(deps(broken), await jobBody(Array(16).fill(0)));
        expect(await outbox.has(answer.job_id)).to.equal(true);
      });
    }
  });
});

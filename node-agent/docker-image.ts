// Images for the Docker runtime, built with nothing pulled (this machine reaches no registry):
//   base  — `docker import` of a rootfs holding the pinned Node 22 binary, the shared libraries
//           `ldd` lists for it and for onnxruntime-node's CPU binding, onnxruntime-node itself
//           (linux/x64 files only) and the ONNX model server; tagged by a hash of its inputs.
//   model — FROM base, with the model's weights at /model/model.onnx (legacy builder), tagged by
//           the weights' sha256, so every node serving a version runs the same image content.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import type Docker from "dockerode";

const ROOT = path.resolve(import.meta.dirname, "..");
const SERVER_FILES = ["models/simplenet/server.ts", "models/simplenet/contract.ts"];
const ORT_NATIVE = "node_modules/onnxruntime-node/bin/napi-v6/linux/x64";
/** Where the weights live inside a model image. */
export const IMAGE_MODEL_PATH = "/model/model.onnx";
/** The directory shared with the agent, holding the model server's unix socket. */
export const IMAGE_SOCKET_DIR = "/run/inframesh";

export class DockerImageError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DockerImageError";
  }
}

/** Shared libraries `ldd` lists for `file` (absolute paths), the loader included. */
export function sharedLibraries(file: string): string[] {
  const run = spawnSync("ldd", [file], { encoding: "utf8" });
  if (run.status !== 0) throw new DockerImageError(`ldd ${file} failed: ${run.stderr}`);
  return parseLdd(run.stdout);
}

/** Parses `ldd` output into library paths (vdso and libraries found elsewhere in the rootfs skipped). Pure. */
export function parseLdd(output: string): string[] {
  const libs: string[] = [];
  for (const line of output.split("\n")) {
    const arrow = /=>\s*(\/\S+)/.exec(line);
    const bare = /^\s*(\/\S+)\s+\(/.exec(line);
    const found = arrow?.[1] ?? bare?.[1];
    if (found !== undefined && !found.includes("node_modules")) libs.push(found);
  }
  return libs;
}

function nodeBinary(): string {
  return spawnSync("readlink", ["-f", process.execPath], { encoding: "utf8" }).stdout.trim() || process.execPath;
}

/** Tag of the base image: a hash of the node binary's identity, the server sources and the ORT binding. */
async function baseTag(): Promise<string> {
  const hash = createHash("sha256");
  hash.update(process.version);
  for (const file of SERVER_FILES) hash.update(await readFile(path.join(ROOT, file)));
  hash.update(await readFile(path.join(ROOT, ORT_NATIVE, "onnxruntime_binding.node")));
  return `inframesh/onnx-server:${hash.digest("hex").slice(0, 16)}`;
}

async function imageExists(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch {
    return false;
  }
}

async function followProgress(docker: Docker, stream: NodeJS.ReadableStream, what: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (error: Error | null, events: { error?: string }[]) => {
      const failed = events?.find((e) => e.error !== undefined);
      if (error !== null) reject(new DockerImageError(`${what} failed: ${error.message}`, { cause: error }));
      else if (failed !== undefined) reject(new DockerImageError(`${what} failed: ${failed.error}`));
      else resolve();
    });
  });
}

/** Builds (once) the base image and returns its tag. */
export async function ensureBaseImage(docker: Docker): Promise<string> {
  const tag = await baseTag();
  if (await imageExists(docker, tag)) return tag;
  const rootfs = await mkdtemp(path.join(tmpdir(), "inframesh-rootfs-"));
  try {
    const node = nodeBinary();
    const native = path.join(ROOT, ORT_NATIVE);
    const libs = new Set([
      ...sharedLibraries(node),
      ...sharedLibraries(path.join(native, "onnxruntime_binding.node")),
      ...sharedLibraries(path.join(native, "libonnxruntime.so.1")),
    ]);
    await mkdir(path.join(rootfs, "usr/local/bin"), { recursive: true });
    await copyFile(node, path.join(rootfs, "usr/local/bin/node"));
    for (const lib of libs) {
      await mkdir(path.join(rootfs, path.dirname(lib)), { recursive: true });
      await copyFile(lib, path.join(rootfs, lib)); // follows symlinks: the real file under the linked name
    }
    const app = path.join(rootfs, "app");
    for (const file of SERVER_FILES) {
      await mkdir(path.join(app, path.dirname(file)), { recursive: true });
      await copyFile(path.join(ROOT, file), path.join(app, file));
    }
    await writeFile(path.join(app, "package.json"), '{ "type": "module" }\n');
    const ort = path.join(app, "node_modules/onnxruntime-node");
    await mkdir(ort, { recursive: true });
    await copyFile(path.join(ROOT, "node_modules/onnxruntime-node/package.json"), path.join(ort, "package.json"));
    await cp(path.join(ROOT, "node_modules/onnxruntime-node/dist"), path.join(ort, "dist"), { recursive: true });
    await cp(native, path.join(ort, "bin/napi-v6/linux/x64"), { recursive: true });
    await cp(path.join(ROOT, "node_modules/onnxruntime-common"), path.join(app, "node_modules/onnxruntime-common"), {
      recursive: true,
    });
    for (const dir of ["tmp", "model", IMAGE_SOCKET_DIR.slice(1)])
      await mkdir(path.join(rootfs, dir), { recursive: true });
    await chmod(rootfs, 0o755); // mkdtemp made it 0700: the image's / must be readable by the model's user
    const tar = spawn("tar", ["-C", rootfs, "-c", "."], { stdio: ["ignore", "pipe", "inherit"] });
    const stream = await docker.importImage(
      tar.stdout as unknown as string,
      {
        repo: tag.split(":")[0],
        tag: tag.split(":")[1],
        changes: [`WORKDIR /app`, `ENV PATH=/usr/local/bin`],
      } as object,
    );
    await followProgress(docker, stream, "docker import of the base image");
  } finally {
    await rm(rootfs, { recursive: true, force: true });
  }
  return tag;
}

/**
 * Builds (once) the image of a model whose weights are at `weightsPath`; returns its tag.
 * `server` adds another model server program at /app/custom-server.ts (tests of failures).
 */
export async function ensureModelImage(docker: Docker, weightsPath: string, server?: string): Promise<string> {
  const base = await ensureBaseImage(docker);
  const weights = await readFile(weightsPath);
  const serverBytes = server === undefined ? null : await readFile(server);
  const hash = createHash("sha256").update(weights).update(base);
  if (serverBytes !== null) hash.update(serverBytes);
  const tag = `inframesh/model:${hash.digest("hex").slice(0, 24)}`;
  if (await imageExists(docker, tag)) return tag;
  const context = await mkdtemp(path.join(tmpdir(), "inframesh-image-"));
  try {
    await writeFile(path.join(context, "model.onnx"), weights);
    const lines = [`FROM ${base}`, `COPY model.onnx ${IMAGE_MODEL_PATH}`];
    const src = ["Dockerfile", "model.onnx"];
    if (serverBytes !== null) {
      await writeFile(path.join(context, "custom-server.ts"), serverBytes);
      lines.push("COPY custom-server.ts /app/custom-server.ts");
      src.push("custom-server.ts");
    }
    await writeFile(path.join(context, "Dockerfile"), `${lines.join("\n")}\n`);
    const stream = await docker.buildImage({ context, src }, { t: tag, rm: true });
    await followProgress(docker, stream, "docker build of the model image");
  } finally {
    await rm(context, { recursive: true, force: true });
  }
  return tag;
}

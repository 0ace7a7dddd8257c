// A model release directory → what a publisher uploads and registers: `<dir>/model.yaml`
// (checked), the weights it names as `entrypoint`, sharded into a manifest. Thin I/O over
// parseModelYaml and buildManifest.
import { readFile, stat } from "node:fs/promises";
import { extname, isAbsolute, join, normalize } from "node:path";

import { buildManifest, type BuildResult } from "./builder.ts";
import { ManifestError } from "./errors.ts";
import { descriptorHash, parseModelYaml, type ModelDescriptor } from "./model-yaml.ts";

export interface Release {
  descriptor: ModelDescriptor;
  /** sha256 of the exact model.yaml bytes, 64 hex characters. */
  descriptorHash: string;
  weightsPath: string;
  built: BuildResult;
}

/** The weights' kind as the manifest names it: the entrypoint's extension ("onnx"), else the runtime. */
export function modelKindOf(descriptor: ModelDescriptor): string {
  const extension = extname(descriptor.entrypoint).slice(1).toLowerCase();
  return extension === "" ? descriptor.runtime : extension;
}

/** Reads `<dir>/model.yaml`, shards its entrypoint into `outDir` and returns the manifest. */
export async function buildRelease(dir: string, outDir: string): Promise<Release> {
  const yamlPath = join(dir, "model.yaml");
  let yamlBytes: Buffer;
  try {
    yamlBytes = await readFile(yamlPath);
  } catch (error) {
    throw new ManifestError("IO", `no model.yaml in ${dir}`, { cause: error });
  }
  const descriptor = parseModelYaml(yamlBytes);
  const entrypoint = normalize(descriptor.entrypoint);
  if (isAbsolute(entrypoint) || entrypoint.startsWith("..")) {
    throw new ManifestError("INVALID_OPTIONS", `entrypoint ${descriptor.entrypoint} must be a path inside ${dir}`);
  }
  const weightsPath = join(dir, entrypoint);
  try {
    await stat(weightsPath);
  } catch (error) {
    throw new ManifestError("IO", `model.yaml names entrypoint ${descriptor.entrypoint}, not found in ${dir}`, {
      cause: error,
    });
  }
  const built = await buildManifest({
    weightsPath,
    outDir,
    version: descriptor.version,
    modelKind: modelKindOf(descriptor),
  });
  return { descriptor, descriptorHash: descriptorHash(yamlBytes), weightsPath, built };
}

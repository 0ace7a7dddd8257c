// The hardware spec a node registers: CPU, memory and GPUs (from nvidia-smi where present), as
// canonical JSON whose keccak256 is the on-chain `hardwareSpecHash`. Only stable facts go in (no
// clock speeds, no free memory), so the same machine always hashes the same.
import { spawnSync } from "node:child_process";
import { cpus, totalmem } from "node:os";

import { keccak256, stringToHex, type Hex } from "viem";
import { canonicalJson } from "../sdk/canonical-json.ts";

export { canonicalJson };

export interface GpuSpec {
  name: string;
  /** Total memory in MiB, as nvidia-smi reports it. */
  memory_mib: number;
}

export interface HardwareSpec {
  cpu_model: string;
  cpu_cores: number;
  memory_bytes: number;
  gpus: GpuSpec[];
}

/** Parses `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader` output. Pure. */
export function parseNvidiaSmi(output: string): GpuSpec[] {
  return output
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .map((line) => {
      const comma = line.lastIndexOf(",");
      const name = line.slice(0, comma).trim();
      const memory = /([0-9]+)\s*MiB/.exec(line.slice(comma + 1));
      if (comma < 0 || name === "" || memory === null) throw new Error(`unexpected nvidia-smi line: ${line}`);
      return { name, memory_mib: Number(memory[1]) };
    });
}

/** keccak256 of the spec's canonical JSON: the registry's hardwareSpecHash. Pure. */
export function hardwareSpecHash(spec: HardwareSpec): Hex {
  return keccak256(stringToHex(canonicalJson(spec)));
}

/** This machine's GPUs; none when nvidia-smi is absent or fails. */
export function detectGpus(): GpuSpec[] {
  const run = spawnSync("nvidia-smi", ["--query-gpu=name,memory.total", "--format=csv,noheader"], {
    encoding: "utf8",
    timeout: 10_000,
  });
  if (run.status !== 0 || typeof run.stdout !== "string") return [];
  return parseNvidiaSmi(run.stdout);
}

/** This machine's hardware spec. */
export function detectHardware(): HardwareSpec {
  const cores = cpus();
  return {
    cpu_model: cores[0]?.model.trim() ?? "unknown",
    cpu_cores: cores.length,
    memory_bytes: totalmem(),
    gpus: detectGpus(),
  };
}

export interface GpuUsage {
  index: number;
  utilization_percent: number;
  memory_used_mib: number;
}

/** Parses `nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader,nounits`. Pure. */
export function parseGpuUsage(output: string): GpuUsage[] {
  return output
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .map((line) => {
      const fields = line.split(",").map((f) => Number(f.trim()));
      if (fields.length !== 3 || fields.some((f) => !Number.isFinite(f))) {
        throw new Error(`unexpected nvidia-smi usage line: ${line}`);
      }
      return { index: fields[0]!, utilization_percent: fields[1]!, memory_used_mib: fields[2]! };
    });
}

/** This machine's GPU usage now; [] without nvidia-smi. */
export function readGpuUsage(): GpuUsage[] {
  const run = spawnSync(
    "nvidia-smi",
    ["--query-gpu=index,utilization.gpu,memory.used", "--format=csv,noheader,nounits"],
    {
      encoding: "utf8",
      timeout: 5_000,
    },
  );
  if (run.status !== 0 || typeof run.stdout !== "string") return [];
  try {
    return parseGpuUsage(run.stdout);
  } catch {
    return [];
  }
}

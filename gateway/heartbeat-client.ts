// The node agent's side of heartbeats: build, sign and POST one to every gateway, on an interval.
// The agent calls `startHeartbeats` once its models are loaded and `stop()` on shutdown; a gateway
// that is down or refuses is logged and retried on the next beat, never fatal to the agent.
import os from "node:os";

import type { Address, Hex } from "viem";

import { signHeartbeat, type Hardware } from "./heartbeat.ts";

export interface HeartbeatSource {
  chainId: number;
  /** The node's operator account (a viem local account). */
  signer: { address: Address; signMessage: (args: { message: string }) => Promise<Hex> };
  /** The URL gateways forward jobs to. */
  endpoint: string;
  /** Model ids loaded and ready now. */
  models: () => readonly bigint[];
  /** Fraction of capacity in use now, 0..1. */
  load: () => number;
  hardware?: Hardware;
}

export interface HeartbeatOptions {
  gateways: readonly string[];
  intervalMs?: number;
  timeoutMs?: number;
  onError?: (gateway: string, error: Error) => void;
}

/** This machine's CPUs and memory (GPUs are the agent's to add: it runs nvidia-smi). */
export function localHardware(): Hardware {
  return { cpus: Math.max(1, os.availableParallelism()), memory_bytes: os.totalmem(), gpus: [] };
}

/** Signs one heartbeat and sends it to every gateway; resolves with each gateway's outcome. */
export async function sendHeartbeat(
  source: HeartbeatSource,
  options: Pick<HeartbeatOptions, "gateways" | "timeoutMs">,
  nowMs: number = Date.now(),
): Promise<{ gateway: string; ok: boolean; status?: number; reason?: string }[]> {
  const signed = await signHeartbeat(source.signer, {
    chain_id: source.chainId,
    node: source.signer.address,
    endpoint: source.endpoint,
    models: source.models().map(Number),
    load: Math.min(1, Math.max(0, source.load())),
    hardware: source.hardware ?? localHardware(),
    timestamp: nowMs,
  });
  const body = JSON.stringify(signed);
  return Promise.all(
    options.gateways.map(async (gateway) => {
      try {
        const response = await fetch(`${gateway.replace(/\/+$/, "")}/v1/heartbeats`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
          signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
        });
        if (response.ok) return { gateway, ok: true, status: response.status };
        const answer = (await response.json().catch(() => ({}))) as { reason?: string };
        return { gateway, ok: false, status: response.status, reason: answer.reason ?? response.statusText };
      } catch (error) {
        return { gateway, ok: false, reason: (error as Error).message };
      }
    }),
  );
}

/** Sends a heartbeat now and every `intervalMs` (default 2 s) until `stop()`. */
export function startHeartbeats(source: HeartbeatSource, options: HeartbeatOptions): { stop(): Promise<void> } {
  const intervalMs = options.intervalMs ?? 2_000;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<unknown> = Promise.resolve();
  const beat = () => {
    inFlight = sendHeartbeat(source, options)
      .then((outcomes) => {
        for (const o of outcomes) {
          if (!o.ok) options.onError?.(o.gateway, new Error(`${o.status ?? "unreachable"}: ${o.reason ?? ""}`));
        }
      })
      .catch((error: unknown) => options.onError?.("(all)", error as Error))
      .finally(() => {
        if (!stopped) timer = setTimeout(beat, intervalMs);
      });
  };
  beat();
  return {
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await inFlight;
    },
  };
}

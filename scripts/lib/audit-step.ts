// The demo's closing step on each network: `infra audit --all` run as an auditor runs it, a child
// process of the real CLI with nothing but the deployment record, the RPC endpoint, the blob store
// and the oracle's URL. It recomputes every settlement from its published receipt batch and every
// balance from events (auditor/); the demo fails unless it exits 0.
import { execFile } from "node:child_process";
import path from "node:path";

import type { InferenceNetwork } from "./inference-network.ts";
import { PROJECT_ROOT } from "./local-chain.ts";

const INFRA_CLI = path.join(PROJECT_ROOT, "scripts", "cli", "infra.ts");
const AUDIT_TIMEOUT_MS = 300_000;

export interface AuditStepResult {
  /** The audit's closing line ("audit passed: everything matches the chain at block N …"). */
  verdict: string;
  command: string;
}

/** Runs `infra --network localhost audit --all` against `net`; throws with its output unless it passes. */
export async function runAuditStep(
  say: (text: string) => void,
  net: Pick<InferenceNetwork, "chain" | "deploymentFile" | "blobPeerUrl">,
  oracleUrl: string,
): Promise<AuditStepResult> {
  const args = ["--network", "localhost", "audit", "--all", "--blob-peer", net.blobPeerUrl, "--oracle", oracleUrl];
  const command = `infra ${args.join(" ")}`;
  say(`Auditor: ${command}`);
  const env = {
    ...process.env,
    INFRAMESH_RPC_URL: net.chain.rpcUrl,
    INFRAMESH_DEPLOYMENTS_DIR: path.dirname(net.deploymentFile),
  };
  const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [INFRA_CLI, ...args],
      { cwd: PROJECT_ROOT, env, timeout: AUDIT_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
  for (const line of run.stdout.trimEnd().split("\n")) console.log(`  ${line}`);
  const verdict = run.stdout.trimEnd().split("\n").at(-1) ?? "";
  if (run.code !== 0 || !verdict.startsWith("audit passed"))
    throw new Error(`${command} exited ${run.code}:\n${run.stdout}${run.stderr}`);
  return { verdict, command };
}

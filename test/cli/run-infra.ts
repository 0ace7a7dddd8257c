// Runs the `infra` CLI as a user does: a child process with this process's Node (22), from the
// project root, with the test's environment. Shared by the CLI tests.
import { execFile } from "node:child_process";
import path from "node:path";

import { PROJECT_ROOT } from "../../scripts/lib/local-chain.ts";

export const CLI = path.join(PROJECT_ROOT, "scripts", "cli", "infra.ts");

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `infra …args` under `env` (plus `extraEnv`); resolves with its exit code and output. */
export function runInfra(
  env: NodeJS.ProcessEnv,
  args: readonly string[],
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: PROJECT_ROOT, env: { ...env, ...extraEnv }, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

// `node node-agent/main.ts --config <file>` (or `infra node start`): runs the agent until SIGINT/SIGTERM.
import { parseArgs } from "node:util";

import { AgentConfigError, loadAgentConfig } from "./config.ts";
import { startAgent } from "./agent.ts";
import { releaseZkResources } from "../circuits/prover.ts";

const { values } = parseArgs({ options: { config: { type: "string", default: "node-agent.yaml" } } });

try {
  const config = await loadAgentConfig(values.config);
  const agent = await startAgent(config);
  process.stdout.write(`node agent ${agent.nodeId} listening at ${agent.url}\n`);
  await new Promise<void>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => resolve());
  });
  await agent.stop();
  await releaseZkResources(); // snarkjs's curve worker threads would keep the process alive
} catch (error) {
  const message = error instanceof AgentConfigError ? error.message : `node agent: ${(error as Error).message}`;
  process.stderr.write(`${message}\n`);
  process.exitCode = 1;
}

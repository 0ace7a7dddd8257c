// `node gateway/main.ts --config gateway.yaml`: runs one gateway instance until SIGINT/SIGTERM.
import { parseArgs } from "node:util";

import { GatewayConfigError, loadGatewayConfig } from "./config.ts";
import { startGateway } from "./server.ts";

const { values } = parseArgs({ options: { config: { type: "string", default: "gateway.yaml" } } });

try {
  const config = await loadGatewayConfig(values.config);
  const gateway = await startGateway(config);
  process.stdout.write(`gateway listening at ${gateway.url}\n`);
  await new Promise<void>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => resolve());
  });
  await gateway.stop();
} catch (error) {
  const message = error instanceof GatewayConfigError ? error.message : `gateway: ${(error as Error).message}`;
  process.stderr.write(`${message}\n`);
  process.exitCode = 1;
}

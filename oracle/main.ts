// `node oracle/main.ts`: runs one oracle process from INFRAMESH_ORACLE_CONFIG and the environment
// (see docs/oracle.md). Exits 1 with one line naming what to fix when the config is wrong.
import { loadOracleConfig } from "./config.ts";
import { OracleChainError, OracleConfigError } from "./errors.ts";
import { startOracle } from "./service.ts";

try {
  const config = loadOracleConfig();
  // Fault injection for the crash tests: SIGKILL this process right after an epoch step is persisted.
  const killAfter = process.env.INFRAMESH_ORACLE_KILL_AFTER_STATE;
  const oracle = await startOracle(config, {
    ...(killAfter
      ? {
          onEpochStep: (row) => {
            if (row.state === killAfter) process.kill(process.pid, "SIGKILL");
          },
        }
      : {}),
  });
  // A line tests and scripts wait for; the URL is where the API listens.
  console.log(`oracle listening on ${oracle.url || "(no api role)"} as ${config.oracleAddress}`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await oracle.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
} catch (error) {
  if (error instanceof OracleConfigError || error instanceof OracleChainError) {
    console.error(`oracle: ${error.message}`);
    process.exit(1);
  }
  throw error;
}

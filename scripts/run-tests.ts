// `npm test`: runs every suite, streams its output, and closes with one plain line
// "N passed, N failed" summed over all suites (the line CI reads; mocha's own is not).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

interface Suite {
  name: string;
  args: string[];
}

interface SuiteResult {
  name: string;
  passed: number;
  failed: number;
  pending: number;
  exitCode: number;
}

/** How long a suite may stay alive after mocha printed its closing counts. */
const EXIT_GRACE_MS = 60_000;

const root = fileURLToPath(new URL("..", import.meta.url));
const hardhat = fileURLToPath(new URL("../node_modules/hardhat/dist/src/cli.js", import.meta.url));

const suites: Suite[] = [
  { name: "mocha (contracts, deploy, demo)", args: [hardhat, "test", "mocha"] },
  { name: "solidity (unit, fuzz, invariant)", args: [hardhat, "test", "solidity"] },
];

/** Reads mocha-style closing counts ("N passing", "N failing", "N pending") from a suite's output. */
function parseCounts(output: string): { passed: number; failed: number; pending: number } {
  const count = (word: string) =>
    [...output.matchAll(new RegExp(`^\\s*(\\d+) ${word}\\b`, "gm"))].reduce((sum, m) => sum + Number(m[1]), 0);
  return { passed: count("passing"), failed: count("failing"), pending: count("pending") };
}

function run(suite: Suite): Promise<SuiteResult> {
  return new Promise((resolve) => {
    console.log(`\n=== ${suite.name} ===`);
    const child = spawn(process.execPath, suite.args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let hung = false;
    let exitWatch: NodeJS.Timeout | undefined;
    const tee = (sink: NodeJS.WriteStream) => (chunk: Buffer) => {
      output += chunk.toString();
      sink.write(chunk);
      // Mocha has reported; a process still alive a minute later is held open by a handle some
      // test left behind (a server, a timer). End it so the run finishes, and count it as a failure.
      if (!exitWatch && /^\s*\d+ passing\b/m.test(output)) {
        exitWatch = setTimeout(() => {
          hung = true;
          console.error(
            `${suite.name}: still running ${EXIT_GRACE_MS / 1000} s after reporting: a test left a handle open; killed`,
          );
          child.kill("SIGKILL");
        }, EXIT_GRACE_MS);
      }
    };
    child.stdout.on("data", tee(process.stdout));
    child.stderr.on("data", tee(process.stderr));
    child.on("close", (code) => {
      clearTimeout(exitWatch);
      const counts = parseCounts(output);
      // A suite that crashed before reporting counts as one failure, never as zero tests: a
      // non-zero exit without failures, or no closing "N passing" line at all (a test file that
      // calls process.exit while it loads ends the run with code 0 and no report).
      const reported = /^\s*\d+ passing\b/m.test(output);
      const crashed = (code !== 0 && counts.failed === 0) || !reported || hung;
      if (!reported) console.error(`${suite.name}: ended (exit code ${code}) without reporting its tests`);
      resolve({ name: suite.name, ...counts, failed: counts.failed + (crashed ? 1 : 0), exitCode: code ?? 1 });
    });
  });
}

const results: SuiteResult[] = [];
for (const suite of suites) results.push(await run(suite));

console.log("\nSuite summary:");
console.table(results);
const sum = (key: "passed" | "failed" | "pending") => results.reduce((total, r) => total + r[key], 0);
if (sum("pending") > 0) console.log(`${sum("pending")} pending (each names its reason in the test file)`);
console.log(`${sum("passed")} passed, ${sum("failed")} failed`);
process.exitCode = sum("failed") > 0 || results.some((r) => r.exitCode !== 0) ? 1 : 0;

// `infra <command> --help` for every command and subcommand the CLI lists: each exits 0 and shows
// its usage. A newcomer's first step with any command; an option whose default cannot be printed
// (a bigint) once made `infra model publish --help` crash.
import { expect } from "chai";

import { runInfra } from "./run-infra.ts";

/** The command names under "Commands:" in a help text (without `help`). */
function listedCommands(help: string): string[] {
  const section = help.split(/^Commands:$/m)[1] ?? "";
  return [...section.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]!).filter((name) => name !== "help");
}

describe("infra --help (every command)", function () {
  this.timeout(180_000);

  it("lists and explains every command and subcommand, each exiting 0", async function () {
    const env = { ...process.env };
    const top = await runInfra(env, ["--help"]);
    expect(top.code, top.stderr).to.equal(0);
    const commands = listedCommands(top.stdout);
    expect(commands).to.include.members(["model", "stake", "node", "infer", "claim", "audit", "events"]);

    const paths: string[][] = [];
    for (const command of commands) {
      const help = await runInfra(env, [command, "--help"]);
      expect(help.code, `infra ${command} --help: ${help.stderr}`).to.equal(0);
      expect(help.stdout, `infra ${command} --help`).to.include(`Usage: infra ${command}`);
      for (const sub of listedCommands(help.stdout)) paths.push([command, sub]);
    }
    expect(paths.map((p) => p.join(" "))).to.include.members(["model publish", "node init", "wallet create"]);
    // Subcommands in parallel, a few at a time: each is a process start.
    for (let i = 0; i < paths.length; i += 4) {
      await Promise.all(
        paths.slice(i, i + 4).map(async (p) => {
          const help = await runInfra(env, [...p, "--help"]);
          expect(help.code, `infra ${p.join(" ")} --help: ${help.stderr}`).to.equal(0);
          expect(help.stdout, `infra ${p.join(" ")} --help`).to.include(`Usage: infra ${p.join(" ")}`);
        }),
      );
    }
  });
});

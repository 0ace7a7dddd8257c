// What every `infra` command shares: the global options and the one way to print a result.
import type { Command } from "commander";

import { toJson } from "./format.ts";

export interface GlobalOptions {
  network: string;
  json: boolean;
  keystore?: string;
}

export function globals(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

/** Text for people, JSON for scripts: exactly one of them on stdout. */
export function print(options: GlobalOptions, json: unknown, text: string): void {
  process.stdout.write(options.json ? toJson(json) : `${text}\n`);
}

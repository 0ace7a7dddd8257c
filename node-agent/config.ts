// The node agent's config file (YAML), validated once with zod. Every wrong field is reported on
// its own line with what to write instead. Relative paths are resolved against the config file's
// directory, so a config can be moved with its data. Secrets never live here: the operator key is
// in an encrypted keystore, its password in INFRAMESH_KEYSTORE_PASSWORD or a password file.
import { readFile } from "node:fs/promises";
import path from "node:path";

import { parseDocument } from "yaml";
import { z } from "zod";
import { configIssues } from "../sdk/config-issues.ts";

export const RUNTIMES = ["process", "docker"] as const;
export type RuntimeKind = (typeof RUNTIMES)[number];

const httpUrl = (what: string) =>
  z
    .string({ error: `expected ${what} as a string such as http://127.0.0.1:8545` })
    .regex(/^https?:\/\/[^\s/]+(\/[^\s]*)?$/, `expected an http(s) URL such as http://127.0.0.1:8545`)
    .transform((url) => url.replace(/\/+$/, ""));

const modelEntry = z
  .object({
    model: z.union([
      z
        .string({ error: "expected a model name or id" })
        .regex(/^[a-z0-9][a-z0-9._-]*$/, "expected a registered model name (lowercase) or id"),
      z.number().int("a model id is a whole number").positive("model ids start at 1"),
    ]),
    bundle: z.string().min(1, "must not be empty").optional(),
  })
  .strict();

const configSchema = z
  .object({
    chain: z
      .object({
        rpc_url: httpUrl("the chain's RPC URL"),
        network: z
          .string()
          .regex(/^[a-zA-Z0-9_-]+$/, "expected a network name such as localhost")
          .optional(),
        deployment: z.string().min(1, "must not be empty").optional(),
      })
      .strict()
      .refine((c) => (c.network === undefined) !== (c.deployment === undefined), {
        message: "give exactly one of network (reads deployments/<network>.json) or deployment (a file path)",
      }),
    listen: z
      .object({
        host: z.string().min(1).default("127.0.0.1"),
        port: z.number().int("expected a whole port number").min(0).max(65535, "expected 0..65535"),
      })
      .strict(),
    endpoint: httpUrl("the public endpoint").optional(),
    models: z
      .array(modelEntry, { error: "expected a list of models, e.g. [{ model: simplenet }]" })
      .min(1, "serve at least one model"),
    runtime: z.enum(RUNTIMES, { error: `expected one of ${RUNTIMES.join(", ")}` }).default("process"),
    oracles: z.array(httpUrl("an oracle URL")).min(1, "give at least one oracle URL"),
    gateway: httpUrl("the gateway URL").optional(),
    blob_peers: z.array(httpUrl("a blob peer URL")).default([]),
    data_dir: z.string().min(1, "must not be empty"),
    keystore: z.string().min(1, "must not be empty"),
    keystore_password_file: z.string().min(1).optional(),
    job_timeout_ms: z.number().int().min(100, "at least 100").max(600_000, "at most 600000").default(10_000),
    log_level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  })
  .strict();

export type AgentConfigInput = z.input<typeof configSchema>;
export type AgentConfig = z.output<typeof configSchema> & {
  /** The config file's directory: relative paths were resolved against it. */
  baseDir: string;
};

export interface ConfigIssue {
  path: string;
  message: string;
}

export class AgentConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(source: string, issues: readonly ConfigIssue[], options?: ErrorOptions) {
    super(
      `invalid node agent config ${source}:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")}`,
      options,
    );
    this.name = "AgentConfigError";
    this.issues = issues;
  }
}

/** Validates a parsed config; paths are resolved against `baseDir`. Pure. */
export function parseAgentConfig(value: unknown, baseDir: string, source = "(inline)"): AgentConfig {
  const parsed = configSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    throw new AgentConfigError(source, configIssues(parsed.error), { cause: parsed.error });
  }
  const c = parsed.data;
  const resolve = (p: string) => path.resolve(baseDir, p);
  return {
    ...c,
    chain: { ...c.chain, ...(c.chain.deployment === undefined ? {} : { deployment: resolve(c.chain.deployment) }) },
    models: c.models.map((m) => (m.bundle === undefined ? m : { ...m, bundle: resolve(m.bundle) })),
    data_dir: resolve(c.data_dir),
    keystore: resolve(c.keystore),
    ...(c.keystore_password_file === undefined ? {} : { keystore_password_file: resolve(c.keystore_password_file) }),
    baseDir,
  };
}

/** Parses YAML config text. Pure. */
export function parseAgentConfigYaml(text: string, baseDir: string, source = "(inline)"): AgentConfig {
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new AgentConfigError(
      source,
      document.errors.map((e) => ({ path: "(yaml)", message: e.message.split("\n")[0]! })),
      { cause: document.errors[0] },
    );
  }
  return parseAgentConfig(document.toJS({ maxAliasCount: 100 }), baseDir, source);
}

/** Reads and validates the config file at `file`. */
export async function loadAgentConfig(file: string): Promise<AgentConfig> {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = await readFile(absolute, "utf8");
  } catch (error) {
    throw new AgentConfigError(
      absolute,
      [{ path: "(file)", message: "cannot be read (create it with infra node init)" }],
      {
        cause: error,
      },
    );
  }
  return parseAgentConfigYaml(text, path.dirname(absolute), absolute);
}

/** The URL the node registers on chain: `endpoint`, else its listen address. Pure. */
export function publicEndpoint(config: Pick<AgentConfig, "endpoint" | "listen">): string {
  return config.endpoint ?? `http://${config.listen.host}:${config.listen.port}`;
}

// `model.yaml`, the descriptor a model version is published with: parsed with `yaml`, checked
// with zod, every wrong field reported on its own line. The registry records the sha256 of the
// file's exact bytes (`descriptorHash`), never of a re-serialisation.
import { parseDocument } from "yaml";
import { z } from "zod";
import { hashToHex, sha256 } from "./hash.ts";

/** Longest name and version, in bytes: the registry's MAX_NAME_LENGTH and MAX_VERSION_LENGTH. */
export const MAX_NAME_LENGTH = 64;
export const MAX_VERSION_LENGTH = 64;
/** Largest descriptor accepted, in bytes. */
export const MAX_MODEL_YAML_BYTES = 64 * 1024;

const MEMORY_UNITS: Record<string, number> = {
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};
const MEMORY = /^([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/;

export interface ModelDescriptor {
  name: string;
  version: string;
  runtime: string;
  entrypoint: string;
  resources: {
    /** CPU cores (fractions allowed). */
    cpu: number;
    /** Memory in bytes (written in model.yaml as bytes or with a unit: 512Mi, 2Gi, 1G). */
    memory: number;
    /** Whole GPUs; 0 when none is needed. */
    gpu: number;
  };
  input_schema: Record<string, unknown>;
  output_schema: Record<string, unknown>;
}

export interface ModelYamlIssue {
  path: string;
  message: string;
}

export class ModelYamlError extends Error {
  readonly issues: readonly ModelYamlIssue[];

  constructor(issues: readonly ModelYamlIssue[], options?: ErrorOptions) {
    super(`invalid model.yaml:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")}`, options);
    this.name = "ModelYamlError";
    this.issues = issues;
  }
}

const memory = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const text = String(value);
  const match = MEMORY.exec(text);
  const bytes = match ? Number(match[1]) * MEMORY_UNITS[match[2] ?? ""]! : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    ctx.addIssue({
      code: "custom",
      message: `expected a positive size such as 536870912, 512Mi or 2Gi, got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return bytes;
});

const jsonSchema = z.record(z.string(), z.unknown(), {
  error: "expected a mapping (a JSON Schema object)",
});

const descriptorSchema = z
  .object({
    name: z
      .string({ error: "expected a string" })
      .regex(
        /^[a-z0-9][a-z0-9._-]*$/,
        "use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit",
      )
      .max(MAX_NAME_LENGTH, `at most ${MAX_NAME_LENGTH} characters`),
    version: z
      .string({ error: 'expected a string (quote numbers such as "1.0")' })
      .regex(/^[0-9A-Za-z][0-9A-Za-z.+_-]*$/, "use letters, digits, '.', '+', '_' and '-'")
      .max(MAX_VERSION_LENGTH, `at most ${MAX_VERSION_LENGTH} characters`),
    runtime: z
      .string({ error: "expected a string" })
      .regex(/^[a-z][a-z0-9._@-]*$/, "expected a runtime name such as onnxruntime or container")
      .max(64, "at most 64 characters"),
    entrypoint: z
      .string({ error: "expected a string" })
      .trim()
      .min(1, "must not be empty")
      .max(1024, "at most 1024 characters"),
    resources: z
      .object(
        {
          cpu: z
            .number({ error: "expected a number of CPU cores" })
            .positive("must be positive")
            .max(1024, "at most 1024"),
          memory,
          gpu: z
            .number({ error: "expected a whole number of GPUs" })
            .int("expected a whole number of GPUs")
            .nonnegative("must not be negative")
            .max(64, "at most 64")
            .default(0),
        },
        { error: "expected a mapping with cpu, memory and gpu" },
      )
      .strict(),
    input_schema: jsonSchema,
    output_schema: jsonSchema,
  })
  .strict();

function issuePath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? "(document)" : path.map(String).join(".");
}

/** Parses and validates model.yaml text or bytes; throws ModelYamlError listing every wrong field. */
export function parseModelYaml(source: string | Uint8Array): ModelDescriptor {
  const bytes = typeof source === "string" ? Buffer.from(source) : Buffer.from(source);
  if (bytes.length > MAX_MODEL_YAML_BYTES) {
    throw new ModelYamlError([{ path: "(document)", message: `larger than ${MAX_MODEL_YAML_BYTES} bytes` }]);
  }
  const document = parseDocument(bytes.toString("utf8"), { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ModelYamlError(
      document.errors.map((e) => ({ path: "(yaml)", message: e.message.split("\n")[0]! })),
      { cause: document.errors[0] },
    );
  }
  const value: unknown = document.toJS({ maxAliasCount: 100 });
  const parsed = descriptorSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => {
      if (issue.code === "unrecognized_keys") {
        return { path: issuePath(issue.path), message: `unknown field(s) ${issue.keys.join(", ")}` };
      }
      if (issue.code === "invalid_type" && issue.input === undefined) {
        return { path: issuePath(issue.path), message: "is required" };
      }
      return { path: issuePath(issue.path), message: issue.message };
    });
    throw new ModelYamlError(issues, { cause: parsed.error });
  }
  return parsed.data;
}

/** The registry's descriptorHash: sha256 of the exact model.yaml bytes, as 64 lowercase hex characters. */
export function descriptorHash(bytes: Uint8Array): string {
  return hashToHex(sha256(bytes));
}

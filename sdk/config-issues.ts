// One way to turn a zod error in a config file into the lines a user reads: the field's dotted
// path and what is wrong with it ("is required", "unknown field(s) …", the schema's message).
import type { z } from "zod";

export interface ConfigIssue {
  path: string;
  message: string;
}

const issuePath = (p: readonly PropertyKey[]) => (p.length === 0 ? "(document)" : p.map(String).join("."));

/** The issues of a failed `safeParse(value, { reportInput: true })`, one per wrong field. Pure. */
export function configIssues(error: z.ZodError): ConfigIssue[] {
  return error.issues.map((issue) => {
    if (issue.code === "unrecognized_keys") {
      return { path: issuePath(issue.path), message: `unknown field(s) ${issue.keys.join(", ")}` };
    }
    if (issue.code === "invalid_type" && issue.input === undefined) {
      return { path: issuePath(issue.path), message: "is required" };
    }
    return { path: issuePath(issue.path), message: issue.message };
  });
}

import { expect } from "chai";
import { descriptorHash, ModelYamlError, parseModelYaml } from "../../sdk/manifest/model-yaml.ts";
import { sha256 } from "../../sdk/manifest/hash.ts";

const VALID = `name: llama-tiny
version: "1.2.0"
runtime: onnxruntime
entrypoint: model.onnx
resources:
  cpu: 0.5
  memory: 512Mi
  gpu: 0
input_schema:
  type: object
  properties:
    tokens: { type: array, items: { type: integer } }
output_schema:
  type: object
`;

function issuesOf(text: string): Record<string, string> {
  try {
    parseModelYaml(text);
  } catch (error) {
    expect(error).to.be.instanceOf(ModelYamlError);
    const e = error as ModelYamlError;
    expect(e.message).to.match(/^invalid model\.yaml:/);
    return Object.fromEntries(e.issues.map((i) => [i.path, i.message]));
  }
  return expect.fail("expected a ModelYamlError");
}

/** VALID with one top-level line (or block) replaced. */
function withField(field: string, replacement: string): string {
  const lines = VALID.split("\n");
  const start = lines.findIndex((l) => l.startsWith(`${field}:`));
  let end = start + 1;
  while (end < lines.length && lines[end]!.startsWith(" ")) end++;
  lines.splice(start, end - start, ...(replacement === "" ? [] : [replacement]));
  return lines.join("\n");
}

describe("model.yaml parser (sdk/manifest/model-yaml.ts)", () => {
  it("parses a valid descriptor and normalises memory to bytes", () => {
    const d = parseModelYaml(VALID);
    expect(d.name).to.equal("llama-tiny");
    expect(d.version).to.equal("1.2.0");
    expect(d.runtime).to.equal("onnxruntime");
    expect(d.entrypoint).to.equal("model.onnx");
    expect(d.resources).to.deep.equal({ cpu: 0.5, memory: 512 * 2 ** 20, gpu: 0 });
    expect(d.input_schema).to.deep.equal({
      type: "object",
      properties: { tokens: { type: "array", items: { type: "integer" } } },
    });
  });

  it("accepts memory as bytes or with SI and binary units, and defaults gpu to 0", () => {
    const memoryOf = (m: string) =>
      parseModelYaml(withField("resources", `resources:\n  cpu: 2\n  memory: ${m}`)).resources;
    expect(memoryOf("1048576")).to.deep.equal({ cpu: 2, memory: 1048576, gpu: 0 });
    expect(memoryOf("2Gi").memory).to.equal(2 * 2 ** 30);
    expect(memoryOf("3G").memory).to.equal(3e9);
    expect(memoryOf("64k").memory).to.equal(64_000);
  });

  it("names each missing field", () => {
    for (const field of ["name", "version", "runtime", "entrypoint", "resources", "input_schema", "output_schema"]) {
      expect(issuesOf(withField(field, ""))).to.deep.equal({ [field]: "is required" }, field);
    }
    const noCpu = issuesOf(withField("resources", "resources:\n  memory: 1Gi"));
    expect(noCpu).to.deep.equal({ "resources.cpu": "is required" });
  });

  it("gives a clear message for each wrong field, all at once", () => {
    const text = `name: Llama Tiny
version: 1.0
runtime: ONNX
entrypoint: "  "
resources:
  cpu: -1
  memory: lots
  gpu: 1.5
input_schema: [1, 2]
output_schema: text
colour: blue
`;
    const issues = issuesOf(text);
    expect(issues).to.have.keys(
      "name",
      "version",
      "runtime",
      "entrypoint",
      "resources.cpu",
      "resources.memory",
      "resources.gpu",
      "input_schema",
      "output_schema",
      "(document)",
    );
    expect(issues.name).to.include("lowercase letters");
    expect(issues.version).to.include('quote numbers such as "1.0"');
    expect(issues.runtime).to.include("runtime name");
    expect(issues.entrypoint).to.equal("must not be empty");
    expect(issues["resources.cpu"]).to.equal("must be positive");
    expect(issues["resources.memory"]).to.include('got "lots"');
    expect(issues["resources.gpu"]).to.equal("expected a whole number of GPUs");
    expect(issues.input_schema).to.equal("expected a mapping (a JSON Schema object)");
    expect(issues.output_schema).to.equal("expected a mapping (a JSON Schema object)");
    expect(issues["(document)"]).to.equal("unknown field(s) colour");
  });

  it("rejects too long names and versions, unknown resource fields, zero memory", () => {
    expect(issuesOf(withField("name", `name: ${"a".repeat(65)}`)).name).to.equal("at most 64 characters");
    expect(issuesOf(withField("version", `version: "${"1".repeat(65)}"`)).version).to.equal("at most 64 characters");
    const resources = issuesOf(withField("resources", "resources:\n  cpu: 1\n  memory: 0\n  tpu: 2"));
    expect(resources["resources.memory"]).to.include("positive size");
    expect(resources.resources).to.equal("unknown field(s) tpu");
  });

  it("reports YAML syntax errors, duplicate keys, non-mapping documents and oversize files", () => {
    expect(issuesOf("name: [unclosed\n")).to.have.key("(yaml)");
    expect(issuesOf(`${VALID}name: again\n`)["(yaml)"]).to.include("unique");
    expect(issuesOf("- just\n- a list\n")["(document)"]).to.be.a("string");
    expect(issuesOf(`# ${"x".repeat(70_000)}\n${VALID}`)["(document)"]).to.include("larger than");
    // Parser and schema failures keep their underlying error as the cause.
    for (const text of ["name: [unclosed\n", withField("name", "")]) {
      try {
        parseModelYaml(text);
        expect.fail("expected a ModelYamlError");
      } catch (error) {
        expect((error as ModelYamlError).cause).to.be.instanceOf(Error);
      }
    }
  });

  it("hashes the exact bytes for the registry's descriptorHash", () => {
    const bytes = Buffer.from(VALID);
    expect(descriptorHash(bytes)).to.equal(sha256(bytes).toString("hex"));
    expect(descriptorHash(Buffer.from(VALID + "\n"))).to.not.equal(descriptorHash(bytes));
  });
});

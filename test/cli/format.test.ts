// The `infra` CLI's pure parts: arguments, output, the progress bar.
import { expect } from "chai";

import {
  CliError,
  formatModel,
  modelJson,
  parseManifestHash,
  parseModelRef,
  parsePort,
  parsePositiveInt,
  parsePrice,
  renderProgress,
  toJson,
} from "../../scripts/cli/format.ts";
import type { ModelStatus } from "../../sdk/models.ts";

const HASH = "ab".repeat(32);
const status: ModelStatus = {
  modelId: 3n,
  name: "simplenet",
  publisher: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
  pendingPublisher: "0x0000000000000000000000000000000000000000",
  versionCount: 2n,
  serving: {
    version: 1n,
    record: {
      version: "0.2.0",
      descriptorHash: `0x${"cd".repeat(32)}`,
      manifestHash: `0x${HASH}`,
      shardRoot: `0x${"ef".repeat(32)}`,
      shardCount: 14,
      price: 25n,
      zkVerifier: "0x0000000000000000000000000000000000000000",
      verifyingKeyHash: `0x${"00".repeat(32)}`,
      access: { kind: "public", token: "0x0000000000000000000000000000000000000000", threshold: 0n },
    },
  },
};

describe("infra CLI formatting", function () {
  it("parses models, prices, manifest hashes and counts, refusing the rest with a CliError", function () {
    expect(parseModelRef("12")).to.deep.equal({ id: 12n });
    expect(parseModelRef("simplenet")).to.deep.equal({ name: "simplenet" });
    expect(() => parseModelRef("0")).to.throw(CliError, /start at 1/);
    expect(parsePrice("1000000000000000000000")).to.equal(10n ** 21n);
    expect(() => parsePrice("1.5")).to.throw(CliError, /whole number of base units/);
    expect(parseManifestHash(`0x${HASH.toUpperCase()}`)).to.equal(HASH);
    expect(() => parseManifestHash("12")).to.throw(CliError, /64 hex characters/);
    expect(parsePositiveInt("--copies")("3")).to.equal(3);
    expect(() => parsePositiveInt("--copies")("0")).to.throw(CliError, /--copies must be a positive/);
    expect(parsePort("0")).to.equal(0);
    expect(() => parsePort("70000")).to.throw(CliError, /port must be 0..65535/);
  });

  it("prints a model as a field table and as JSON with bigints as strings", function () {
    const text = formatModel(status);
    expect(text).to.match(/^serving +0\.2\.0 \(version #1\)$/m);
    expect(text).to.match(new RegExp(`^manifest hash +${HASH}$`, "m"));
    expect(formatModel({ ...status, serving: undefined })).to.match(
      /^serving +none \(setMatureModel not called yet\)$/m,
    );
    const json = JSON.parse(toJson(modelJson(status)));
    expect(json).to.deep.include({ modelId: "3", versionCount: "2" });
    expect(json.serving).to.deep.include({ versionNumber: "1", version: "0.2.0", manifestHash: HASH, price: "25" });
    expect(JSON.parse(toJson(modelJson({ ...status, serving: undefined }))).serving).to.equal(null);
  });

  it("draws the upload progress", function () {
    expect(renderProgress(0, 2 * 1024 * 1024, 10)).to.equal("[----------]   0%  0.0 / 2.0 MiB");
    expect(renderProgress(1024 * 1024, 2 * 1024 * 1024, 10)).to.equal("[#####-----]  50%  1.0 / 2.0 MiB");
    expect(renderProgress(0, 0, 4)).to.equal("[####] 100%  0.0 / 0.0 MiB");
  });
});

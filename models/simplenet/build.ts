// `npm run model:simplenet`: writes models/simplenet/simplenet.onnx (reproducible byte for byte)
// and prints its sha256.
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";

import { buildSimplenet } from "./simplenet.ts";

const out = path.join(import.meta.dirname, "simplenet.onnx");
const bytes = buildSimplenet();
await writeFile(out, bytes);
console.log(`${out}: ${bytes.length} bytes, sha256 ${createHash("sha256").update(bytes).digest("hex")}`);

// Writes the shared shard Merkle vectors (JSON and the generated Solidity library).
// Run `npm run vectors` after changing the tree; the tests fail until the files are rewritten.
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { buildVectors, JSON_PATH, renderJson, renderSolidity, SOLIDITY_PATH } from "./shard-merkle-vectors.ts";

const root = new URL("../../", import.meta.url);
const vectors = buildVectors();
for (const [path, text] of [
  [JSON_PATH, await renderJson(vectors)],
  [SOLIDITY_PATH, await renderSolidity(vectors)],
] as const) {
  await writeFile(fileURLToPath(new URL(path, root)), text);
  console.log(`wrote ${path}`);
}

// `node gateway/keys.ts`: issues a new API key. Prints the key once (give it to the client) and
// the record to paste under `api_keys:` in the gateway config (add its `client:` account).
import { generateApiKey } from "./api-keys.ts";

const { key, record } = generateApiKey();
process.stdout.write(
  `API key (shown once, store it with the client): ${key}\n\n` +
    `gateway config entry:\n  - id: ${record.id}\n    salt: "${record.salt}"\n    hash: "${record.hash}"\n` +
    `    client: { keystore: client.json }   # or { private_key_env: CLIENT_KEY }\n`,
);

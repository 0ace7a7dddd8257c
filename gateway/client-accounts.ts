// Custodial mode: an API key maps to a client account whose signing key the gateway holds, so the
// gateway signs work units for clients that do not sign their own. The key is read once at start
// from an encrypted JSON keystore (password in INFRAMESH_GATEWAY_KEYSTORE_PASSWORD) or from a named
// environment variable, lives only in memory, and is never logged.
import { readFile } from "node:fs/promises";

import { Wallet } from "ethers";
import type { Hex } from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";

import type { GatewayConfig } from "./config.ts";

export const KEYSTORE_PASSWORD_ENV = "INFRAMESH_GATEWAY_KEYSTORE_PASSWORD";

export class ClientKeyError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ClientKeyError";
  }
}

/** Unlocks the client account of one API key. */
export async function openClientAccount(
  client: GatewayConfig["api_keys"][number]["client"],
  keyId: string,
  env: NodeJS.ProcessEnv,
): Promise<PrivateKeyAccount> {
  if ("private_key_env" in client) {
    const value = env[client.private_key_env];
    if (value === undefined || !/^0x[0-9a-fA-F]{64}$/.test(value)) {
      throw new ClientKeyError(
        `API key ${keyId}: ${client.private_key_env} must hold the client's private key (0x + 64 hex digits)`,
      );
    }
    return privateKeyToAccount(value as Hex);
  }
  const password = env[KEYSTORE_PASSWORD_ENV];
  if (password === undefined || password === "") {
    throw new ClientKeyError(`API key ${keyId}: set ${KEYSTORE_PASSWORD_ENV} to unlock ${client.keystore}`);
  }
  let json: string;
  try {
    json = await readFile(client.keystore, "utf8");
  } catch (error) {
    throw new ClientKeyError(`API key ${keyId}: cannot read keystore ${client.keystore}`, { cause: error });
  }
  try {
    const wallet = await Wallet.fromEncryptedJson(json, password);
    return privateKeyToAccount(wallet.privateKey as Hex);
  } catch (error) {
    throw new ClientKeyError(`API key ${keyId}: cannot unlock keystore ${client.keystore} (wrong password?)`, {
      cause: error,
    });
  }
}

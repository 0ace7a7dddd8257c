// Which key signs for the `infra` CLI. In order of preference:
//   1. an encrypted JSON keystore (Web3 Secret Storage v3, as geth, ethers and Foundry write it):
//      --keystore <file> or INFRAMESH_KEYSTORE, unlocked with INFRAMESH_KEYSTORE_PASSWORD or the
//      first line of INFRAMESH_KEYSTORE_PASSWORD_FILE (never a command-line argument: it would
//      land in the shell history and the process list);
//   2. INFRAMESH_PRIVATE_KEY (for CI and throwaway local chains).
// The password and the key never reach a log line or an error message.
import { readFile, writeFile } from "node:fs/promises";

import { Wallet } from "ethers";
import { createWalletClient, isHex, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";

import type { StakingWallet } from "../../sdk/staking.ts";
import type { NetworkContext } from "./context.ts";
import { CliError } from "./format.ts";

export interface WalletOptions {
  keystore?: string | undefined;
}

async function keystorePassword(env: NodeJS.ProcessEnv): Promise<string> {
  const fromEnv = env.INFRAMESH_KEYSTORE_PASSWORD;
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  const file = env.INFRAMESH_KEYSTORE_PASSWORD_FILE;
  if (file !== undefined && file !== "") {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      throw new CliError(`cannot read the keystore password file ${file}`, { cause: error });
    }
    const line = text.split(/\r?\n/)[0] ?? "";
    if (line === "") throw new CliError(`the keystore password file ${file} is empty`);
    return line;
  }
  throw new CliError(
    "the keystore is locked: set INFRAMESH_KEYSTORE_PASSWORD, or INFRAMESH_KEYSTORE_PASSWORD_FILE to a file holding it",
  );
}

/** Decrypts a JSON keystore file into a local account. */
export async function unlockKeystore(file: string, env: NodeJS.ProcessEnv = process.env): Promise<PrivateKeyAccount> {
  let json: string;
  try {
    json = await readFile(file, "utf8");
  } catch (error) {
    throw new CliError(`cannot read keystore ${file}: create one with \`infra wallet create ${file}\``, {
      cause: error,
    });
  }
  const password = await keystorePassword(env);
  let wallet;
  try {
    wallet = await Wallet.fromEncryptedJson(json, password);
  } catch (error) {
    const wrongPassword = error instanceof Error && /password/i.test(error.message);
    throw new CliError(
      wrongPassword ? `wrong password for keystore ${file}` : `${file} is not a JSON keystore (Web3 Secret Storage v3)`,
      { cause: wrongPassword ? undefined : error },
    );
  }
  return privateKeyToAccount(wallet.privateKey as Hex);
}

/** The account of INFRAMESH_PRIVATE_KEY. */
export function accountFromEnv(env: NodeJS.ProcessEnv): PrivateKeyAccount {
  const key = env.INFRAMESH_PRIVATE_KEY;
  if (key === undefined || key === "") {
    throw new CliError(
      "no signing key: pass --keystore <file> (or set INFRAMESH_KEYSTORE), or set INFRAMESH_PRIVATE_KEY (0x + 64 hex)",
    );
  }
  if (!isHex(key) || key.length !== 66) throw new CliError("INFRAMESH_PRIVATE_KEY must be 0x followed by 64 hex");
  try {
    return privateKeyToAccount(key);
  } catch (error) {
    throw new CliError("INFRAMESH_PRIVATE_KEY is not a valid secp256k1 key", { cause: error });
  }
}

/** The signing account: the keystore when one is named, else INFRAMESH_PRIVATE_KEY. */
export async function resolveAccount(
  options: WalletOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<PrivateKeyAccount> {
  const keystore = options.keystore ?? (env.INFRAMESH_KEYSTORE === "" ? undefined : env.INFRAMESH_KEYSTORE);
  return keystore === undefined ? accountFromEnv(env) : unlockKeystore(keystore, env);
}

/** A wallet client for the signing account on the network. */
export async function openWallet(
  context: NetworkContext,
  options: WalletOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<StakingWallet> {
  const account = await resolveAccount(options, env);
  return createWalletClient({ account, chain: context.chain, transport: context.transport });
}

/** Writes a new encrypted keystore for a fresh key (or `privateKey`); refuses to overwrite. */
export async function createKeystore(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  privateKey: Hex = generatePrivateKey(),
): Promise<{ address: string; file: string }> {
  const password = await keystorePassword(env);
  const wallet = new Wallet(privateKey);
  // scrypt N = 2^17 (ethers' default) takes seconds; keystores are unlocked once per command.
  const json = await wallet.encrypt(password);
  try {
    await writeFile(file, json, { flag: "wx", mode: 0o600 });
  } catch (error) {
    const exists = (error as NodeJS.ErrnoException).code === "EEXIST";
    throw new CliError(exists ? `${file} exists: refusing to overwrite a keystore` : `cannot write ${file}`, {
      cause: error,
    });
  }
  return { address: wallet.address, file };
}

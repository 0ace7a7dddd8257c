// The operator key, encrypted at rest: an Ethereum JSON keystore (scrypt + AES-128-CTR, ethers v6
// `Wallet.encrypt`). The password comes from INFRAMESH_KEYSTORE_PASSWORD or a password file, is
// never written to the config and never logged; the decrypted key lives only in memory.
import { chmod, open, readFile } from "node:fs/promises";

import { Wallet } from "ethers";
import type { Hex } from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";

export const PASSWORD_ENV = "INFRAMESH_KEYSTORE_PASSWORD";
const MIN_PASSWORD_LENGTH = 8;

export class KeystoreError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KeystoreError";
  }
}

/** The keystore password: INFRAMESH_KEYSTORE_PASSWORD, else the password file's first line. */
export async function keystorePassword(env: NodeJS.ProcessEnv, passwordFile?: string): Promise<string> {
  const fromEnv = env[PASSWORD_ENV];
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  if (passwordFile !== undefined) {
    let text: string;
    try {
      text = await readFile(passwordFile, "utf8");
    } catch (error) {
      throw new KeystoreError(`cannot read the keystore password file ${passwordFile}`, { cause: error });
    }
    const password = text.split(/\r?\n/)[0] ?? "";
    if (password === "") throw new KeystoreError(`the keystore password file ${passwordFile} is empty`);
    return password;
  }
  throw new KeystoreError(`no keystore password: set ${PASSWORD_ENV} or keystore_password_file in the config`);
}

/** Creates a new random operator key, encrypted under `password`, at `file` (mode 0600; never overwrites). */
export async function createKeystore(file: string, password: string): Promise<{ address: Hex }> {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new KeystoreError(`the keystore password must have at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  const wallet = Wallet.createRandom();
  const json = await wallet.encrypt(password);
  let handle;
  try {
    handle = await open(file, "wx", 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      throw new KeystoreError(`${file} already exists: refusing to overwrite an operator key`, { cause: error });
    }
    throw new KeystoreError(`cannot create ${file}`, { cause: error });
  }
  try {
    await handle.writeFile(json);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await chmod(file, 0o600);
  return { address: wallet.address as Hex };
}

/** Decrypts the keystore at `file` into a signing account. */
export async function openKeystore(file: string, password: string): Promise<PrivateKeyAccount> {
  let json: string;
  try {
    json = await readFile(file, "utf8");
  } catch (error) {
    throw new KeystoreError(`cannot read the keystore ${file} (create one with infra node init)`, { cause: error });
  }
  let wallet;
  try {
    wallet = await Wallet.fromEncryptedJson(json, password);
  } catch (error) {
    const message = (error as Error).message;
    if (/incorrect password/i.test(message)) {
      throw new KeystoreError(`wrong password for the keystore ${file}`, { cause: error });
    }
    throw new KeystoreError(`${file} is not a valid encrypted JSON keystore`, { cause: error });
  }
  return privateKeyToAccount(wallet.privateKey as Hex);
}

// Errors of the deploy task. They extend Hardhat's plugin error so that `npx hardhat deploy`
// prints the short message alone (no stack trace unless --show-stack-traces).
import { HardhatPluginError } from "hardhat/plugins";

export const DEPLOY_ERROR_SOURCE = "inframesh-deploy";

function asError(cause: unknown): Error | undefined {
  if (cause === undefined || cause instanceof Error) return cause;
  return new Error(String(cause));
}

/** Base class: a deploy that cannot go on, with a message a user can act on. */
export class DeployError extends HardhatPluginError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(DEPLOY_ERROR_SOURCE, message, asError(options.cause));
    this.name = "DeployError";
  }
}

/** The parameters file or one of its values is invalid. */
export class InvalidParametersError extends DeployError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(`Invalid deploy parameters: ${message}`, options);
    this.name = "InvalidParametersError";
  }
}

/** The network's configuration variables (RPC URL, deployer key) are not set. */
export class MissingNetworkConfigError extends DeployError {
  readonly network: string;
  readonly variables: readonly string[];
  constructor(network: string, variables: readonly string[], options: { cause?: unknown } = {}) {
    const list = variables.join(" and ");
    const assignments = variables.map((v) => `${v}=…`).join(" ");
    super(
      `Network "${network}" needs ${list}, which ${variables.length > 1 ? "are" : "is"} not set. ` +
        `Set ${variables.length > 1 ? "them" : "it"} in the environment (${assignments} npx hardhat deploy ` +
        `--network ${network}) or in Hardhat's keystore (npx hardhat keystore set ${variables[0] ?? "<NAME>"}).`,
      options,
    );
    this.name = "MissingNetworkConfigError";
    this.network = network;
    this.variables = variables;
  }
}

/** What Ignition's journal says is deployed is not on the chain (the chain was reset). */
export class StaleDeploymentError extends DeployError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "StaleDeploymentError";
  }
}

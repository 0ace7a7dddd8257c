// The gateway's one window on the chain: models (name → id, serving version, price, access policy),
// nodes (registered, jailed, eligible, tier, stake) and access facts (allowlist bit, token
// balance). Every answer is cached until the next block: a background poll reads the block number
// and drops the cache when it moves, so a burst of calls costs one read per fact per block.
import { erc20Abi, parseAbi, type Address, type PublicClient } from "viem";

import { findModelId, readModel } from "../sdk/models.ts";
import { nodeStakingAbi } from "../sdk/staking.ts";
import type { AccessFacts, AccessPolicy } from "./access.ts";
import { factNeeded } from "./access.ts";

const allowlistAbi = parseAbi(["function isAllowlisted(uint256 modelId, address account) view returns (bool)"]);

/** A model as the gateway routes it: its serving version's terms. */
export interface ServingModel {
  modelId: bigint;
  name: string;
  version: bigint;
  price: bigint;
  access: AccessPolicy;
}

/** A node's standing in NodeStaking. */
export interface NodeStanding {
  registered: boolean;
  jailed: boolean;
  eligible: boolean;
  tier: number;
  stake: bigint;
}

export class ChainReadError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ChainReadError";
  }
}

export interface GatewayChainOptions {
  client: PublicClient;
  modelRegistry: Address;
  nodeStaking: Address;
  /** How often the block number is polled (the cache lives one block). */
  blockPollMs: number;
}

export class GatewayChain {
  readonly #options: GatewayChainOptions;
  readonly #cache = new Map<string, Promise<unknown>>();
  #block = -1n;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: GatewayChainOptions) {
    this.#options = options;
  }

  get block(): bigint {
    return this.#block;
  }

  /** Reads the block number once, then keeps polling it. */
  async start(): Promise<void> {
    await this.#poll();
    const loop = () => {
      this.#timer = setTimeout(() => {
        void this.#poll()
          .catch(() => undefined) // a missed poll keeps the cache one more interval
          .finally(() => {
            if (this.#timer !== undefined) loop();
          });
      }, this.#options.blockPollMs);
    };
    loop();
  }

  stop(): void {
    const timer = this.#timer;
    this.#timer = undefined;
    if (timer !== undefined) clearTimeout(timer);
  }

  async #poll(): Promise<void> {
    const block = await this.#options.client.getBlockNumber({ cacheTime: 0 });
    if (block !== this.#block) {
      this.#block = block;
      this.#cache.clear();
    }
  }

  #cached<T>(key: string, read: () => Promise<T>): Promise<T> {
    const hit = this.#cache.get(key) as Promise<T> | undefined;
    if (hit !== undefined) return hit;
    const promise = read().catch((error: unknown) => {
      this.#cache.delete(key);
      throw error;
    });
    this.#cache.set(key, promise);
    return promise;
  }

  /** The serving terms of model `name`; undefined when no model has that name or it serves no version. */
  model(name: string): Promise<ServingModel | undefined> {
    return this.#cached(`model:${name}`, async () => {
      const contracts = { publicClient: this.#options.client, modelRegistry: this.#options.modelRegistry };
      const id = await findModelId(contracts, name);
      if (id === undefined) return undefined;
      const status = await readModel(contracts, id);
      if (status.serving === undefined) return undefined;
      return {
        modelId: id,
        name: status.name,
        version: status.serving.version,
        price: status.serving.record.price,
        access: status.serving.record.access,
      };
    });
  }

  /** A node's registration, jail, eligibility, tier and active stake. */
  node(node: Address): Promise<NodeStanding> {
    return this.#cached(`node:${node.toLowerCase()}`, async () => {
      const read = this.#options.client;
      const at = { address: this.#options.nodeStaking, abi: nodeStakingAbi } as const;
      const [info, jailed, eligible, tier, pool] = await Promise.all([
        read.readContract({ ...at, functionName: "nodeInfo", args: [node] }),
        read.readContract({ ...at, functionName: "isJailed", args: [node] }),
        read.readContract({ ...at, functionName: "isEligible", args: [node] }),
        read.readContract({ ...at, functionName: "tierOf", args: [node] }),
        read.readContract({ ...at, functionName: "activePool", args: [node] }),
      ]).catch((error: unknown) => {
        throw new ChainReadError(`cannot read node ${node} from NodeStaking`, { cause: error });
      });
      return { registered: info.registered, jailed, eligible, tier, stake: pool.stake };
    });
  }

  /** The one fact `policy` needs about `account` for model `modelId`. */
  accessFacts(modelId: bigint, policy: AccessPolicy, account: Address): Promise<AccessFacts> {
    const need = factNeeded(policy);
    if (need === "none") return Promise.resolve({});
    if (need === "allowlist") {
      return this.#cached(`allow:${modelId}:${account.toLowerCase()}`, async () => ({
        allowlisted: await this.#options.client.readContract({
          address: this.#options.modelRegistry,
          abi: allowlistAbi,
          functionName: "isAllowlisted",
          args: [modelId, account],
        }),
      }));
    }
    // ERC-20 and ERC-721 share balanceOf(address) → uint256.
    return this.#cached(`balance:${policy.token.toLowerCase()}:${account.toLowerCase()}`, async () => ({
      balance: await this.#options.client.readContract({
        address: policy.token,
        abi: erc20Abi,
        functionName: "balanceOf",
        args: [account],
      }),
    }));
  }
}

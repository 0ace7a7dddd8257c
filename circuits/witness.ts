// The circuit's own witness calculator (its compiled wasm), for checking the TypeScript model against
// the circuit without proving: a witness exists only if every constraint holds.
import { readFile } from "node:fs/promises";
import path from "node:path";

import { WitnessCalculatorBuilder } from "circom_runtime";

import { SETUP_DIR } from "./prover.ts";

export interface CircuitWitness {
  /** Throws if the input violates a constraint; returns the witness otherwise. */
  calculate(input: Record<string, unknown>): Promise<bigint[]>;
  /** Whether a witness exists, without the runtime's console output on a violated constraint. */
  satisfies(input: Record<string, unknown>): Promise<boolean>;
  /** The field order the circuit was compiled for. */
  prime: bigint;
}

export async function loadWitnessCalculator(dir = SETUP_DIR): Promise<CircuitWitness> {
  const calculator = await WitnessCalculatorBuilder(await readFile(path.join(dir, "simplenet.wasm")));
  return {
    calculate: (input) => calculator.calculateWitness(input, true),
    async satisfies(input) {
      // circom_runtime prints every failed assertion; a refusal is the expected outcome here.
      const { log, error } = console;
      console.log = console.error = () => {};
      try {
        await calculator.calculateWitness(input, true);
        return true;
      } catch {
        return false;
      } finally {
        console.log = log;
        console.error = error;
      }
    },
    prime: calculator.prime,
  };
}

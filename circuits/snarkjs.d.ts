// The slice of snarkjs 0.7.6 this project calls (the package ships no types).
declare module "snarkjs" {
  export type SnarkjsFile = string | { type: "mem"; data: Uint8Array };
  export interface Groth16ProofObject {
    pi_a: string[];
    pi_b: string[][];
    pi_c: string[];
    protocol: string;
    curve: string;
  }
  export const groth16: {
    fullProve(
      input: Record<string, unknown>,
      wasm: SnarkjsFile,
      zkey: SnarkjsFile,
    ): Promise<{ proof: Groth16ProofObject; publicSignals: string[] }>;
    prove(zkey: SnarkjsFile, witness: SnarkjsFile): Promise<{ proof: Groth16ProofObject; publicSignals: string[] }>;
    verify(vkey: unknown, publicSignals: string[], proof: unknown): Promise<boolean>;
    exportSolidityCallData(proof: unknown, publicSignals: string[]): Promise<string>;
  };
}

declare module "circom_runtime" {
  export interface WitnessCalculator {
    calculateWitness(input: Record<string, unknown>, sanityCheck: boolean): Promise<bigint[]>;
    /** The witness in snarkjs's .wtns format. */
    calculateWTNSBin(input: Record<string, unknown>, sanityCheck: boolean): Promise<Uint8Array>;
    prime: bigint;
  }
  export function WitnessCalculatorBuilder(
    wasm: Uint8Array,
    options?: Record<string, unknown>,
  ): Promise<WitnessCalculator>;
}

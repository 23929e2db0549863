// The repetition loop every bench uses: wait (bounded) for a quiet machine, run one repetition
// (its raw baseline and its emulator figure, interleaved in this same process), record the other
// processes' load during it (and measure it again once if that load was high), log a line.

import { waitQuiet, withOtherLoad } from './machine.js';
import { logRepetition, REPETITIONS, type RepetitionLoad } from './report.js';

export type Row = Record<string, number>;

/**
 * A repetition during which other processes used more than this many cores (BENCHMARKS.md "Method"
 * repeats above 0.5) is measured once more (ATTEMPTS in all), and the less disturbed attempt is kept.
 */
const MAX_OTHER_LOAD = Number(process.env['BENCH_MAX_OTHER_LOAD'] ?? 0.5);
const ATTEMPTS = Math.max(1, Number(process.env['BENCH_ATTEMPTS'] ?? 2));

export interface Repetitions extends RepetitionLoad {
  readonly rows: Row[];
  readonly steal: number[];
  /** One column over the repetitions. */
  column(name: string): number[];
}

export async function repeat(
  bench: string,
  once: (repetition: number) => Promise<Row>,
  show: (row: Row) => Record<string, string>,
): Promise<Repetitions> {
  return repeatTimes(bench, REPETITIONS, once, show);
}

/** Runs a bench's main, printing a failure with a non-zero exit status. */
export function main(run: () => Promise<void>): void {
  run().then(
    () => {
      process.exitCode ??= 0;
    },
    (error: unknown) => {
      console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
      process.exitCode = 1;
      // Whatever is left running (a VM's workers) must not keep a failed bench alive.
      setTimeout(() => process.exit(1), 5000).unref();
    },
  );
}

/**
 * Runs `once` for each repetition after waiting for a quiet machine; a repetition disturbed by other
 * processes is measured again and the less disturbed attempt kept. repeat() uses BENCH_REPS; a bench
 * whose repetition takes much longer (scale-255, memslot-update) passes its own count.
 */
export async function repeatTimes(
  bench: string,
  repetitions: number,
  once: (repetition: number) => Promise<Row>,
  show: (row: Row) => Record<string, string>,
): Promise<Repetitions> {
  const rows: Row[] = [];
  const otherLoad: number[] = [];
  const steal: number[] = [];
  for (let repetition = 0; repetition < repetitions; repetition++) {
    let best: { value: Row; otherLoad: number; steal: number } | undefined;
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      await waitQuiet();
      const measured = await withOtherLoad(() => once(repetition));
      if (best === undefined || !(measured.otherLoad >= best.otherLoad)) best = measured;
      if (!(measured.otherLoad > MAX_OTHER_LOAD)) break;
      if (attempt < ATTEMPTS)
        console.log(
          `[${bench}] rep ${repetition + 1}: other processes used ${measured.otherLoad.toFixed(2)} cores meanwhile; measuring it again`,
        );
    }
    rows.push(best!.value);
    otherLoad.push(best!.otherLoad);
    steal.push(best!.steal);
    logRepetition(bench, repetition, show(best!.value), best!.otherLoad, repetitions, best!.steal);
  }
  return {
    rows,
    otherLoad,
    steal,
    column: (name: string) =>
      rows.map((row) => {
        const value = row[name];
        if (value === undefined) throw new Error(`no column ${name}`);
        return value;
      }),
  };
}

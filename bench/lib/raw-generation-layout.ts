// Shared-memory layout of the raw memslot-update baseline (raw-generation-ack.ts and its worker),
// apart so the main thread can import it without running a worker's body. Each line is 16 Int32
// words (64 bytes); every hot word is on its own line with one writer.

export interface RawGenerationTask {
  readonly sab: SharedArrayBuffer;
  readonly index: number;
}

export const RawGenerationLine = {
  /** Main writes: [stop] 1 ends the workers; workers add to [ready]. */
  control: 0,
  stop: 0,
  ready: 1,
  /** Main writes: the published generation. */
  generation: 16,
  /** Worker k's two lines start at perWorker + 32 * k: [doorbell] rung by main, [acknowledged] written by worker k. */
  perWorker: 32,
  wordsPerWorker: 32,
  doorbell: 0,
  acknowledged: 16,
} as const;

export const rawGenerationBytes = (workers: number): number =>
  4 * (RawGenerationLine.perWorker + RawGenerationLine.wordsPerWorker * workers);

// The shared-memory layout and task shapes of the raw baselines' workers (raw-worker.ts), kept
// apart so the main thread can import them without running a worker's body.

export type RawRole =
  | {
      role: 'spin-initiator';
      sab: SharedArrayBuffer;
      originNs: string;
      rounds: number;
      warmup: number;
      gapNs: number;
      oneWay: boolean;
      deadlineMs: number;
    }
  | { role: 'spin-responder'; sab: SharedArrayBuffer; originNs: string; oneWay: boolean }
  | {
      role: 'waker';
      sab: SharedArrayBuffer;
      originNs: string;
      rounds: number;
      warmup: number;
      gapNs: number;
      sleepers: number;
      deadlineMs: number;
    }
  | { role: 'sleeper'; sab: SharedArrayBuffer; originNs: string; index: number; rounds: number; warmup: number }
  | { role: 'storm'; sab: SharedArrayBuffer; index: number; workers: number; seed: number }
  | { role: 'stalls'; sab: SharedArrayBuffer; threads: number; durationMs: number; stallNs: number };

/** Int32 word indices; each line is 16 words (64 bytes). */
export const Line = {
  control: 0, // [0] stop, [1] go, [2] ready count
  ping: 16,
  pong: 32,
  sentAt: 48, // Float64 index 24
  acks: 64,
  /** Per-sleeper / per-storm-worker lines start here: line k at perWorker + 16 * k. */
  perWorker: 128,
} as const;
export const SENT_AT_FLOAT64 = Line.sentAt / 2;

// Hypercall numbers: the immediate of the `hypercall` instruction. Arguments travel in r1-r3 and a
// result comes back in r0 (instruction-set.ts). The assembler predefines each one as an HC_* symbol,
// and docs/guest-isa.md documents them; the interpreter's hypercall handler dispatches on them.

export const Hypercall = {
  /** r1 = status; 0 means success: this vCPU has finished its work. */
  Done: 0,
  /** Result slot r1 (0..15) <- r2, read by the host. */
  Report: 1,
  /** Counter slot r1 (0..15) += r2. */
  Count: 2,
  /** Record r1 nanoseconds into this vCPU's latency histogram. */
  LatencySample: 3,
  /** Print r1 (and r2) to the host log, tagged with the vCPU. */
  Print: 4,
  /** Guest assertion failed: r1 = code, r2 = value; stops the VM with a failure report. */
  Abort: 5,
  /**
   * r0 <- run state of vCPU r1 (0 created, 1 running, 2 halted and asleep, 3 paused, 4 finished;
   * -1 for no such vCPU). A test handshake: wait until a target is really asleep before sending.
   */
  VcpuRunState: 6,
  /**
   * Discard this vCPU's latency samples so far (a warm-up's): the report keeps only those recorded
   * after the last reset, wherever the vCPU ran.
   */
  LatencyReset: 7,
} as const;
export type Hypercall = (typeof Hypercall)[keyof typeof Hypercall];

// What host time each step of a VM costs in a deterministic run, where time is virtual: the thread
// that does the work calls hostThread().advance(ns) with one of these, and everything that reads the
// clock (quanta, the APIC timer, rdtsc, halt-polling windows, watchdogs) follows from them. A parallel
// run ignores them (advance is a no-op there; the wall clock is the time).
//
// Modelled estimates for a current AMD Zen host (Zen 3/Zen 4, ~3-4 GHz, Linux KVM with AVIC), of the
// right order rather than measured: they set the relative speed of guest code, exits and wake-ups, which
// is what decides which races a seeded schedule can reach. docs/deterministic.md ("Virtual time") lists
// them with the same justifications; keep the two in step.

/** Nanoseconds of host time per step; one line each on where the figure comes from. */
export const VirtualTimeCost = {
  /** One guest instruction retired: ~1 instruction per cycle on simple integer code at ~3.5 GHz. */
  guestInstructionNs: 0.3,
  /** One #VMEXIT handled and VMRUN back: the world switch both ways plus a short KVM handler, ~1 µs on Zen. */
  vmexitRoundTripNs: 1_000,
  /** The sender's AVIC doorbell write (WRMSR 0xC001011B, avic_ring_doorbell): ~0.1 µs. */
  doorbellNs: 100,
  /** A blocked vCPU made runnable (kvm_vcpu_wake_up: try_to_wake_up, the reschedule IPI, schedule-in): 5-20 µs, 10 taken. */
  wakeUpNs: 10_000,
  /** A kick of a loaded vCPU (kvm_vcpu_kick's reschedule IPI from the sender's side): ~0.5 µs. */
  kickNs: 500,
  /** vcpu_load with avic_vcpu_load (physical APIC ID table entry, VMCB state reload): ~0.5 µs. */
  vcpuLoadNs: 500,
  /** vcpu_put with avic_vcpu_put (IsRunning clear, state saved): ~0.5 µs. */
  vcpuPutNs: 500,
  /** An uncontended KVM lock taken (mutex or rw-semaphore fast path: one locked cmpxchg, lockdep off): ~50 ns. */
  lockAcquisitionNs: 50,
  /** One pass of the halt-poll loop (kvm_vcpu_check_block on a few words, then cpu_relax): ~0.1 µs. */
  haltPollIterationNs: 100,
  /** One failed try of a spinlock (a load and a PAUSE; PAUSE is ~30-60 cycles on Zen): ~20 ns. */
  spinIterationNs: 20,
} as const;

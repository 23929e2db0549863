// What Vm.run(), start() and wait() take: how long to run, when to give up, what to record.

export interface RunOptions {
  /** Run for this long, then stop (the guest need not finish). */
  readonly seconds?: number;
  /** Without `seconds`: give up (exit "timeout") if the guest has not finished by then. Default 60. */
  readonly timeoutSeconds?: number;
  /** Stop waiting for a vCPU that does not finish after a stop request, name it and tear down. Default 5. */
  readonly stopTimeoutSeconds?: number;
  /**
   * A host CPU whose loop and loaded vCPU make no progress while its thread runs, or sleeps, this
   * long (not counting time it waited for a core: HostCpuWatchdog), or a vCPU that sleeps this long
   * in a cycle of lock waits (VcpuWatchdog), is reported stuck (src/kvm/vm/vm-watchdogs.ts). Default 10.
   */
  readonly watchdogSeconds?: number;
  /** Called about every 100 ms while running (progress bars). */
  readonly onProgress?: (elapsedSeconds: number) => void;
}

export interface StartOptions {
  /** Record trace events in every vCPU (see chromeTrace()). */
  readonly trace?: boolean;
}

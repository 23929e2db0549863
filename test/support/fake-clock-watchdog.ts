// Drives a watchdog (VcpuWatchdog, HostCpuWatchdog: anything with check(nowMs)) on a fake clock.

/** Advances the fake clock in 100 ms steps to `until`, checking at each; returns the first report. */
export function runWatchdogUntil(
  watchdog: { check(nowMs: number): string | undefined },
  clock: { now: number },
  until: number,
  eachStep: () => void = () => undefined,
): string | undefined {
  while (clock.now < until) {
    clock.now += 100;
    eachStep();
    const stuck = watchdog.check(clock.now);
    if (stuck !== undefined) return stuck;
  }
  return undefined;
}

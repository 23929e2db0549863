import { configDefaults, defineConfig } from 'vitest/config';

// Test files that start no thread and no VM: no vCPU or host-CPU worker, no piscina pool, no CLI
// child, no Worker of their own. They may share the two cores of the test machine. A file that
// calls Vm.run, runScenario, a lock-scenario run or the CLI stays out of this list: a new file
// defaults to the sequential project below, which is always safe. The one child process here is
// package-files' `npm pack` (a tsc build, single-threaded, bounded at 180 s), which shares a core
// as well as any of these.
const threadFree = [
  'test/architecture/*.test.ts',
  'test/bench/*.test.ts',
  'test/guest/*.test.ts',
  'test/hw/**/*.test.ts',
  'test/memory/*.test.ts',
  'test/kvm/control/*.test.ts',
  'test/kvm/injected-bugs/*.test.ts',
  'test/kvm/lapic/*.test.ts',
  'test/kvm/report/*.test.ts',
  'test/kvm/svm/*.test.ts',
  'test/cli/explore-command.test.ts',
  'test/cli/explore-pct-points.test.ts',
  'test/cli/stress-progress.test.ts',
  'test/cli/stress-summary.test.ts',
  'test/explore/classify-failure.test.ts',
  'test/host/deterministic/schedule-pct.test.ts',
  'test/host/deterministic/schedule-random.test.ts',
  'test/host/host-cpu.test.ts',
  'test/host/shared-layout.test.ts',
  'test/host/srcu.test.ts',
  'test/kvm/vcpu/host-cpu-blocked-scan.test.ts',
  'test/kvm/vcpu/host-cpu-stop.test.ts',
  'test/kvm/vcpu/init-reset-concurrent-sender.test.ts',
  'test/kvm/vcpu/scheduling-points.test.ts',
  'test/kvm/vcpu/shared-views.test.ts',
  'test/kvm/vcpu/vcpu-exit-report.test.ts',
  'test/kvm/vcpu/vcpu-interrupts.test.ts',
  'test/kvm/vcpu/vcpu-save-area.test.ts',
  'test/kvm/vcpu/vcpu-sleep.test.ts',
  'test/kvm/vm/apic-map.test.ts',
  'test/kvm/vm/deterministic-run.test.ts',
  'test/kvm/vm/memslot-updates.test.ts',
  'test/kvm/vm/vcpu-creation-grace-periods.test.ts',
  'test/kvm/vm/vcpu-creation-physical-id.test.ts',
  'test/kvm/vm/vcpu-creation.test.ts',
  'test/kvm/vm/vm-4096.test.ts',
  'test/kvm/vm/vm-config-deterministic.test.ts',
  'test/kvm/vm/vm-config-erratum-1235.test.ts',
  'test/kvm/vm/vm-config-x2avic.test.ts',
  'test/kvm/vm/vm-memslots.test.ts',
  'test/lockdep/instrumented-lock.test.ts',
  'test/lockdep/lockdep-api.test.ts',
  'test/lockdep/lockdep-attach.test.ts',
  'test/lockdep/locking-selftest.test.ts',
  'test/lockdep/scenario-file.test.ts',
  'test/lockdep/splat-text.test.ts',
  'test/scenarios/lock-replay-injection.test.ts',
  'test/scenarios/scenario-parameters.test.ts',
  'test/scenarios/scenario-programs.test.ts',
  'test/package-files.test.ts',
];

// Test files every run of which is deterministic (docs/deterministic.md: VmConfig.deterministic, or
// the CLI's --deterministic and explore, whose runs are): one thread of a VM runs at a time, on a
// schedule drawn from a seed, in virtual time, so what they check cannot depend on how busy the
// machine is; only the real-time safety bounds (30 s for a baton, explore's 60 s per run) are wall
// clock, far away. Two of them run side by side, after the worker-heavy files, never beside them:
// a parallel run must not share the cores with anything. A file that also makes a parallel run (or
// spawns a command without --deterministic that runs a VM) stays in the sequential project.
const deterministic = [
  'test/cli/explore-finds.test.ts',
  'test/cli/scale-deterministic.test.ts',
  'test/host/deterministic/schedule-threads.test.ts',
  'test/kvm/vcpu/hypercall-virtual-time.test.ts',
  'test/smp/deterministic-halt-poll.test.ts',
  'test/smp/deterministic-replays.test.ts',
  'test/smp/deterministic-runs.test.ts',
];

export default defineConfig({
  test: {
    // SMP tests start real worker threads; every wait inside them is bounded well below this.
    testTimeout: 60_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'thread-free',
          include: threadFree,
          // Both cores: these files only compute, so sharing the machine changes nothing they check.
          maxWorkers: 2,
          // One process per core for all of them instead of one per file (per-file start-up was two
          // thirds of their time). Safe here: no file leaves a thread behind, src keeps no module
          // state but the host-thread seam, which the two files that set it restore in afterEach, and
          // the one spy (on Atomics.store) is restored after each test.
          isolate: false,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'threads',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...threadFree, ...deterministic],
          // Worker-heavy files run one at a time, after the thread-free ones: this machine has 2
          // cores, and vCPU threads from parallel files would only measure the scheduler and push
          // bounded waits towards their limits.
          fileParallelism: false,
          // They share one process rather than start one each (start-up and loading src again
          // were about 0.4 s a file). The guard stands in for what a process's end did: no worker
          // thread of a file outlives it (a failed test's VM would spin into the next files). A
          // deterministic run that threw leaves the host-thread seam to the next (DeterministicRun).
          isolate: false,
          setupFiles: ['test/support/worker-leak-guard.ts'],
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: {
          name: 'deterministic',
          include: deterministic,
          // Two at a time, after the worker-heavy files: measured on the 2-core machine, the seven
          // files took 38-41 s two at a time against 49-52 s one at a time (a run's threads hand a baton on, so one
          // run alone leaves much of a second core idle).
          maxWorkers: 2,
          // As in the sequential project: one process per core, the leak guard for what a process's
          // end did.
          isolate: false,
          setupFiles: ['test/support/worker-leak-guard.ts'],
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});

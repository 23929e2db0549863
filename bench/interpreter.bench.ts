// Goal 8: interpreter speed on an ALU/memory loop (bench/programs/alu-loop.s, 6 instructions per
// iteration). Figure: one vCPU in a real VM (worker, slices, doorbell poll per taken branch), timed
// by the guest's own rdtsc around the loop. Beside it, in this process and measured with tinybench
// 6 (each task runs the program once; MIPS from the latency p50, not throughput.mean): the same
// assembled bytes in a bare JS switch loop (the raw baseline), that loop with one
// Atomics.load per taken branch, and the emulator's GuestCpu driven directly on the main thread.

import { Bench } from 'tinybench';
import { GuestCpu, GuestExit, type GuestCpuEnvironment } from '../src/guest/guest-cpu.js';
import { loadRawProgram, runRawSwitch } from './baselines/switch-interpreter.js';
import { main, repeat } from './lib/harness.js';
import { assembleProgram, runProgramBench } from './lib/guest.js';
import { finishBench, goalResult, QUICK } from './lib/report.js';
import { formatValue } from './lib/stats.js';

const BENCH = 'interpreter';
const VM_ITERATIONS = QUICK ? 2_000_000 : 10_000_000;
const TASK_ITERATIONS = 1_000_000;
const RAM_BYTES = 1 << 20;

function bareGuestCpu(origin: number, bytes: Uint8Array): () => number {
  const ram = new SharedArrayBuffer(RAM_BYTES);
  const doorbells = new Int32Array(new SharedArrayBuffer(64));
  let done = false;
  const environment: GuestCpuEnvironment = {
    accessOutsideRam: () => 0,
    hypercall: (cpu) => {
      done = true;
      cpu.requestExit();
    },
    readMsr: () => 0,
    writeMsr: () => undefined,
    readClock: () => performance.now() * 1e6,
  };
  const cpu = new GuestCpu({ ramBuffer: ram, environment, doorbells, doorbellIndex: 0 });
  cpu.setRamWindows([{ guestPhysicalAddress: 0, size: RAM_BYTES, hostOffset: 0 }]);
  cpu.memory.load(origin, bytes);
  return () => {
    done = false;
    cpu.pc = origin;
    cpu.registers.fill(0);
    cpu.registers[15] = RAM_BYTES - 64;
    const before = cpu.instructionsRetired;
    while (!done) {
      const exit = cpu.run(65536);
      if (exit === GuestExit.Fault) throw new Error(`bare GuestCpu faulted: ${JSON.stringify(cpu.fault)}`);
    }
    return cpu.instructionsRetired - before;
  };
}

main(async () => {
  const startedAt = performance.now();
  const taskProgram = assembleProgram('alu-loop', { ITERATIONS: TASK_ITERATIONS });
  const instructionsPerTask = 6 * TASK_ITERATIONS + 4;
  const reps = await repeat(
    BENCH,
    async () => {
      const raw = loadRawProgram(taskProgram.origin, taskProgram.bytes);
      const doorbell = new Int32Array(new SharedArrayBuffer(64));
      const bare = bareGuestCpu(taskProgram.origin, taskProgram.bytes);
      const bench = new Bench({ time: QUICK ? 200 : 400, iterations: 5, warmupTime: 150, warmupIterations: 2 });
      bench.add('raw switch', () => {
        runRawSwitch(raw, undefined);
      });
      bench.add('raw switch, poll per taken branch', () => {
        runRawSwitch(raw, doorbell);
      });
      bench.add('GuestCpu on the main thread', () => {
        bare();
      });
      await bench.run();
      const mips = (name: string): number => {
        const result = bench.getTask(name)?.result;
        if (result === undefined || result.state !== 'completed') throw new Error(`tinybench task ${name} did not complete`);
        return instructionsPerTask / (result.latency.p50 * 1000);
      };
      const report = await runProgramBench('alu-loop', { ITERATIONS: VM_ITERATIONS }, { vcpus: 1 });
      const elapsedNs = report.perVcpu[0]!.guest.reports[0]!;
      return {
        vm: (6 * VM_ITERATIONS) / (elapsedNs / 1000),
        raw: mips('raw switch'),
        rawPoll: mips('raw switch, poll per taken branch'),
        bare: mips('GuestCpu on the main thread'),
      };
    },
    (row) => ({
      vm: `${formatValue(row['vm']!, 'MIPS')} MIPS`,
      raw: `${formatValue(row['raw']!, 'MIPS')} (poll ${formatValue(row['rawPoll']!, 'MIPS')})`,
      bare: `${formatValue(row['bare']!, 'MIPS')}`,
    }),
  );
  finishBench(
    BENCH,
    [
      goalResult({
        id: 'interpreter',
        title: '8. interpreter speed, ALU/memory loop (6 instructions per iteration)',
        figure: { label: 'emulator vCPU in a VM (guest rdtsc)', unit: 'MIPS', values: reps.column('vm') },
        baseline: { label: 'raw JS switch loop, no poll (tinybench p50)', unit: 'MIPS', values: reps.column('raw') },
        goal: { text: '≥ 0.4× the raw switch loop (BENCHMARKS.md goal 8)', kind: 'ratio-at-least', threshold: 0.4 },
        extras: [
          { label: 'raw switch loop, Atomics.load per taken branch (tinybench p50)', unit: 'MIPS', values: reps.column('rawPoll') },
          { label: 'emulator GuestCpu on the main thread (tinybench p50)', unit: 'MIPS', values: reps.column('bare') },
        ],
        notes: [`VM run: ${VM_ITERATIONS} iterations; tinybench tasks: ${TASK_ITERATIONS} iterations each`],
      }),
    ],
    reps,
    startedAt,
  );
});

// 512 vCPUs, the x2AVIC maximum (issue 5 item 4): a script, not a ratio. One fresh child process per
// repetition (so its peak RSS, process.resourceUsage().maxRSS, is its own) creates a VM of 512 vCPUs
// with x2avic (the default), and runs bench/programs/x2avic-storm.s: every vCPU switches to x2APIC,
// waits for all the others, sends ROUNDS x2APIC IPIs (physical to the next vCPU, so x2APIC IDs
// 0x100-0x1FF are targets; every eighth round a logical-cluster IPI to its 16-member cluster), waits
// for all senders, and finishes. Records: start-up (Vm.create until every vCPU's run loop started),
// the run to the last HC_DONE, peak RSS, IPIs sent / delivered / coalesced / lost, incomplete-IPI
// exits by cause and doorbells. Clean = every vCPU done, nothing lost, no lost wake-up.
// BENCH_REPS_512 sets the repetitions (default 1); BENCH_QUICK=1 runs 300 vCPUs.

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Vm } from '../src/index.js';
import { VcpuRunState } from '../src/kvm/control/vcpu-run-state.js';
import { main } from './lib/harness.js';
import { assembleProgram } from './lib/guest.js';
import { waitQuiet, withOtherLoad } from './lib/machine.js';
import { finishBench, goalResult, QUICK } from './lib/report.js';

const BENCH = 'x2avic-512';
const VCPUS = QUICK ? 300 : 512;
const ROUNDS = 64;
const REPS = Math.max(1, Number(process.env['BENCH_REPS_512'] ?? 1));

interface ChildResult {
  readonly startupMs: number;
  readonly runMs: number;
  readonly maxRssMiB: number;
  readonly exit: string;
  readonly done: number;
  readonly sent: number;
  readonly delivered: number;
  readonly coalesced: number;
  readonly lost: number;
  readonly lostWakeups: number;
  readonly incompleteIpiExits: number[];
  readonly doorbells: number;
  readonly ok: boolean;
  readonly otherLoad: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function stormRun(): Promise<Omit<ChildResult, 'otherLoad' | 'maxRssMiB'>> {
  const began = performance.now();
  const program = assembleProgram('x2avic-storm', { ROUNDS });
  const vm = await Vm.create({ vcpus: VCPUS, x2avic: true, stackBytesPerVcpu: 4096 });
  vm.loadProgram(program);
  vm.start();
  const runStates = Array.from({ length: VCPUS }, (_, vcpu) => vm.memory.controlBlockIndex(vcpu, 'runState'));
  while (runStates.some((index) => Atomics.load(vm.memory.control, index) === VcpuRunState.Created)) await sleep(5);
  const startupMs = performance.now() - began;
  const runBegan = performance.now();
  const report = await vm.wait({ timeoutSeconds: 360, stopTimeoutSeconds: 60 });
  const incomplete = report.exits.incompleteIpi;
  return {
    startupMs,
    runMs: performance.now() - runBegan,
    exit: report.exit.reason,
    done: report.perVcpu.filter((vcpu) => vcpu.guest.done).length,
    sent: report.ipis.sent,
    delivered: report.ipis.delivered,
    coalesced: report.ipis.coalesced,
    lost: report.ipis.lost,
    lostWakeups: report.lostWakeups,
    incompleteIpiExits: [
      incomplete.invalidInterruptType,
      incomplete.targetNotRunning,
      incomplete.invalidTarget,
      incomplete.invalidBackingPage,
      incomplete.invalidIpiVector,
    ],
    doorbells: report.doorbells,
    ok: report.ok && report.exit.reason === 'all-done',
  };
}

async function child(): Promise<void> {
  const { value, otherLoad } = await withOtherLoad(() => stormRun());
  const result: ChildResult = { ...value, otherLoad, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runChild(): ChildResult {
  const output = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child'], {
    encoding: 'utf8',
    env: process.env,
    timeout: 600_000,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(output.trim().split('\n').pop()!) as ChildResult;
}

main(async () => {
  if (process.argv.includes('--child')) return child();
  const startedAt = performance.now();
  const runs: ChildResult[] = [];
  for (let repetition = 0; repetition < REPS; repetition++) {
    await waitQuiet();
    const value = runChild();
    runs.push(value);
    console.log(
      `[${BENCH}] rep ${repetition + 1}/${REPS}: ${VCPUS} vCPUs, start-up ${value.startupMs.toFixed(0)} ms, run ${value.runMs.toFixed(0)} ms, peak RSS ${value.maxRssMiB.toFixed(0)} MiB, exit ${value.exit}, done ${value.done}/${VCPUS}, IPIs sent ${value.sent} delivered ${value.delivered} coalesced ${value.coalesced} lost ${value.lost}, incomplete-IPI exits by cause ${value.incompleteIpiExits.join('/')}, doorbells ${value.doorbells}, lost wake-ups ${value.lostWakeups}, ok ${value.ok} (other load ${value.otherLoad.toFixed(2)} cores)`,
    );
  }
  const clean = runs.every((result) => result.ok && result.done === VCPUS && result.lost === 0 && result.lostWakeups === 0);
  finishBench(
    BENCH,
    [
      goalResult({
        id: 'x2avic-512',
        title: `${VCPUS} vCPUs in x2APIC mode under x2AVIC start, run an x2APIC storm and stop cleanly`,
        figure: { label: 'start-up: Vm.create → every vCPU running', unit: 'ms', values: runs.map((result) => result.startupMs) },
        goal: {
          text: `${VCPUS} vCPUs switch to x2APIC, send ${ROUNDS} rounds of x2APIC IPIs each, none lost (record start-up and peak memory)`,
          kind: 'clean-run',
          threshold: 0,
        },
        clean,
        extras: [
          { label: 'peak RSS (maxRSS)', unit: 'MiB', values: runs.map((result) => result.maxRssMiB) },
          { label: 'run: start → last vCPU done', unit: 'ms', values: runs.map((result) => result.runMs) },
          { label: 'IPI messages sent', unit: 'count', values: runs.map((result) => result.sent) },
          { label: 'IPI messages delivered (handler entries)', unit: 'count', values: runs.map((result) => result.delivered) },
        ],
        notes: [
          `exits ${runs.map((result) => `${result.exit}${result.ok ? '' : ' NOT ok'}`).join(', ')}; lost IPIs ${runs.map((result) => result.lost).join('/')}; coalesced ${runs.map((result) => result.coalesced).join('/')}; incomplete-IPI exits by cause ${runs.map((result) => result.incompleteIpiExits.join('/')).join(', ')}; lost wake-ups ${runs.map((result) => result.lostWakeups).join('/')}`,
        ],
      }),
    ],
    { otherLoad: otherLoad(runs) },
    startedAt,
    REPS,
  );
});

function otherLoad(runs: readonly ChildResult[]): number[] {
  return runs.map((result) => result.otherLoad);
}

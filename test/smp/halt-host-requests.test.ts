// HLT ends only on something the vCPU can take: a deliverable interrupt, an NMI, INIT/start-up, or
// the VM stopping. The host's own requests (a kick, a memslot change, a pause) make the halted vCPU
// handle them and go back to HLT, as KVM's vcpu_run returns to kvm_vcpu_halt while mp_state is still
// HALTED. vCPU 0 halts with interrupts off (cli; hlt) or with its pending IPI masked by TPR
// (sti; hlt); the main thread pokes it thousands of times, checks the guest never passed the HLT,
// then has vCPU 1 send an NMI, which must end the HLT.
import { describe, expect, it } from 'vitest';
import { VcpuRequest, VcpuRunState } from '../../src/kvm/control/vcpu-run-state.js';
import { TaskState } from '../../src/host/run-queue.js';
import type { Vm } from '../../src/kvm/vm/vm.js';
import { createGuest, summary } from './smp-support.js';

const POKES = 2000;
const PAUSES = 400;

type Masking = 'cli' | 'tpr';

const source = (masking: Masking) => `
        .entry halter, 0
        .entry waker, 1
halter: li r2, nmi_handler
        st32 [ivt + 4 * 2], r2
        li r2, irq_handler
        st32 [ivt + 4 * 0x40], r2
        livt ivt
${
  masking === 'cli'
    ? `        cli`
    : `        li r2, 0xf0                     ; TPR class 15 masks vector 0x40
        st32 [APIC_BASE + APIC_TPR], r2
        li r2, APIC_DEST_SELF | APIC_DM_FIXED | 0x40
        st32 [APIC_BASE + APIC_ICR], r2   ; pending in IRR, not deliverable
        sti`
}
        li r2, 1
        st32 [halting], r2
        hlt
        li r2, 1
        st32 [passed], r2               ; past the HLT
${
  masking === 'cli'
    ? ''
    : `        li r2, 0
        st32 [APIC_BASE + APIC_TPR], r2   ; now the IPI is taken`
}
        li r1, 0
        hypercall HC_DONE

nmi_handler:
        li r3, 1
        xadd r3, [nmis]
        iret
irq_handler:
        li r3, 1
        xadd r3, [irqs]
        li r3, 0
        st32 [APIC_BASE + APIC_EOI], r3
        iret

waker:  pause
        ld32 r2, [go]
        beqz r2, waker
        li r2, 0                        ; physical destination: APIC ID 0
        st32 [APIC_BASE + APIC_ICR2], r2
        li r2, APIC_DEST_PHYSICAL | APIC_DM_NMI | APIC_INT_ASSERT
        st32 [APIC_BASE + APIC_ICR], r2
        li r1, 0
        hypercall HC_DONE

        .align 4
halting: .word 0
passed:  .word 0
nmis:    .word 0
irqs:    .word 0
go:      .word 0
        .align 8
ivt:    .zero 4 * 256
`;

const BOUND_MS = 10_000;

async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const deadline = performance.now() + BOUND_MS;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Atomics.waitAsync(flag, 0, 0, 1).value;
  }
}

/** A short, bounded spin on the main thread: the handshake right after a poke, so the next poke comes at once. */
function spinUntil(condition: () => boolean, what: string): void {
  const deadline = performance.now() + BOUND_MS;
  while (!condition()) if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
}

interface Halter {
  readonly vm: Vm;
  readonly word: (name: string) => number;
  readonly setGo: () => void;
  readonly requests: () => number;
  readonly runState: () => number;
  /** vCPU 0 is asleep in HLT (Blocked) and has seen every ring so far. */
  readonly asleep: () => boolean;
}

async function startHalter(masking: Masking): Promise<Halter> {
  const { vm, program } = await createGuest(source(masking), { vcpus: 2 });
  const ram = new Int32Array(vm.memory.buffers.ram);
  const word = (name: string) => Atomics.load(ram, program.symbols.get(name)! >> 2);
  const control = vm.memory.control;
  const requestsIndex = vm.memory.controlBlockIndex(0, 'requests');
  const runState = vm.memory.controlBlockIndex(0, 'runState');
  const setGo = () => Atomics.store(ram, program.symbols.get('go')! >> 2, 1);
  vm.start();
  const asleep = () => {
    // Blocked and put: off every run queue until a wake-up (host-cpu-loop.ts).
    return Atomics.load(control, runState) === VcpuRunState.Blocked && vm.memory.runQueues.state(0) === TaskState.Blocked;
  };
  await waitUntil(() => word('halting') === 1 && asleep(), 'vCPU 0 to halt and sleep');
  return { vm, word, setGo, requests: () => Atomics.load(control, requestsIndex), runState: () => Atomics.load(control, runState), asleep };
}

/**
 * Starts the halter, lets `poke` work on it (it returns what it did, for the message), checks vCPU 0
 * is back asleep in HLT without having passed it, then has the NMI end the HLT and the run finish.
 */
async function pokeHalter(masking: Masking, poke: (halter: Halter) => Promise<string> | string): Promise<void> {
  const halter = await startHalter(masking);
  const { word } = halter;
  try {
    const done = await poke(halter);
    await waitUntil(() => word('passed') !== 0 || halter.asleep(), 'vCPU 0 to sleep again');
    expect(word('passed'), `the guest passed its HLT with nothing to take (after ${done})`).toBe(0);
    expect(word('irqs')).toBe(0);
  } finally {
    // Let the run end (bounded) whatever the outcome, so no worker outlives the test.
    halter.setGo();
    if (halter.vm.runStates()[0] === 'paused') halter.vm.resume();
  }
  const report = await halter.vm.wait({ timeoutSeconds: 30 });
  expect(report.ok, summary(report)).toBe(true);
  expect(report.exit.reason).toBe('all-done');
  expect(word('passed')).toBe(1);
  expect(word('nmis')).toBe(1);
  expect(word('irqs')).toBe(masking === 'cli' ? 0 : 1);
}

describe('a halted vCPU goes back to HLT after a host request', () => {
  for (const masking of ['cli', 'tpr'] as const) {
    const what = masking === 'cli' ? 'cli; hlt' : 'sti; hlt with the pending IPI masked by TPR';

    it(`${what}: ${POKES} kicks do not end the HLT; an NMI does`, () =>
      pokeHalter(masking, (halter) => {
        let poke = 0;
        for (; poke < POKES && halter.word('passed') === 0; poke++) {
          halter.vm.kick(0);
          spinUntil(() => (halter.requests() & VcpuRequest.Kick) === 0 || halter.word('passed') !== 0, 'vCPU 0 to take the kick');
        }
        return `${poke} of ${POKES} kicks`;
      }));

    it(`${what}: ${POKES} memslot-change requests do not end the HLT`, () =>
      pokeHalter(masking, (halter) => {
        let poke = 0;
        for (; poke < POKES && halter.word('passed') === 0; poke++) {
          // What the memslot writer sends a vCPU it finds in guest mode (kvm_make_all_cpus_request).
          halter.vm.memory.kick(0, VcpuRequest.MemslotsChanged);
          spinUntil(
            () => (halter.requests() & VcpuRequest.MemslotsChanged) === 0 || halter.word('passed') !== 0,
            'vCPU 0 to reload its memslots',
          );
        }
        return `${poke} of ${POKES} memslot-change requests`;
      }));
  }

  it(`cli; hlt: ${PAUSES} pause/resume cycles park the halted vCPU and leave it halted`, () =>
    pokeHalter('cli', async (halter) => {
      let cycle = 0;
      for (; cycle < PAUSES && halter.word('passed') === 0; cycle++) {
        await halter.vm.pause();
        if (halter.word('passed') !== 0) break; // it left HLT and finished: reported below
        expect(halter.vm.runStates()[0]).toBe('paused');
        halter.vm.resume();
        // Handshake: vCPU 0 has left the park (it is on its way back to HLT) before the next pause, so
        // that pause does not find it still paused from this one, and lands while it re-halts.
        spinUntil(() => halter.runState() !== VcpuRunState.Paused, 'vCPU 0 to leave the park');
      }
      return `${cycle} of ${PAUSES} pauses`;
    }));
});

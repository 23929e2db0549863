// The guest the memslot bench keeps running while it updates memslots: every vCPU busy in guest
// mode, sending fixed IPIs around a ring (vCPU i to vCPU (i + 1) mod N; a lone vCPU to itself, so
// N = 1 runs the same loop, which the storm scenario cannot: it needs 2), taking them with IF = 1,
// and leaving guest mode every EXIT_EVERY-th IPI through a hypercall (an exit handled inside
// kvm->srcu, as KVM handles exits). So an update meets vCPUs in guest mode (the grace period must
// kick them out; they see the kick at their next taken branch) and vCPUs inside SRCU read sections
// (synchronize_srcu must wait for them). It runs until the host sets stop_requested.
// Kept here as source rather than in bench/programs/ (this bench may add files only under bench/lib).

import type { ProgramImage } from '../../src/guest/assembler.js';
import { assembleSource } from './running-vm.js';

const RING_SOURCE = `
        .equ VECTOR, 0x40
        .equ EXIT_EVERY, 64             ; a power of two: one hypercall exit per 64 IPIs sent

        .entry start

; r0 = this vCPU, r1 = the vCPU count (start state); r4 = ICR2 (the next vCPU), r5 = ICR, r7 = sent
start:
        livt ivt
        add r4, r0, 1
        remu r4, r4, r1
        shl r4, r4, APIC_DEST_SHIFT
        li r5, APIC_DEST_PHYSICAL | APIC_DM_FIXED | VECTOR
        li r7, 0
        sti
send:
        st32 [APIC_BASE + APIC_ICR2], r4
        st32 [APIC_BASE + APIC_ICR], r5
        add r7, r7, 1
        and r2, r7, EXIT_EVERY - 1
        bnez r2, send
        li r1, 0
        li r2, EXIT_EVERY
        hypercall HC_COUNT              ; the exit: slot 0 += IPIs sent
        ld32 r2, [stop_requested]
        beqz r2, send
        cli
        li r1, 0
        hypercall HC_DONE
park:
        cli
        hlt
        jmp park

handler:
        st32 [APIC_BASE + APIC_EOI], r0
        iret

        .align 64
stop_requested: .word 0
        .align 64
ivt:
        .zero 4 * VECTOR
        .word handler
        .zero 4 * (255 - VECTOR)
`;

export function assembleRingProgram(): ProgramImage {
  return assembleSource('bench/lib/ring-program.ts', RING_SOURCE, {});
}

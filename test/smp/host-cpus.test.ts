// vCPUs scheduled onto host CPUs (src/kvm/vcpu/host-cpu-loop.ts): what KVM's vcpu_load / vcpu_put
// mean for AVIC when vCPUs outnumber host CPUs.
import { describe, expect, it } from 'vitest';
import { apicId } from '../../src/hw/apic/apic-id.js';
import { countingProgram, createGuest, runGuest, summary } from './smp-support.js';

// Each vCPU counts in its own line until the host sets `stop`.
const counting = countingProgram(8);

// Even vCPUs count until the host sets `stop`; odd vCPUs finish at once, leaving their host CPU idle.
const oddsFinish = `
        .entry count
count:
        and r6, r0, 1
        bnez r6, finish
        shl r5, r0, 6
        add r5, r5, counters
loop:
        ld32 r2, [r5]
        add r2, r2, 1
        st32 [r5], r2
        ld32 r3, [stop]
        beqz r3, loop
finish:
        li r1, 0
        hypercall HC_DONE
        .align 64
stop:     .word 0
        .align 64
counters: .zero 64 * 8
`;

// Even vCPUs count until the host sets `stop`; odd vCPUs wait until every even vCPU has counted (so
// each has been built and has run), then finish, leaving their host CPU idle.
const oddsFinishLater = `
        .entry count
count:
        and r6, r0, 1
        bnez r6, waitEvens
        shl r5, r0, 6
        add r5, r5, counters
loop:
        ld32 r2, [r5]
        add r2, r2, 1
        st32 [r5], r2
        ld32 r3, [stop]
        beqz r3, loop
        li r1, 0
        hypercall HC_DONE
waitEvens:
        li r7, 0
nextEven:
        shl r5, r7, 6
        add r5, r5, counters
waitOne:
        ld32 r2, [r5]
        beqz r2, waitOne
        add r7, r7, 2
        bltu r7, r1, nextEven
        li r1, 0
        hypercall HC_DONE
        .align 64
stop:     .word 0
        .align 64
counters: .zero 64 * 8
`;

// vCPU 0 sends IPIS fixed IPIs to vCPU 1, one at a time, waiting (with PAUSE) for each to be handled;
// vCPU 1 spins with interrupts enabled and never halts, so it is only ever preempted, never blocked.
const IPIS = 20;
const preemptedTarget = `
        .equ IPIS, ${IPIS}
        .equ VECTOR, 0xA5
        .entry sender, 0
        .entry spinner, 1
sender:
        li r2, APIC_SPIV_APIC_ENABLED | 0xFF
        st32 [APIC_BASE + APIC_SPIV], r2
        li r4, 1 << APIC_DEST_SHIFT
        li r5, APIC_DEST_PHYSICAL | APIC_DM_FIXED | VECTOR
        li r6, 0
send:
        st32 [APIC_BASE + APIC_ICR2], r4
        st32 [APIC_BASE + APIC_ICR], r5
        add r6, r6, 1
wait:
        pause
        ld32 r7, [received]
        bltu r7, r6, wait
        li r8, IPIS
        bltu r6, r8, send
        li r2, 1
        xchg r2, [stop]
        li r1, 0
        hypercall HC_DONE
spinner:
        livt ivt
        li r2, APIC_SPIV_APIC_ENABLED | 0xFF
        st32 [APIC_BASE + APIC_SPIV], r2
        sti
spin:
        ld32 r3, [stop]
        beqz r3, spin
        li r1, 0
        hypercall HC_DONE
handler:
        push r2
        li r2, 1
        xadd r2, [received]
        st32 [APIC_BASE + APIC_EOI], r2
        pop r2
        iret
        .align 64
stop:     .word 0
received: .word 0
ivt:
        .zero 4 * VECTOR
        .word handler
        .zero 4 * (255 - VECTOR)
`;

describe('host CPUs', () => {
  it('IsRunning is 0 for every vCPU not loaded on a host CPU, sampled from main while 6 vCPUs switch on 2 host CPUs', async () => {
    const vcpus = 6;
    const { vm, program } = await createGuest(counting, { vcpus, hostCpus: 2, quantumUs: 200 });
    const memory = vm.memory;
    const ram = new Int32Array(memory.buffers.ram);
    const sequence = (host: number) => Atomics.load(memory.control, memory.hostCpuIndex(host, 'switchSequence'));
    vm.start();
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const counted = (vcpu: number) => Atomics.load(ram, (program.symbols.get('counters')! >> 2) + vcpu * 16) > 0;
    for (let polls = 0; !Array.from({ length: vcpus }, (_, vcpu) => counted(vcpu)).every(Boolean); polls++) {
      if (polls > 10_000) throw new Error('the vCPUs did not all start counting');
      await Atomics.waitAsync(flag, 0, 0, 2).value;
    }
    const problems: string[] = [];
    let consistentSamples = 0;
    let loadedSeen = 0;
    while (consistentSamples < 2000 && problems.length === 0) {
      for (let sample = 0; sample < 200; sample++) {
        for (let host = 0; host < 2; host++) {
          // The host CPU's switch seqlock (O11): a sample between two equal even values saw no put or load.
          const before = sequence(host);
          if ((before & 1) !== 0) continue;
          const current = memory.hostCpus.currentVcpu(host);
          const running: number[] = [];
          for (let vcpu = host; vcpu < vcpus; vcpu += 2) if (memory.physicalApicIdTable.isRunning(apicId(vcpu))) running.push(vcpu);
          if (sequence(host) !== before) continue;
          consistentSamples++;
          if (current >= 0) loadedSeen++;
          const strays = running.filter((vcpu) => vcpu !== current);
          if (strays.length > 0)
            problems.push(`host CPU ${host} has vCPU ${current} loaded, yet IsRunning = 1 for vCPU ${strays.join(', ')}`);
        }
      }
      await Atomics.waitAsync(flag, 0, 0, 1).value;
    }
    Atomics.store(ram, program.symbols.get('stop')! >> 2, 1);
    const report = await vm.wait({ timeoutSeconds: 30 });
    expect(problems).toEqual([]);
    expect(loadedSeen).toBeGreaterThan(0);
    expect(report.ok, summary(report)).toBe(true);
    // The vCPUs really took turns: every one counted, and the host CPUs switched among them.
    expect(report.hostCpus.reduce((total, host) => total + host.vcpuSwitches, 0)).toBeGreaterThan(vcpus);
    expect(report.hostCpus.reduce((total, host) => total + host.preemptions, 0)).toBeGreaterThan(0);
  });

  it('an idle host CPU takes a runnable vCPU from a busy one: the new host id is published at its load and IsRunning follows it', async () => {
    // 6 vCPUs on 2 host CPUs: host CPU 0 queues the counting vCPUs 0, 2, 4; host CPU 1's vCPUs 1, 3, 5
    // finish at once. With a long quantum, vCPUs 2 and 4 run only if host CPU 1 takes them.
    const vcpus = 6;
    const { vm, program } = await createGuest(oddsFinish, { vcpus, hostCpus: 2, quantumUs: 200_000 });
    const memory = vm.memory;
    const ram = new Int32Array(memory.buffers.ram);
    const sequence = (host: number) => Atomics.load(memory.control, memory.hostCpuIndex(host, 'switchSequence'));
    const counted = (vcpu: number) => Atomics.load(ram, (program.symbols.get('counters')! >> 2) + vcpu * 16) > 0;
    const flag = new Int32Array(new SharedArrayBuffer(4));
    vm.start();
    for (let polls = 0; ![0, 2, 4].every(counted); polls++) {
      if (polls > 10_000) throw new Error('the even vCPUs did not all start counting');
      await Atomics.waitAsync(flag, 0, 0, 2).value;
    }
    const problems: string[] = [];
    let movedSeen = 0;
    for (let sample = 0; sample < 20_000 && problems.length === 0; sample++) {
      for (let host = 0; host < 2; host++) {
        const before = sequence(host);
        if ((before & 1) !== 0) continue;
        const current = memory.hostCpus.currentVcpu(host);
        const running = Array.from({ length: vcpus }, (_, vcpu) => vcpu).filter((vcpu) =>
          memory.physicalApicIdTable.isRunning(apicId(vcpu)),
        );
        const hostId = current < 0 ? -1 : Number(memory.physicalApicIdTable.hostPhysicalApicId(apicId(current)));
        if (sequence(host) !== before) continue;
        if (current < 0) continue;
        if (current % 2 === 0 && host === 1) movedSeen++;
        if (hostId !== host) problems.push(`vCPU ${current} is loaded on host CPU ${host}, yet its entry names host ${hostId}`);
        if (!running.includes(current)) problems.push(`vCPU ${current} is loaded on host CPU ${host} with IsRunning = 0`);
      }
      if (sample % 200 === 0) await Atomics.waitAsync(flag, 0, 0, 1).value;
    }
    Atomics.store(ram, program.symbols.get('stop')! >> 2, 1);
    const report = await vm.wait({ timeoutSeconds: 30 });
    expect(problems).toEqual([]);
    expect(report.ok, summary(report)).toBe(true);
    expect(report.hostCpus[1]!.migrations, summary(report)).toBeGreaterThan(0);
    expect(movedSeen).toBeGreaterThan(0);
    const moved = report.perVcpu.filter((vcpu) => vcpu.vcpu % 2 === 0 && vcpu.scheduling.hostCpu === 1);
    expect(moved.length).toBe(report.hostCpus[1]!.migrations);
  });

  it('a built vCPU moves to an idle host CPU through its save area and goes on where it was', async () => {
    // 5 vCPUs on 2 host CPUs: host CPU 0 runs the 3 counting vCPUs 0, 2, 4 in turn; host CPU 1's
    // vCPUs 1 and 3 finish once all three have counted, so host CPU 1 takes built vCPUs from host CPU 0.
    const vcpus = 5;
    const { vm, program } = await createGuest(oddsFinishLater, { vcpus, hostCpus: 2, quantumUs: 2000 });
    const memory = vm.memory;
    const ram = new Int32Array(memory.buffers.ram);
    const count = (vcpu: number) => Atomics.load(ram, (program.symbols.get('counters')! >> 2) + vcpu * 16);
    const finished = (vcpu: number) => Atomics.load(memory.control, memory.controlBlockIndex(vcpu, 'finished')) !== 0;
    const flag = new Int32Array(new SharedArrayBuffer(4));
    vm.start();
    for (let polls = 0; !(finished(1) && finished(3)); polls++) {
      if (polls > 10_000) throw new Error('the odd vCPUs did not finish');
      await Atomics.waitAsync(flag, 0, 0, 2).value;
    }
    // Each even vCPU goes on counting after the moves (its registers came with it).
    const before = [0, 2, 4].map(count);
    for (
      let polls = 0;
      ![0, 2, 4].every((vcpu, position) => count(vcpu) > before[position]! + 1000) || memory.hostCpus.statistic(1, 'migrations') < 1;
      polls++
    ) {
      if (polls > 10_000) throw new Error(`the even vCPUs did not go on counting on both host CPUs: ${[0, 2, 4].map(count).join(', ')}`);
      await Atomics.waitAsync(flag, 0, 0, 2).value;
    }
    Atomics.store(ram, program.symbols.get('stop')! >> 2, 1);
    const report = await vm.wait({ timeoutSeconds: 30 });
    expect(report.ok, summary(report)).toBe(true);
    expect(report.perVcpu.map((vcpu) => vcpu.exit)).toEqual(['done', 'done', 'done', 'done', 'done']);
    expect(report.hostCpus[1]!.migrations, summary(report)).toBeGreaterThan(0);
  });

  it('an IPI to a preempted vCPU takes the incomplete-IPI exit with cause 1 (target not running) and is delivered at its next load', async () => {
    const report = await runGuest(preemptedTarget, { vcpus: 2, hostCpus: 1 });
    expect(report.ok, summary(report)).toBe(true);
    // One host CPU: the target is never loaded while the sender runs, so no IPI finds IsRunning set.
    expect(report.exits.incompleteIpi.targetNotRunning, summary(report)).toBe(IPIS);
    expect(report.doorbells).toBe(0);
    expect(report.ipis.delivered).toBe(IPIS);
    expect(report.hostCpus[0]!.directedYields).toBeGreaterThan(0);
  });
});

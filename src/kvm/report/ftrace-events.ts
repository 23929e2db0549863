// The text of each tracepoint the ftrace format shows, as the kernel's TP_printk prints it: KVM's
// (arch/x86/kvm/trace.h: kvm_entry, kvm_exit, kvm_avic_*; include/trace/events/kvm.h:
// kvm_vcpu_wakeup) and the scheduler's (include/trace/events/sched.h: sched_switch, sched_waking).
// Numbers follow the kernel's vsnprintf, not glibc's: "%#x" always prints its "0x" (zero is "0x0"),
// and a field width counts the "0x" ("%#010x" is 0x and eight digits).
//
// The tasks are named as a QEMU/KVM host names them: each vCPU runs in a thread called "CPU N/KVM",
// and an idle host CPU runs swapper/N (pid 0, shown as <idle> in the task column). The pids are the
// emulator's own numbering (VCPU_TASK_PID_BASE + vCPU index), one per vCPU task.

import { SvmExitCode } from '../../hw/avic/avic-exit.js';

/** The pid of vCPU 0's task; vCPU N's is this + N. */
export const VCPU_TASK_PID_BASE = 1000;
/** Every task runs at the default priority (nice 0): prio 120 in sched_switch. */
export const TASK_PRIORITY = 120;

/** A task as sched_switch names it. */
export interface FtraceTask {
  readonly comm: string;
  readonly pid: number;
}

export function vcpuTask(vcpu: number): FtraceTask {
  return { comm: `CPU ${vcpu}/KVM`, pid: VCPU_TASK_PID_BASE + vcpu };
}

export function idleTask(cpu: number): FtraceTask {
  return { comm: `swapper/${cpu}`, pid: 0 };
}

/** "%0<digits>x" of an unsigned 32-bit value. */
function hex(value: number, digits: number): string {
  return (value >>> 0).toString(16).padStart(digits, '0');
}

/** The kernel's "%#0<width>x": "0x", then at least width - 2 digits. */
function alternateHex(value: number, width = 0): string {
  return `0x${hex(value, Math.max(1, width - 2))}`;
}

/** "0x%016llx" of a 64-bit value given as 32-bit halves. */
function hex64(low: number, high: number): string {
  return `0x${hex(high, 8)}${hex(low, 8)}`;
}

/** SVM_EXIT_REASONS (arch/x86/include/uapi/asm/svm.h) for the exits the model takes, and SHUTDOWN. */
const SVM_EXIT_REASON_NAMES: ReadonlyMap<number, string> = new Map([
  [SvmExitCode.Interrupt, 'interrupt'],
  [SvmExitCode.Pause, 'pause'],
  [SvmExitCode.Halt, 'hlt'],
  [SvmExitCode.Msr, 'msr'],
  [SvmExitCode.Shutdown, 'shutdown'],
  [SvmExitCode.NestedPageFault, 'npf'],
  [SvmExitCode.AvicIncompleteIpi, 'avic_incomplete_ipi'],
  [SvmExitCode.AvicUnacceleratedAccess, 'avic_unaccelerated_access'],
]);

/** kvm_trace_symbol_apic (arch/x86/kvm/trace.h): the APIC register offsets KVM names. */
const APIC_REGISTER_NAMES: ReadonlyMap<number, string> = new Map([
  [0x20, 'APIC_ID'],
  [0x30, 'APIC_LVR'],
  [0x80, 'APIC_TASKPRI'],
  [0x90, 'APIC_ARBPRI'],
  [0xa0, 'APIC_PROCPRI'],
  [0xb0, 'APIC_EOI'],
  [0xc0, 'APIC_RRR'],
  [0xd0, 'APIC_LDR'],
  [0xe0, 'APIC_DFR'],
  [0xf0, 'APIC_SPIV'],
  [0x100, 'APIC_ISR'],
  [0x180, 'APIC_TMR'],
  [0x200, 'APIC_IRR'],
  [0x280, 'APIC_ESR'],
  [0x300, 'APIC_ICR'],
  [0x310, 'APIC_ICR2'],
  [0x320, 'APIC_LVTT'],
  [0x330, 'APIC_LVTTHMR'],
  [0x340, 'APIC_LVTPC'],
  [0x350, 'APIC_LVT0'],
  [0x360, 'APIC_LVT1'],
  [0x370, 'APIC_LVTERR'],
  [0x380, 'APIC_TMICT'],
  [0x390, 'APIC_TMCCT'],
  [0x3e0, 'APIC_TDCR'],
  [0x3f0, 'APIC_SELF_IPI'],
  [0x400, 'APIC_EFEAT'],
  [0x410, 'APIC_ECTRL'],
]);

/** __print_symbolic: the name, or "0x%lx" of a value the table does not name. */
function symbolic(value: number, names: ReadonlyMap<number, string>): string {
  return names.get(value) ?? `0x${(value >>> 0).toString(16)}`;
}

/** kvm_entry: "vcpu %u, rip 0x%lx%s" (never an immediate exit here). */
export function kvmEntry(vcpu: number, rip: number): string {
  return `vcpu ${vcpu}, rip 0x${(rip >>> 0).toString(16)}`;
}

/**
 * kvm_exit (SVM): "vcpu %u reason %s rip 0x%lx info1 0x%016llx info2 0x%016llx intr_info 0x%08x
 * error_code 0x%08x". The model injects no events through EXITINTINFO, so both are 0.
 */
export function kvmExit(
  vcpu: number,
  exitCode: number,
  rip: number,
  info1Low: number,
  info1High: number,
  info2Low: number,
  info2High: number,
): string {
  return (
    `vcpu ${vcpu} reason ${symbolic(exitCode, SVM_EXIT_REASON_NAMES)} rip 0x${(rip >>> 0).toString(16)} ` +
    `info1 ${hex64(info1Low, info1High)} info2 ${hex64(info2Low, info2High)} intr_info 0x00000000 error_code 0x00000000`
  );
}

/** kvm_avic_incomplete_ipi: "vcpu=%u, icrh:icrl=%#010x:%08x, id=%u, index=%u". */
export function kvmAvicIncompleteIpi(vcpu: number, icrHigh: number, icrLow: number, id: number, index: number): string {
  return `vcpu=${vcpu}, icrh:icrl=${alternateHex(icrHigh, 10)}:${hex(icrLow, 8)}, id=${id}, index=${index}`;
}

/** kvm_avic_unaccelerated_access: "vcpu=%u, offset=%#x(%s), %s, %s, vec=%#x". */
export function kvmAvicUnacceleratedAccess(vcpu: number, offset: number, trap: boolean, write: boolean, vector: number): string {
  return `vcpu=${vcpu}, offset=${alternateHex(offset)}(${symbolic(offset, APIC_REGISTER_NAMES)}), ${trap ? 'trap' : 'fault'}, ${write ? 'write' : 'read'}, vec=${alternateHex(vector)}`;
}

/** kvm_avic_kick_vcpu_slowpath: "icrh:icrl=%#08x:%08x, index=%u". */
export function kvmAvicKickVcpuSlowpath(icrHigh: number, icrLow: number, index: number): string {
  return `icrh:icrl=${alternateHex(icrHigh, 8)}:${hex(icrLow, 8)}, index=${index}`;
}

/** kvm_avic_doorbell: "vcpuid=%u, apicid=%u" (the host physical APIC id the doorbell was rung at). */
export function kvmAvicDoorbell(vcpuId: number, apicId: number): string {
  return `vcpuid=${vcpuId}, apicid=${apicId}`;
}

/** kvm_vcpu_wakeup: "%s time %lld ns, polling %s"; vcpu_valid_wakeup is always true on x86. */
export function kvmVcpuWakeup(haltNs: number, waited: boolean): string {
  return `${waited ? 'wait' : 'poll'} time ${Math.round(haltNs)} ns, polling valid`;
}

/** sched_switch: "prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s%s ==> next_comm=%s next_pid=%d next_prio=%d". */
export function schedSwitch(previous: FtraceTask, previousState: string, next: FtraceTask): string {
  return (
    `prev_comm=${previous.comm} prev_pid=${previous.pid} prev_prio=${TASK_PRIORITY} prev_state=${previousState} ` +
    `==> next_comm=${next.comm} next_pid=${next.pid} next_prio=${TASK_PRIORITY}`
  );
}

/** sched_waking: "comm=%s pid=%d prio=%d target_cpu=%03d". */
export function schedWaking(task: FtraceTask, targetCpu: number): string {
  return `comm=${task.comm} pid=${task.pid} prio=${TASK_PRIORITY} target_cpu=${String(targetCpu).padStart(3, '0')}`;
}

// Symbols every guest program can use without defining them: the APIC page, its register offsets and
// ICR fields under the names Linux's arch/x86/include/asm/apicdef.h gives them (so code ported from
// kvm selftests reads the same), a few MSRs and their bits (x2APIC register r is MSR
// APIC_BASE_MSR + (r >> 4), as in Linux), the IF flag and the hypercall numbers. Values come from
// the modules that own them, so the assembler cannot drift from the APIC model or the host.
// docs/guest-isa.md lists every one; a test checks that it does.

import { APIC_DEFAULT_PHYSICAL_BASE, ApicRegister } from '../hw/apic/apic-register.js';
import { APIC_BASE_BSP, APIC_BASE_GLOBAL_ENABLE, APIC_BASE_X2APIC_ENABLE } from '../hw/apic/apic-base.js';
import { ErrorStatusBit, errorStatusMask } from '../hw/apic/error-status.js';
import { APIC_SELF_IPI_OFFSET, X2APIC_MSR_BASE } from '../hw/apic/x2apic-register.js';
import { Hypercall } from './hypercall.js';
import { FLAGS_INTERRUPT_ENABLE } from './instruction-set.js';

const APIC_REGISTER_SYMBOLS: ReadonlyArray<readonly [string, number]> = [
  ['APIC_ID', ApicRegister.Id],
  ['APIC_LVR', ApicRegister.Version],
  ['APIC_TASKPRI', ApicRegister.TaskPriority],
  ['APIC_TPR', ApicRegister.TaskPriority],
  ['APIC_ARBPRI', ApicRegister.ArbitrationPriority],
  ['APIC_PROCPRI', ApicRegister.ProcessorPriority],
  ['APIC_PPR', ApicRegister.ProcessorPriority],
  ['APIC_EOI', ApicRegister.EndOfInterrupt],
  ['APIC_RRR', ApicRegister.RemoteRead],
  ['APIC_LDR', ApicRegister.LogicalDestination],
  ['APIC_DFR', ApicRegister.DestinationFormat],
  ['APIC_SPIV', ApicRegister.SpuriousInterruptVector],
  ['APIC_SVR', ApicRegister.SpuriousInterruptVector],
  ['APIC_ISR', ApicRegister.InService],
  ['APIC_TMR', ApicRegister.TriggerMode],
  ['APIC_IRR', ApicRegister.InterruptRequest],
  ['APIC_ESR', ApicRegister.ErrorStatus],
  ['APIC_ICR', ApicRegister.InterruptCommandLow],
  ['APIC_ICR2', ApicRegister.InterruptCommandHigh],
  ['APIC_LVTT', ApicRegister.LvtTimer],
  ['APIC_LVTTHMR', ApicRegister.LvtThermal],
  ['APIC_LVTPC', ApicRegister.LvtPerformanceCounter],
  ['APIC_LVT0', ApicRegister.LvtLint0],
  ['APIC_LVT1', ApicRegister.LvtLint1],
  ['APIC_LVTERR', ApicRegister.LvtError],
  ['APIC_TMICT', ApicRegister.TimerInitialCount],
  ['APIC_TMCCT', ApicRegister.TimerCurrentCount],
  ['APIC_TDCR', ApicRegister.TimerDivideConfiguration],
  ['APIC_SELF_IPI', APIC_SELF_IPI_OFFSET],
];

/** ICR low fields (Intel SDM vol. 3 §11.6.1) and ICR high's destination shift. */
const INTERRUPT_COMMAND_SYMBOLS: ReadonlyArray<readonly [string, number]> = [
  ['APIC_DM_FIXED', 0x000],
  ['APIC_DM_LOWEST', 0x100],
  ['APIC_DM_SMI', 0x200],
  ['APIC_DM_NMI', 0x400],
  ['APIC_DM_INIT', 0x500],
  ['APIC_DM_STARTUP', 0x600],
  ['APIC_DEST_PHYSICAL', 0x000],
  ['APIC_DEST_LOGICAL', 0x800],
  ['APIC_ICR_BUSY', 0x1000],
  ['APIC_INT_ASSERT', 0x4000],
  ['APIC_INT_LEVELTRIG', 0x8000],
  ['APIC_DEST_SELF', 0x40000],
  ['APIC_DEST_ALLINC', 0x80000],
  ['APIC_DEST_ALLBUT', 0xc0000],
  ['APIC_DEST_SHIFT', 24],
];

const OTHER_SYMBOLS: ReadonlyArray<readonly [string, number]> = [
  ['APIC_BASE', APIC_DEFAULT_PHYSICAL_BASE],
  ['APIC_SPIV_APIC_ENABLED', 0x100],
  ['APIC_DFR_FLAT', 0xffffffff],
  ['APIC_DFR_CLUSTER', 0x0fffffff],
  ['MSR_IA32_APICBASE', 0x1b],
  ['MSR_IA32_TSC', 0x10],
  ['MSR_IA32_APICBASE_BSP', APIC_BASE_BSP],
  ['MSR_IA32_APICBASE_ENABLE', APIC_BASE_GLOBAL_ENABLE],
  ['X2APIC_ENABLE', APIC_BASE_X2APIC_ENABLE],
  ['APIC_BASE_MSR', X2APIC_MSR_BASE],
  ['APIC_ESR_SENDILL', errorStatusMask(ErrorStatusBit.SendIllegalVector)],
  ['APIC_ESR_RECVILL', errorStatusMask(ErrorStatusBit.ReceivedIllegalVector)],
  ['APIC_ESR_ILLREGA', errorStatusMask(ErrorStatusBit.IllegalRegisterAddress)],
  ['IF_FLAG', FLAGS_INTERRUPT_ENABLE],
  ['HC_DONE', Hypercall.Done],
  ['HC_REPORT', Hypercall.Report],
  ['HC_COUNT', Hypercall.Count],
  ['HC_LATENCY_SAMPLE', Hypercall.LatencySample],
  ['HC_LATENCY_RESET', Hypercall.LatencyReset],
  ['HC_PRINT', Hypercall.Print],
  ['HC_ABORT', Hypercall.Abort],
  ['HC_VCPU_RUN_STATE', Hypercall.VcpuRunState],
  ['VCPU_STATE_RUNNING', 1],
  ['VCPU_STATE_BLOCKED', 2],
  ['VCPU_STATE_FINISHED', 4],
];

/** Every predefined symbol and its value (unsigned 32-bit). Names are case-sensitive. */
export const PREDEFINED_SYMBOLS: ReadonlyMap<string, number> = new Map(
  [...OTHER_SYMBOLS, ...APIC_REGISTER_SYMBOLS, ...INTERRUPT_COMMAND_SYMBOLS].map(([name, value]) => [name, value >>> 0] as const),
);

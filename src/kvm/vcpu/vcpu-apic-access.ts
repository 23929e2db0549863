// The vCPU's accesses outside RAM as AVIC and KVM handle them: the APIC-access page (AVIC's
// accelerated reads and writes, an AVIC exit, or an emulated MMIO exit while AVIC is inhibited) and
// RDMSR/WRMSR (x2AVIC's passed-through x2APIC MSRs, or an intercepted MSR exit). An exit is handled
// inside the instruction through the vCPU's exitFromGuestInstruction (vcpu.ts).

import type { GuestCpu } from '../../guest/guest-cpu.js';
import { GuestFaultKind } from '../../guest/guest-fault.js';
import { hostThread, SchedulingPoint } from '../../host/host-thread.js';
import { ApicAccessKind } from '../../hw/apic/apic-access.js';
import { APIC_DEFAULT_PHYSICAL_BASE, APIC_PAGE_BYTES, ApicRegister } from '../../hw/apic/apic-register.js';
import { isX2apicMsr, X2apicMsr, xapicOffsetForX2apicMsr } from '../../hw/apic/x2apic-register.js';
import { avicApicRead, avicApicWrite, x2avicMsrWrite, type AvicVmcb } from '../../hw/avic/avic-apic-access.js';
import { NPF_ERROR_CODE_WRITE, SvmExitCode } from '../../hw/avic/avic-exit.js';
import { VcpuStatistic } from '../control/vm-layout.js';
import type { VcpuCounting } from '../control/vcpu-counters.js';
import type { ApicRegisterPage } from '../lapic/apic-register-page.js';
import { X2AVIC_PASSTHROUGH_MSRS, x2avicMsrReadFaults, x2avicMsrWriteFaults } from '../lapic/x2apic-msr.js';
import type { TraceRecorder } from '../report/trace-recorder.js';
import { accountAvicIpi } from '../svm/avic-incomplete-ipi.js';
import { checkModelSpecificRegisterWrite, readModelSpecificRegister, type MsrHost } from './model-specific-registers.js';

/**
 * The guest wrote the ICR or EOI (through the page or the MSR, accelerated or not): other threads may
 * act before the hardware or KVM does. ICR: the targets may be loaded, put or block before delivery.
 * EOI: a new IRR bit may land before or after the ISR clear that decides what is taken next.
 */
function writePoint(offset: number): void {
  if (offset === ApicRegister.InterruptCommandLow) hostThread().point(SchedulingPoint.IcrWrite);
  else if (offset === ApicRegister.EndOfInterrupt) hostThread().point(SchedulingPoint.Eoi);
}

/** What the vCPU lends its APIC and MSR accesses. */
export interface VcpuApicAccessHost {
  readonly vmcb: AvicVmcb;
  readonly page: ApicRegisterPage;
  readonly lapic: { readonly x2apicMode: boolean };
  readonly counters: VcpuCounting;
  readonly trace: TraceRecorder | undefined;
  readonly msrHost: MsrHost;
  /** VmConfig.x2avic: KVM uses x2AVIC. */
  readonly x2avic: boolean;
  apicAccessSlotPresent(): boolean;
  /** Whether AVIC handles the access (an APICv update not yet handled is handled first). */
  apicvActive(): boolean;
  exitFromGuestInstruction(operand: number, value: number, high: number): number;
}

export class VcpuApicAccess {
  readonly #host: VcpuApicAccessHost;

  constructor(host: VcpuApicAccessHost) {
    this.#host = host;
  }

  accessOutsideRam(cpu: GuestCpu, address: number, width: 1 | 2 | 4, isWrite: boolean, value: number): number {
    const offset = address - APIC_DEFAULT_PHYSICAL_BASE;
    if (!this.#host.apicAccessSlotPresent() || offset < 0 || offset >= APIC_PAGE_BYTES) {
      cpu.raiseFault(
        GuestFaultKind.AccessOutsideMemory,
        `${isWrite ? 'write' : 'read'} of ${width} byte(s) outside every memslot`,
        address,
      );
      return 0;
    }
    if (width !== 4 || (offset & 3) !== 0) {
      cpu.raiseFault(GuestFaultKind.InvalidApicAccess, 'local APIC registers take aligned 32-bit accesses only', address);
      return 0;
    }
    if (this.#host.lapic.x2apicMode) {
      // x2APIC mode disables the MMIO interface (SDM §11.12.1.2); KVM's MMIO handler declines it.
      cpu.raiseFault(
        GuestFaultKind.InvalidApicAccess,
        `xAPIC MMIO ${isWrite ? 'write' : 'read'} of offset 0x${offset.toString(16)} in x2APIC mode: use the MSRs 0x800-0x8FF`,
      );
      return 0;
    }
    if (isWrite) writePoint(offset);
    const vmcb = this.#host.vmcb;
    if (!this.#host.apicvActive()) {
      vmcb.exit.set(SvmExitCode.NestedPageFault, isWrite ? NPF_ERROR_CODE_WRITE : 0, address);
      return this.#host.exitFromGuestInstruction(offset, value, 0);
    }
    let result = 0;
    if (!isWrite) result = avicApicRead(vmcb, offset);
    else if (avicApicWrite(vmcb, cpu, offset, value) === ApicAccessKind.InterruptCommand) {
      accountAvicIpi(
        vmcb.ipi,
        value,
        (this.#host.page.read(ApicRegister.InterruptCommandHigh) >>> 24) & 0xff,
        this.#host.counters,
        this.#host.trace,
      );
    }
    return vmcb.exit.exitCode === 0 ? result : this.#host.exitFromGuestInstruction(offset, value, 0);
  }

  /**
   * Whether an RDMSR/WRMSR of `index` goes to the x2AVIC hardware instead of exiting: one of KVM's
   * x2avic_passthrough_msrs, with this vCPU in x2APIC mode, the VM using x2AVIC (int_ctl bit 30) and
   * no inhibit (else KVM intercepts the x2APIC MSRs again and emulates them).
   */
  #x2avicPassesThrough(index: number): boolean {
    return (
      isX2apicMsr(index) &&
      X2AVIC_PASSTHROUGH_MSRS.has(index) &&
      this.#host.lapic.x2apicMode &&
      this.#host.x2avic &&
      this.#host.apicvActive()
    );
  }

  /** RDMSR: x2AVIC's accelerated read, or an intercepted one (an MSR exit, model-specific-registers.ts). */
  readMsr(cpu: GuestCpu, index: number): number {
    if (this.#x2avicPassesThrough(index)) {
      if (x2avicMsrReadFaults(cpu, index)) return 0;
      const offset = xapicOffsetForX2apicMsr(index);
      const vmcb = this.#host.vmcb;
      let value = avicApicRead(vmcb, offset);
      if (vmcb.exit.exitCode !== 0) value = this.#host.exitFromGuestInstruction(offset, 0, 0);
      cpu.msrHighWord = index === X2apicMsr.InterruptCommand ? this.#host.page.read(ApicRegister.InterruptCommandHigh) : 0;
      return value;
    }
    this.#host.counters.count(VcpuStatistic.msrAccesses);
    return readModelSpecificRegister(this.#host.msrHost, cpu, index);
  }

  /** WRMSR: x2AVIC's hardware path (src/hw/avic/avic-apic-access.ts), or an MSR exit. */
  writeMsr(cpu: GuestCpu, index: number, low: number, high: number): void {
    if (index === X2apicMsr.InterruptCommand) writePoint(ApicRegister.InterruptCommandLow);
    else if (index === X2apicMsr.EndOfInterrupt) writePoint(ApicRegister.EndOfInterrupt);
    if (this.#x2avicPassesThrough(index)) {
      if (x2avicMsrWriteFaults(cpu, index, low, high)) return;
      const offset = xapicOffsetForX2apicMsr(index);
      const vmcb = this.#host.vmcb;
      if (x2avicMsrWrite(vmcb, cpu, offset, low | 0, high | 0) === ApicAccessKind.InterruptCommand) {
        accountAvicIpi(vmcb.ipi, low, high, this.#host.counters, this.#host.trace);
      }
      if (vmcb.exit.exitCode !== 0) this.#host.exitFromGuestInstruction(offset, low | 0, high | 0);
      return;
    }
    this.#host.counters.count(VcpuStatistic.msrAccesses);
    if (!checkModelSpecificRegisterWrite(cpu, index, low, high)) return;
    this.#host.vmcb.exit.set(SvmExitCode.Msr, 1, 0);
    this.#host.exitFromGuestInstruction(index, low, high);
  }
}

// The end of one guest slice (vcpu_enter_guest's return from the interpreter): what the retired
// instructions mean for the APIC timer's speed estimate, the vCPU's statistics and the host clock.

import { hostThread } from '../../host/host-thread.js';
import { VirtualTimeCost } from '../../host/virtual-time-costs.js';
import type { VcpuCounting } from '../control/vcpu-counters.js';
import { VcpuStatistic } from '../control/vm-layout.js';

/**
 * `retired` instructions ran: the timer learns the speed, the statistic counts them, and a
 * deterministic run's clock moves by their modelled cost (the parallel clock moved by itself).
 */
export function endGuestSlice(retired: number, timer: { endSlice(instructions: number): void }, counters: VcpuCounting): void {
  timer.endSlice(retired);
  counters.count(VcpuStatistic.instructions, retired);
  hostThread().advance(retired * VirtualTimeCost.guestInstructionNs);
}

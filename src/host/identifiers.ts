// Branded identifiers for the host side. An index is a position in an array the emulator owns; an ID
// is a name the guest or the hardware uses. They are different types so that one is never passed
// where the other is meant (KVM's GATag comment makes the same distinction between vcpu_idx and
// vcpu_id).

declare const vcpuIndexBrand: unique symbol;
declare const hostThreadSlotBrand: unique symbol;

/** Position of a vCPU in the VM's vCPU array: 0..vcpuCount-1, in creation order. */
export type VcpuIndex = number & { readonly [vcpuIndexBrand]: true };
/**
 * Slot of the host thread (worker) that runs a vCPU. It plays the role of the host physical APIC ID
 * in the physical APIC ID table: doorbells are rung per host thread, not per vCPU.
 */
export type HostThreadSlot = number & { readonly [hostThreadSlotBrand]: true };

export function vcpuIndex(value: number): VcpuIndex {
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`not a vCPU index: ${value}`);
  return value as VcpuIndex;
}

export function hostThreadSlot(value: number): HostThreadSlot {
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`not a host thread slot: ${value}`);
  return value as HostThreadSlot;
}

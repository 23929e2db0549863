// Loading a guest program into a VM before it runs: the bytes into guest RAM (through the RAM
// memslots, as a VMM writes guest memory), and one entry point per vCPU. A vCPU without one is an
// application processor that waits for INIT and a start-up IPI (vcpu-boot.ts).

import { GuestMemoryAccess } from '../../guest/guest-memory-access.js';
import type { ProgramImage } from '../../guest/assembler-program-image.js';
import type { Memslot } from '../../memory/memslot.js';
import { VmConfigError } from './vm-config.js';

/**
 * A program given piece by piece (kept for callers that assemble elsewhere); Vm.loadProgram also takes
 * a ProgramImage from assemble() as it is, which is the usual way.
 */
export interface ProgramLoad {
  readonly origin: number;
  readonly bytes: Uint8Array;
  /** Entry point for every vCPU without its own. */
  readonly entryPoint?: number;
  /**
   * Per-vCPU entry points (vCPU index -> address). A vCPU with neither its own entry nor the default
   * one is an application processor: it waits for INIT and a start-up IPI, as on a PC.
   */
  readonly perVcpuEntryPoints?: ReadonlyMap<number, number>;
}

/** Entry point of a vCPU without one: it starts in wait-for-SIPI. */
export const WAIT_FOR_START_UP = -1;

export interface ProgramPlacement {
  /** Guest RAM size; the vCPU stacks occupy its top. */
  readonly memoryBytes: number;
  readonly maxVcpus: number;
  readonly stackBytesPerVcpu: number;
}

/**
 * Copies the program into guest RAM through `ramSlots` and returns each vCPU's entry point
 * (WAIT_FOR_START_UP for none). Throws VmConfigError when it overlaps the stacks, does not fit, or
 * names no entry point at all.
 */
export function loadProgramIntoRam(
  ram: SharedArrayBuffer,
  ramSlots: readonly Memslot[],
  placement: ProgramPlacement,
  image: ProgramImage | ProgramLoad,
): number[] {
  const program: ProgramLoad =
    'entryPoints' in image
      ? { origin: image.origin, bytes: image.bytes, entryPoint: image.entryPoints.default, perVcpuEntryPoints: image.entryPoints.perVcpu }
      : image;
  const access = new GuestMemoryAccess(ram);
  access.setWindows(ramSlots);
  const end = program.origin + program.bytes.length;
  const stackFloor = placement.memoryBytes - placement.maxVcpus * placement.stackBytesPerVcpu;
  if (end > stackFloor) {
    throw new VmConfigError(
      `the program (0x${program.origin.toString(16)}-0x${end.toString(16)}) overlaps the vCPU stacks, which start at 0x${stackFloor.toString(16)}; give the VM more memory`,
    );
  }
  if (!access.load(program.origin, program.bytes))
    throw new VmConfigError(`the program at 0x${program.origin.toString(16)} does not fit in guest RAM`);
  const entries = Array.from({ length: placement.maxVcpus }, (_, vcpu) => program.perVcpuEntryPoints?.get(vcpu) ?? program.entryPoint);
  if (entries.every((entry) => entry === undefined)) {
    throw new VmConfigError(
      'no vCPU has an entry point: add ".entry <label>" (all vCPUs start there) or ".entry <label>, 0" (only the bootstrap vCPU starts; the others wait for INIT and start-up IPIs)',
    );
  }
  // A vCPU with an entry point starts there at once (stress programs start every vCPU this way);
  // one without is an application processor in wait-for-SIPI until the guest brings it up.
  return entries.map((entry) => entry ?? WAIT_FOR_START_UP);
}

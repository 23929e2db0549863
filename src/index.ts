// The public surface of avic-smp. No logic here.
export { Vm, VmConfigError, type VmConfig, type RunOptions, type StartOptions, type ProgramLoad } from './kvm/vm/vm.js';
export type { VmReport, VmExit, VcpuReport, IpiBalance } from './kvm/report/vm-report.js';
export { InvalidMemslotIdError, PrivateMemslotIdError } from './memory/memslot.js';
export { BackingPagePolicyName } from './kvm/control/backing-page-policy.js';
export {
  assemble,
  AssemblerDefineError,
  AssemblerInputError,
  formatDiagnostic,
  type AssemblerOptions,
  type AssemblyResult,
  type AssemblyDiagnostic,
  type ProgramImage,
  type SourceLocation,
  type EntryPoints,
  type IncludeReader,
} from './guest/assembler.js';
export type { GuestFault, FaultSource } from './guest/guest-fault.js';
export { Hypercall } from './guest/hypercall.js';
export { runProgram, type RunProgramOptions } from './run-program.js';
export type { LatencySummary } from './kvm/report/latency-histogram.js';
export type { ChromeTrace } from './kvm/report/chrome-trace.js';
export type { FtraceText } from './kvm/report/ftrace-text.js';
export { runScenario, ScenarioParameterError } from './scenarios/run-scenario.js';
export { SCENARIOS } from './scenarios/catalogue.js';
export type { ScenarioDefinition, ScenarioParameters, ScenarioResult, ScenarioCheck } from './scenarios/scenario.js';

// The AVIC bug zoo (docs/bug-zoo.md): real delivery and wake-up bugs of KVM's AVIC support, each a
// switch on the code path it lived in, and each with its fixed twin, which is the normal code (or,
// for erratum #1235, KVM's work-around). VmConfig.inject names one ('NAME' or 'NAME-fixed'); main
// stores the bug's flag in VmHeader.injectedBugs at VM creation (0 for every twin) and each vCPU's
// parts read that word once, when they are built, so the switch costs one branch where it sits.
//
// Each bug alters one ordering or one decision between two accesses, so a scheduling point between
// those accesses (src/host/host-thread.ts) can expose it; the fixed twin, driven the same way, keeps
// the IPI and the wake-up (test/kvm/injected-bugs/).

/** Flag bits of VmHeader.injectedBugs: which switch is on. erratum #1235 needs none (its own model). */
export const InjectedBugFlag = {
  None: 0,
  /** avic_incomplete_ipi_interception ignores cause 2 (src/kvm/svm/avic-incomplete-ipi.ts). */
  InvalidTargetIgnored: 1 << 0,
  /** kvm_vcpu_block commits Blocked without re-checking for events after IsRunning = 0 (src/kvm/vcpu/vcpu-sleep.ts). */
  BlockingNoRecheck: 1 << 1,
  /** The sending hardware reads IsRunning before it sets the IRR bit (src/hw/avic/avic-ipi-target.ts). */
  IsRunningBeforeIrr: 1 << 2,
  /** avic_kick_target_vcpus_fast takes the x2APIC logical mask from the cluster half (src/kvm/svm/avic-incomplete-ipi.ts). */
  X2apicLogicalKick: 1 << 3,
  /** A cause-1 exit re-sends the whole IPI in software instead of only waking the targets (src/kvm/svm/avic-incomplete-ipi.ts). */
  NotRunningReemulated: 1 << 4,
} as const;
export type InjectedBugFlag = (typeof InjectedBugFlag)[keyof typeof InjectedBugFlag];

/** The upstream change that fixed (or worked around) a bug. */
export interface UpstreamFix {
  /** The commit subject, as in `git log --oneline`, with its abbreviated hash when known. */
  readonly commit: string;
  /** The first Linux release with the fix. */
  readonly kernel: string;
  /** The KVM function the fix changed. */
  readonly function: string;
}

export interface InjectedBug {
  readonly name: string;
  /** What goes wrong, in one line. */
  readonly summary: string;
  readonly fix: UpstreamFix;
  /** What the switch alters in the model, and the two accesses a scheduling point must fall between. */
  readonly alters: string;
  /** What `NAME-fixed` runs. */
  readonly fixedTwin: string;
  /** Its flag in VmHeader.injectedBugs (None: the bug is a VM setting, see VmConfig.inject). */
  readonly flag: InjectedBugFlag;
}

export const INJECTED_BUGS: readonly InjectedBug[] = [
  {
    name: 'erratum-1235',
    summary: "the sender's AVIC acts on a stale IsRunning = 1: doorbell to a blocked target, no exit, no wake-up",
    fix: {
      commit: '8de4a1c8164e KVM: SVM: Disable (x2)AVIC IPI virtualization if CPU has erratum #1235',
      kernel: '6.17',
      function: 'avic_hardware_setup (enable_ipiv off on Family 17h)',
    },
    alters: 'the erratum model on (--erratum-1235): between the owner clearing IsRunning and the sender reading it',
    fixedTwin: 'the erratum model on with IPI virtualization off (--no-ipiv): IsRunning never set, every IPI exits',
    flag: InjectedBugFlag.None,
  },
  {
    name: 'invalid-target-ignored',
    summary: 'a logical IPI whose mask mixes valid and invalid targets is dropped whole (cause 2 ignored)',
    fix: {
      commit: '5aede752a839 KVM: SVM: Process ICR on AVIC IPI delivery failure due to invalid target',
      kernel: '6.3',
      function: 'avic_incomplete_ipi_interception (AVIC_IPI_FAILURE_INVALID_TARGET)',
    },
    alters: 'cause 2 does nothing instead of emulating the ICR; the hardware set no IRR bit (it validates first)',
    fixedTwin: 'cause 2 emulates the whole IPI in software (kvm_apic_send_ipi)',
    flag: InjectedBugFlag.InvalidTargetIgnored,
  },
  {
    name: 'blocking-no-recheck',
    summary: 'the blocking vCPU sleeps without re-checking IRR after clearing IsRunning: a doorbell rung just before is lost',
    fix: {
      commit:
        'd1ed092f77ef KVM: x86: Introducing kvm_x86_ops VCPU blocking/unblocking hooks (the hook clears IsRunning before kvm_vcpu_check_block; an ordering rule, never shipped broken)',
      kernel: '4.7',
      function: 'kvm_vcpu_block / avic_vcpu_blocking',
    },
    alters:
      "no kvm_vcpu_check_block after avic_vcpu_blocking: a sender's IRR + IsRunning = 1 read between the halt's event check and the clear",
    fixedTwin: 'IsRunning = 0, then the re-check for events, then commit Blocked',
    flag: InjectedBugFlag.BlockingNoRecheck,
  },
  {
    name: 'isrunning-before-irr',
    summary: 'the sender reads IsRunning before it sets IRR: the target blocks in between and no one wakes it',
    fix: {
      commit:
        '66fa226c131f KVM: SVM: fix race between interrupt delivery and AVIC inhibition (states the rule: vIRR, smp_mb__after_atomic, then the running check; an ordering rule since AVIC support in 4.7, never shipped broken)',
      kernel: '5.17',
      function: 'svm_deliver_avic_intr / svm_deliver_interrupt',
    },
    alters: "the sending hardware's IsRunning read moved before its IRR Atomics.or (the target's clear, re-check and block fall between)",
    fixedTwin: 'IRR first, then IsRunning (the pair of the blocker\'s "clear IsRunning, then re-check IRR")',
    flag: InjectedBugFlag.IsRunningBeforeIrr,
  },
  {
    name: 'x2avic-logical-kick',
    summary: 'a cause-1 exit of an x2APIC logical IPI wakes nobody (cluster 0) or the wrong vCPU: the mask was read from the cluster half',
    fix: {
      commit: 'da3fb46d226a KVM: SVM: Fix x2APIC Logical ID calculation for avic_kick_target_vcpus_fast',
      kernel: '6.3',
      function: 'avic_kick_target_vcpus_fast',
    },
    alters:
      'the wake-ups of a cause-1 exit with an x2APIC logical destination: bitmap = dest & 0xFFFF0000 (the hardware has set the IRR bits)',
    fixedTwin: 'bitmap = dest & 0xFFFF: every not-running target kicked',
    flag: InjectedBugFlag.X2apicLogicalKick,
  },
  {
    name: 'not-running-reemulated',
    summary: 'a cause-1 exit re-sends the whole IPI in software: a target that took the vector meanwhile takes it twice',
    fix: {
      commit: '4a58038b9e42 Revert "svm: Fix AVIC incomplete IPI emulation"',
      kernel: '5.2',
      function: 'avic_incomplete_ipi_interception (AVIC_IPI_FAILURE_TARGET_NOT_RUNNING)',
    },
    alters:
      "cause 1 writes the ICR again (kvm_apic_send_ipi) instead of only waking: between the hardware's IRR set and the exit handling the target takes the vector",
    fixedTwin: 'cause 1 only wakes the targets (avic_kick_target_vcpus): their IRR bits are already set',
    flag: InjectedBugFlag.NotRunningReemulated,
  },
];

/** The suffix of a fixed twin's name. */
export const FIXED_SUFFIX = '-fixed';

/** Every name VmConfig.inject takes but 'none': each bug, then its twin. */
export function injectedBugNames(): string[] {
  return INJECTED_BUGS.flatMap((bug) => [bug.name, `${bug.name}${FIXED_SUFFIX}`]);
}

/** The bug `name` names and whether it is the fixed twin; undefined for an unknown name. */
export function findInjectedBug(name: string): { readonly bug: InjectedBug; readonly fixed: boolean } | undefined {
  const fixed = name.endsWith(FIXED_SUFFIX);
  const base = fixed ? name.slice(0, -FIXED_SUFFIX.length) : name;
  const bug = INJECTED_BUGS.find((entry) => entry.name === base);
  return bug === undefined ? undefined : { bug, fixed };
}

/** VmHeader.injectedBugs for VmConfig.inject `name` ('none', a bug or its twin): a twin's is 0. */
export function injectedBugFlags(name: string): number {
  const found = findInjectedBug(name);
  return found === undefined || found.fixed ? InjectedBugFlag.None : found.bug.flag;
}

/** The flags as a vCPU's part reads them, once (main stored them before any worker started). */
export function readInjectedBugs(views: { readonly control: Int32Array; headerIndex(field: 'injectedBugs'): number }): number {
  return Atomics.load(views.control, views.headerIndex('injectedBugs'));
}

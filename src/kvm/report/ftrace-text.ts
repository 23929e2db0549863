// ftrace text: the lines `cat /sys/kernel/tracing/trace` prints on a KVM host for the same run, so
// that a KVM developer can diff a model run against a real host's trace, and Perfetto (its
// systrace/ftrace text importer) opens it: one time-ordered stream over every vCPU, each line in
// the kernel's context format (trace_print_context: "%16s-%-7d [%03d] <5 flag columns> %5lu.%06lu: ")
// with the host CPU the vCPU was loaded on as the CPU column, then the event's name and its
// TP_printk text (ftrace-events.ts).
//
// What is shown is what a host trace shows: KVM's tracepoints (kvm_entry, kvm_exit, the AVIC ones,
// kvm_vcpu_wakeup) and the scheduler's (sched_switch per host CPU, sched_waking). The hardware's own
// work (an accelerated IPI, its doorbell to a running target, a delivery) has no tracepoint on a
// host either, so it is not here; the Chrome format shows it. The flag columns (irqs-off,
// need-resched, hardirq/softirq, preempt-depth, migrate-disable) are not modelled: always dots.

import {
  idleTask,
  kvmAvicDoorbell,
  kvmAvicIncompleteIpi,
  kvmAvicKickVcpuSlowpath,
  kvmAvicUnacceleratedAccess,
  kvmEntry,
  kvmExit,
  kvmVcpuWakeup,
  schedSwitch,
  schedWaking,
  vcpuTask,
  type FtraceTask,
} from './ftrace-events.js';
import { TaskSwitchState, TraceEventKind, TraceEvents } from './trace-recorder.js';

/** One vCPU's recorded events, as its worker handed them back. */
export interface RecordedTrace {
  readonly vcpu: number;
  readonly events: Float64Array;
  /** Events its buffer could not hold. */
  readonly dropped: number;
}

export interface FtraceText {
  /** The header, then one line per event. */
  readonly lines: string[];
  /** Event lines (after the header). */
  readonly entries: number;
  /** Events the vCPUs could not record (their buffers were full). */
  readonly dropped: number;
}

/**
 * A put followed on the same host CPU by another vCPU's load within this many nanoseconds is one
 * context switch from the one task to the other (the host CPU went straight from one vCPU to the
 * next, as KVM's kvm_sched_out/kvm_sched_in pair inside one schedule()); a longer gap shows the CPU
 * idle in between.
 */
export const SCHED_SWITCH_MERGE_NS = 20_000;

const PREVIOUS_STATE: Readonly<Record<number, string>> = {
  [TaskSwitchState.Runnable]: 'R',
  [TaskSwitchState.Preempted]: 'R+',
  [TaskSwitchState.Sleeping]: 'S',
};

/** The nop tracer's header with the irq-info columns (print_func_help_header_irq, no tgid). */
function header(entries: number, written: number, cpus: number): string[] {
  const indent = `#${' '.repeat(30)}`;
  return [
    '# tracer: nop',
    '#',
    `# entries-in-buffer/entries-written: ${entries}/${written}   #P:${cpus}`,
    '#',
    `${indent}  _-----=> irqs-off/BH-disabled`,
    `${indent} / _----=> need-resched`,
    `${indent}| / _---=> hardirq/softirq`,
    `${indent}|| / _--=> preempt-depth`,
    `${indent}||| / _-=> migrate-disable`,
    `${indent}|||| /     delay`,
    '#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION',
    '#              | |         |   |||||     |         |',
  ];
}

export const FTRACE_HEADER_LINES = header(0, 0, 0).length;

/** The task column: "%16s-%-7d ". */
function taskColumn(task: FtraceTask, comm = task.comm): string {
  return `${comm.padStart(16)}-${String(task.pid).padEnd(7)} `;
}

/** " %5lu.%06lu" of a time in ns, rounded to microseconds as ns2usecs does. */
function timestamp(ns: number): string {
  const microseconds = Math.floor((Math.max(0, ns) + 500) / 1000);
  const seconds = Math.floor(microseconds / 1e6);
  return `${String(seconds).padStart(5)}.${String(microseconds - seconds * 1e6).padStart(6, '0')}`;
}

/** Every recorded event, as (vCPU list, event) pairs in one array, ordered by time, then vCPU, then record order. */
interface MergedEvents {
  readonly lists: readonly TraceEvents[];
  /** Global id -> list; list i's events have consecutive ids, in record order. */
  readonly listOf: Uint32Array;
  readonly eventOf: Uint32Array;
  readonly order: Uint32Array;
  readonly cpus: number;
}

function mergeByTime(perVcpu: readonly RecordedTrace[]): MergedEvents {
  const lists = perVcpu.map(({ events }) => new TraceEvents(events));
  const total = lists.reduce((sum, list) => sum + list.count, 0);
  const listOf = new Uint32Array(total);
  const eventOf = new Uint32Array(total);
  const times = new Float64Array(total);
  let cpus = 1;
  let id = 0;
  lists.forEach((list, index) => {
    for (let event = 0; event < list.count; event++, id++) {
      listOf[id] = index;
      eventOf[id] = event;
      times[id] = list.time(event);
      cpus = Math.max(cpus, list.cpu(event) + 1);
    }
  });
  // Ids are assigned list by list in record order, so the id breaks time ties deterministically.
  const order = Uint32Array.from({ length: total }, (_, index) => index).sort((x, y) => times[x]! - times[y]! || x - y);
  return { lists, listOf, eventOf, order, cpus };
}

/**
 * Which puts and loads make one sched_switch (SCHED_SWITCH_MERGE_NS): for a load's id, the id of the
 * put it takes over from, or -1; and for a put's id, 1 if a load took it over. A put task that has
 * any scheduling event of its own before the load is not merged, so no task is ever shown on two
 * CPUs at once.
 */
function pairSwitches(merged: MergedEvents, vcpuOfList: readonly number[]): { takesOverFrom: Int32Array; takenOver: Uint8Array } {
  const { lists, listOf, eventOf, order } = merged;
  const takesOverFrom = new Int32Array(order.length).fill(-1);
  const takenOver = new Uint8Array(order.length);
  const pendingPut = new Map<number, { readonly id: number; readonly vcpu: number; readonly time: number }>();
  const putCpuOf = new Map<number, number>();
  for (const id of order) {
    const list = lists[listOf[id]!]!;
    const event = eventOf[id]!;
    const kind = list.kind(event);
    if (kind !== TraceEventKind.VcpuLoad && kind !== TraceEventKind.VcpuPut) continue;
    const vcpu = vcpuOfList[listOf[id]!]!;
    const cpu = list.cpu(event);
    const time = list.time(event);
    const putCpu = putCpuOf.get(vcpu);
    if (putCpu !== undefined && pendingPut.get(putCpu)?.vcpu === vcpu) pendingPut.delete(putCpu);
    putCpuOf.delete(vcpu);
    if (kind === TraceEventKind.VcpuPut) {
      pendingPut.set(cpu, { id, vcpu, time });
      putCpuOf.set(vcpu, cpu);
      continue;
    }
    const put = pendingPut.get(cpu);
    if (put !== undefined && time - put.time <= SCHED_SWITCH_MERGE_NS) {
      takesOverFrom[id] = put.id;
      takenOver[put.id] = 1;
    }
    pendingPut.delete(cpu);
  }
  return { takesOverFrom, takenOver };
}

/** The ftrace text of a run: the header, then every shown event in time order. */
export function buildFtraceText(perVcpu: readonly RecordedTrace[]): FtraceText {
  const merged = mergeByTime(perVcpu);
  const { lists, listOf, eventOf, order } = merged;
  const vcpuOfList = perVcpu.map(({ vcpu }) => vcpu);
  const { takesOverFrom, takenOver } = pairSwitches(merged, vcpuOfList);
  const tasks = vcpuOfList.map(vcpuTask);
  const columns = tasks.map((task) => taskColumn(task));
  const idleColumn = taskColumn(idleTask(0), '<idle>');
  // kvm_vcpu_halt's start time, and whether the task was put since (kvm_vcpu_block scheduled out).
  const haltBegin = new Float64Array(lists.length).fill(Number.NaN);
  const haltWaited = new Uint8Array(lists.length);
  const body: string[] = [];

  for (const id of order) {
    const index = listOf[id]!;
    const list = lists[index]!;
    const event = eventOf[id]!;
    const vcpu = vcpuOfList[index]!;
    const cpu = list.cpu(event);
    const time = list.time(event);
    const field = (n: number): number => list.field(event, n);
    const line = (column: string, name: string, text: string): void => {
      body.push(`${column}[${String(cpu).padStart(3, '0')}] ..... ${timestamp(time)}: ${name}: ${text}`);
    };
    switch (list.kind(event)) {
      case TraceEventKind.VcpuLoad: {
        const put = takesOverFrom[id]!;
        if (put < 0) {
          line(idleColumn, 'sched_switch', schedSwitch(idleTask(cpu), 'R', tasks[index]!));
          break;
        }
        const previous = listOf[put]!;
        line(
          columns[previous]!,
          'sched_switch',
          schedSwitch(tasks[previous]!, PREVIOUS_STATE[lists[previous]!.field(eventOf[put]!, 0)] ?? 'R', tasks[index]!),
        );
        break;
      }
      case TraceEventKind.VcpuPut:
        haltWaited[index] = 1;
        if (takenOver[id] === 0)
          line(columns[index]!, 'sched_switch', schedSwitch(tasks[index]!, PREVIOUS_STATE[field(0)] ?? 'R', idleTask(cpu)));
        break;
      case TraceEventKind.HaltBegin:
        haltBegin[index] = time;
        haltWaited[index] = 0;
        break;
      case TraceEventKind.HaltEnd:
        if (!Number.isNaN(haltBegin[index]!))
          line(columns[index]!, 'kvm_vcpu_wakeup', kvmVcpuWakeup(time - haltBegin[index]!, haltWaited[index] === 1));
        haltBegin[index] = Number.NaN;
        break;
      case TraceEventKind.GuestEntry:
        line(columns[index]!, 'kvm_entry', kvmEntry(vcpu, field(0)));
        break;
      case TraceEventKind.VmExit:
        line(columns[index]!, 'kvm_exit', kvmExit(vcpu, field(0), field(1), field(2), field(3), field(4), field(5)));
        break;
      case TraceEventKind.AvicIncompleteIpi:
        line(columns[index]!, 'kvm_avic_incomplete_ipi', kvmAvicIncompleteIpi(vcpu, field(0), field(1), field(2), field(3)));
        break;
      case TraceEventKind.UnacceleratedAccessExit:
        // 2: an APIC access emulated as MMIO while AVIC is inhibited (an npf exit, no AVIC tracepoint).
        if (field(1) !== 2)
          line(
            columns[index]!,
            'kvm_avic_unaccelerated_access',
            kvmAvicUnacceleratedAccess(vcpu, field(0), field(1) === 1, field(2) === 1, field(3)),
          );
        break;
      case TraceEventKind.AvicKickSlowPath:
        line(columns[index]!, 'kvm_avic_kick_vcpu_slowpath', kvmAvicKickVcpuSlowpath(field(0), field(1), field(2)));
        break;
      case TraceEventKind.AvicDoorbell:
        line(columns[index]!, 'kvm_avic_doorbell', kvmAvicDoorbell(field(0), field(1)));
        break;
      case TraceEventKind.VcpuWaking:
        line(columns[index]!, 'sched_waking', schedWaking(vcpuTask(field(0)), field(1)));
        break;
      default:
        // IpiSent, InterruptDelivered, WakeUp: the hardware's work, which no host tracepoint shows.
        break;
    }
  }
  const dropped = perVcpu.reduce((sum, { dropped: count }) => sum + count, 0);
  return { lines: header(body.length, body.length + dropped, merged.cpus).concat(body), entries: body.length, dropped };
}

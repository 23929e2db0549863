// Chrome trace-event JSON (the format Perfetto and chrome://tracing load): one process for the VM,
// one thread track per vCPU, instant events for IPIs, deliveries, exits and wake-ups, and duration
// (B/E) events for halts. Timestamps are microseconds on the VM clock.

import { AvicIncompleteIpiCause } from '../../hw/avic/avic-exit.js';
import { TraceEventKind, TraceEvents } from './trace-recorder.js';

export interface ChromeTraceEvent {
  readonly name: string;
  readonly ph: 'i' | 'B' | 'E' | 'M';
  readonly ts: number;
  readonly pid: number;
  readonly tid: number;
  readonly s?: 't';
  readonly cat?: string;
  readonly args?: Readonly<Record<string, unknown>>;
}

export interface ChromeTrace {
  readonly traceEvents: ChromeTraceEvent[];
  readonly displayTimeUnit: 'ns';
  readonly otherData: Readonly<Record<string, unknown>>;
}

const CAUSE_NAMES: Readonly<Record<number, string>> = {
  [AvicIncompleteIpiCause.InvalidInterruptType]: 'incomplete IPI: invalid interrupt type (0)',
  [AvicIncompleteIpiCause.TargetNotRunning]: 'incomplete IPI: target not running (1)',
  [AvicIncompleteIpiCause.InvalidTarget]: 'incomplete IPI: invalid target (2)',
  [AvicIncompleteIpiCause.InvalidBackingPage]: 'incomplete IPI: invalid backing page (3)',
  [AvicIncompleteIpiCause.InvalidIpiVector]: 'incomplete IPI: vector below 16 (4)',
};

const PROCESS_ID = 1;

/** The Chrome form of one recorded event; undefined for the kinds only the ftrace text shows (entries, exits, scheduling). */
function convert(vcpu: number, kind: number, ts: number, a: number, b: number): ChromeTraceEvent | undefined {
  const base = { ts, pid: PROCESS_ID, tid: vcpu };
  switch (kind) {
    case TraceEventKind.IpiSent: {
      const cause = (b >>> 8) - 1;
      return {
        ...base,
        ph: 'i',
        s: 't',
        cat: 'ipi',
        name: cause < 0 ? 'IPI send (doorbell path)' : 'IPI send + exit',
        args: {
          vector: a & 0xff,
          destination: b & 0xff,
          icrLow: `0x${(a >>> 0).toString(16)}`,
          ...(cause < 0 ? {} : { exit: CAUSE_NAMES[cause] ?? `cause ${cause}` }),
        },
      };
    }
    case TraceEventKind.InterruptDelivered:
      return { ...base, ph: 'i', s: 't', cat: 'interrupt', name: `interrupt 0x${a.toString(16)}`, args: { vector: a } };
    case TraceEventKind.UnacceleratedAccessExit:
      return {
        ...base,
        ph: 'i',
        s: 't',
        cat: 'exit',
        name: b === 2 ? 'APIC MMIO emulated (AVIC inhibited)' : `AVIC_NOACCEL ${b === 1 ? 'trap' : 'fault'}`,
        args: { offset: `0x${a.toString(16)}` },
      };
    case TraceEventKind.HaltBegin:
      return { ...base, ph: 'B', cat: 'halt', name: 'HLT' };
    case TraceEventKind.HaltEnd:
      return { ...base, ph: 'E', cat: 'halt', name: 'HLT', args: { slept: a === 1 } };
    case TraceEventKind.WakeUp:
      return { ...base, ph: 'i', s: 't', cat: 'wake', name: 'wake-up' };
    default:
      return undefined;
  }
}

export function buildChromeTrace(perVcpu: readonly { vcpu: number; events: Float64Array; dropped: number }[]): ChromeTrace {
  const traceEvents: ChromeTraceEvent[] = [
    { name: 'process_name', ph: 'M', ts: 0, pid: PROCESS_ID, tid: 0, args: { name: 'avic-smp VM' } },
  ];
  for (const { vcpu, events } of perVcpu) {
    traceEvents.push({ name: 'thread_name', ph: 'M', ts: 0, pid: PROCESS_ID, tid: vcpu, args: { name: `vCPU ${vcpu}` } });
    const recorded = new TraceEvents(events);
    for (let index = 0; index < recorded.count; index++) {
      const event = convert(vcpu, recorded.kind(index), recorded.time(index) / 1000, recorded.field(index, 0), recorded.field(index, 1));
      if (event !== undefined) traceEvents.push(event);
    }
  }
  return {
    traceEvents,
    displayTimeUnit: 'ns',
    otherData: { droppedEvents: Object.fromEntries(perVcpu.map(({ vcpu, dropped }) => [`vCPU ${vcpu}`, dropped])) },
  };
}

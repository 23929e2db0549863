// --trace FILE: the VM's trace, in the format --trace-format names: Chrome trace-event JSON
// (Perfetto, chrome://tracing), written as a stream of one event per line, or ftrace text (the lines
// a KVM host's tracefs prints; Perfetto opens it too). A storm records up to half a million events
// per vCPU; one JSON.stringify or join of the whole trace would build a string of hundreds of
// megabytes, close to V8's string limit, so both are written in chunks.

import { closeSync, openSync, writeSync } from 'node:fs';
import type { ChromeTrace } from '../kvm/report/chrome-trace.js';
import type { FtraceText } from '../kvm/report/ftrace-text.js';
import { outputFileError } from './output-file.js';

/** --trace-format: what --trace writes. */
export const TraceFormat = { Chrome: 'chrome', Ftrace: 'ftrace' } as const;
export type TraceFormat = (typeof TraceFormat)[keyof typeof TraceFormat];
export const TRACE_FORMATS: ReadonlyMap<string, TraceFormat> = new Map(Object.values(TraceFormat).map((format) => [format, format]));

const FLUSH_CHARACTERS = 1 << 20;

export interface TraceFileSummary {
  readonly path: string;
  readonly events: number;
  /** Events the vCPUs could not record (their per-vCPU buffer was full). */
  readonly droppedEvents: number;
}

/** Writes the trace; an I/O failure (a full disk, a directory) throws a one-line BadInput naming --trace. */
export function writeTraceFile(path: string, trace: ChromeTrace, metadata: Readonly<Record<string, unknown>>): TraceFileSummary {
  const dropped = trace.otherData['droppedEvents'];
  const droppedEvents =
    typeof dropped === 'object' && dropped !== null
      ? Object.values(dropped).reduce<number>((total, count) => total + (typeof count === 'number' ? count : 0), 0)
      : 0;
  try {
    writeTraceEvents(path, trace, metadata);
  } catch (error) {
    throw outputFileError('--trace', path, error);
  }
  return { path, events: trace.traceEvents.length, droppedEvents };
}

/** Writes ftrace text, header and one line per event; an I/O failure throws a one-line BadInput naming --trace. */
export function writeFtraceFile(path: string, text: FtraceText): TraceFileSummary {
  try {
    const descriptor = openSync(path, 'w');
    try {
      let chunk = '';
      for (const line of text.lines) {
        chunk += `${line}\n`;
        if (chunk.length >= FLUSH_CHARACTERS) {
          writeSync(descriptor, chunk);
          chunk = '';
        }
      }
      writeSync(descriptor, chunk);
    } finally {
      closeSync(descriptor);
    }
  } catch (error) {
    throw outputFileError('--trace', path, error);
  }
  return { path, events: text.entries, droppedEvents: text.dropped };
}

function writeTraceEvents(path: string, trace: ChromeTrace, metadata: Readonly<Record<string, unknown>>): void {
  const descriptor = openSync(path, 'w');
  try {
    let chunk = '{"traceEvents":[\n';
    trace.traceEvents.forEach((event, index) => {
      chunk += (index === 0 ? '' : ',\n') + JSON.stringify(event);
      if (chunk.length >= FLUSH_CHARACTERS) {
        writeSync(descriptor, chunk);
        chunk = '';
      }
    });
    chunk += `\n],\n"displayTimeUnit":${JSON.stringify(trace.displayTimeUnit)},\n"otherData":${JSON.stringify({ ...metadata, ...trace.otherData })}}\n`;
    writeSync(descriptor, chunk);
  } finally {
    closeSync(descriptor);
  }
}

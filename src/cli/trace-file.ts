// --trace FILE: the VM's Chrome trace-event JSON (Perfetto, chrome://tracing), written as a stream of
// one event per line. A storm records up to half a million events per vCPU; one JSON.stringify of
// the whole trace would build a string of hundreds of megabytes, close to V8's string limit.

import { closeSync, openSync, writeSync } from 'node:fs';
import type { ChromeTrace } from '../kvm/report/chrome-trace.js';
import { outputFileError } from './output-file.js';

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
  const droppedEvents = typeof dropped === 'object' && dropped !== null
    ? Object.values(dropped).reduce<number>((total, count) => total + (typeof count === 'number' ? count : 0), 0)
    : 0;
  try {
    writeTraceEvents(path, trace, metadata);
  } catch (error) {
    throw outputFileError('--trace', path, error);
  }
  return { path, events: trace.traceEvents.length, droppedEvents };
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

// Every conformance case, in the order `avic-smp conformance` runs them (docs/conformance.md).

import {
  logicalCluster,
  logicalFlat,
  multipleNmi,
  nmiAfterSti,
  pendingNmi,
  physicalBroadcast,
  selfIpiX2apic,
  selfIpiXapic,
} from './apic-cases.js';
import type { ConformanceCase } from './conformance-case.js';
import { aliasedId, idRelocation, recalcApicMap, smpBoot, timerOneShot, x2apicState, xapicState } from './selftest-cases.js';

export const CONFORMANCE_CASES: readonly ConformanceCase[] = [
  selfIpiXapic,
  selfIpiX2apic,
  physicalBroadcast,
  logicalFlat,
  logicalCluster,
  nmiAfterSti,
  multipleNmi,
  pendingNmi,
  timerOneShot,
  aliasedId,
  idRelocation,
  smpBoot,
  xapicState,
  x2apicState,
  recalcApicMap,
];

export const CONFORMANCE_CASES_BY_NAME: ReadonlyMap<string, ConformanceCase> = new Map(
  CONFORMANCE_CASES.map((entry) => [entry.name, entry]),
);

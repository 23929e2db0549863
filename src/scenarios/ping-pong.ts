// ping-pong, ping-pong-halt, ack and ack-halt: one IPI in flight between two vCPUs, the target
// running or halted, answering with an IPI or with a store (programs/ping-pong.s). QEMU's
// ipi_pingpong pong_spin, pong_halt, ack_spin and ack_halt (docs/scenarios.md).

import type { VmReport } from '../kvm/report/vm-report.js';
import { check, commonChecks, slot } from './scenario-checks.js';
import type { ScenarioCheck, ScenarioDefinition, ScenarioParameters } from './scenario.js';

const SENDER = 0;
const TARGET = 1;

const ABORT_CODES: ReadonlyMap<number, string> = new Map([
  [1, 'the program needs exactly 2 vCPUs'],
  [2, 'no reply to a ping within 4 s (a lost IPI or wake-up)'],
  [3, 'the target did not announce its HLT within 4 s'],
  [4, 'the target did not fall asleep within 4 s'],
  [5, 'the target did not finish within 4 s of the WAKE'],
]);

interface Variant {
  readonly name: string;
  readonly summary: string;
  readonly targetHalts: boolean;
  readonly replyIpi: boolean;
  readonly waitAsleep: boolean;
  readonly latency: string;
  readonly defaultIpis: number;
}

function variantChecks(report: VmReport, variant: Variant): ScenarioCheck[] {
  const rounds = slot(report, SENDER, 2);
  const pings = slot(report, TARGET, 3);
  const checks = [
    check('every ping handled', pings === rounds, `target handled ${pings} ping(s) for ${rounds} round(s)`),
    check('every reply seen', slot(report, SENDER, 3) === rounds, `sender saw ${slot(report, SENDER, 3)} repl(ies) for ${rounds} round(s)`),
    check(
      'the wake ends the run',
      slot(report, TARGET, 1) === pings + 1,
      `target handled ${slot(report, TARGET, 1)} interrupt(s): ${pings} ping(s) + 1 WAKE expected`,
    ),
  ];
  if (variant.replyIpi) {
    checks.push(
      check(
        'one pong per ping',
        slot(report, TARGET, 0) === rounds && slot(report, SENDER, 1) === rounds,
        `target sent ${slot(report, TARGET, 0)}, sender handled ${slot(report, SENDER, 1)}, for ${rounds} round(s)`,
      ),
    );
  }
  if (variant.targetHalts) {
    const halts = slot(report, TARGET, 4);
    const haltExits = report.perVcpu[TARGET]?.counters.haltExits ?? 0;
    // One HLT per round, plus one more unless the final WAKE arrived before the target got back to
    // HLT: it answers inside its handler, so the sender can send WAKE before the handler's iret.
    const perRound = halts === rounds || halts === rounds + 1;
    checks.push(
      check(
        'one HLT per round',
        perRound && haltExits === halts,
        `target executed ${halts} HLT(s) (${haltExits} halt exits) for ${rounds} round(s), plus one if the WAKE came after the last`,
      ),
    );
  }
  return checks;
}

function pingPongVariant(variant: Variant): ScenarioDefinition {
  const definition: ScenarioDefinition = {
    name: variant.name,
    summary: variant.summary,
    minimumVcpus: 2,
    maximumVcpus: 2,
    vcpuLimitReason: 'one sender and one target',
    program: 'ping-pong.s',
    defaultIpis: variant.defaultIpis,
    latency: variant.latency,
    abortCodes: ABORT_CODES,
    defines: () =>
      new Map([
        ['TARGET_HALTS', variant.targetHalts ? 1 : 0],
        ['REPLY_IPI', variant.replyIpi ? 1 : 0],
        ['WAIT_ASLEEP', variant.waitAsleep ? 1 : 0],
      ]),
    ...(variant.waitAsleep ? { vmConfig: () => ({ haltPolling: false }) } : {}),
    check: (report: VmReport, parameters: ScenarioParameters) => [
      ...commonChecks(report, definition, parameters),
      ...variantChecks(report, variant),
    ],
  };
  return definition;
}

export const pingPong = pingPongVariant({
  name: 'ping-pong',
  summary: 'two vCPUs bounce an IPI; the target spins with IF=1 and answers with an IPI',
  targetHalts: false,
  replyIpi: true,
  waitAsleep: false,
  latency: "round trip: the sender's ICR write to its pong handler having run",
  defaultIpis: 40_000,
});

export const pingPongHalt = pingPongVariant({
  name: 'ping-pong-halt',
  summary: 'two vCPUs bounce an IPI; the target waits in sti;hlt (halt-polling as configured) and answers with an IPI',
  targetHalts: true,
  replyIpi: true,
  waitAsleep: false,
  latency: "round trip to a target entering HLT: the sender's ICR write to its pong handler having run",
  defaultIpis: 20_000,
});

export const ack = pingPongVariant({
  name: 'ack',
  summary: 'one-way IPI to a target spinning with IF=1, whose handler acks in shared memory',
  targetHalts: false,
  replyIpi: false,
  waitAsleep: false,
  latency: "one way: the sender's ICR write to the sender seeing the target handler's ack",
  defaultIpis: 40_000,
});

export const ackHalt = pingPongVariant({
  name: 'ack-halt',
  summary: 'one-way IPI that must wake a target asleep in HLT (halt-polling off), acked in shared memory',
  targetHalts: true,
  replyIpi: false,
  waitAsleep: true,
  latency: "wake-up: the sender's ICR write to the sender seeing the ack of a target that was asleep",
  defaultIpis: 2_000,
});

// The checks can fail: fed a doctored copy of a real report, the check that guards the doctored fact
// (and only a failing result) comes back.
import { beforeAll, describe, expect, it } from 'vitest';
import type { VmReport } from '../../src/kvm/report/vm-report.js';
import { SCENARIOS } from '../../src/scenarios/catalogue.js';
import { runScenario } from '../../src/scenarios/run-scenario.js';
import type { ScenarioParameters } from '../../src/scenarios/scenario.js';
import { expectedShootdowns } from '../../src/scenarios/shootdown.js';
import { expectedLogicalReceipts, isSweptPattern, logicalDestinationNames, logicalId, LogicalMode } from '../../src/scenarios/logical.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends object ? Mutable<T[K]> : T[K] };

interface Baseline {
  readonly report: VmReport;
  readonly parameters: ScenarioParameters;
}

const baselines = new Map<string, Baseline>();
const RUNS: ReadonlyArray<readonly [string, ScenarioParameters]> = [
  ['ping-pong', { vcpus: 2, ipis: 100, seed: 1 }],
  ['halter-sender', { vcpus: 2, ipis: 100, seed: 1 }],
  ['storm', { vcpus: 2, ipis: 2000, seed: 1 }],
  ['shootdown', { vcpus: 3, ipis: 200, seed: 1 }],
  ['logical-flat', { vcpus: 3, ipis: 100, seed: 1 }],
];

beforeAll(async () => {
  for (const [name, parameters] of RUNS) {
    const { result } = await runScenario(SCENARIOS.get(name)!, parameters);
    if (!result.ok) throw new Error(`${name} baseline failed: ${JSON.stringify(result.checks.filter((check) => !check.ok))}`);
    baselines.set(name, { report: result.report, parameters: result.parameters });
  }
}, 60_000);

/** Runs `name`'s checks on a doctored copy of its baseline report; returns the failed check names. */
function failedChecks(name: string, doctor: (report: Mutable<VmReport>) => void): string[] {
  const baseline = baselines.get(name)!;
  const report = structuredClone(baseline.report) as Mutable<VmReport>;
  doctor(report);
  return SCENARIOS.get(name)!
    .check(report as VmReport, baseline.parameters)
    .filter((check) => !check.ok)
    .map((check) => check.name);
}

describe('scenario checks fail on doctored reports', () => {
  it('the baselines pass', () => {
    for (const name of baselines.keys())
      expect(
        failedChecks(name, () => undefined),
        name,
      ).toEqual([]);
  });

  it('a lost IPI', () => {
    for (const name of baselines.keys())
      expect(
        failedChecks(name, (report) => {
          report.ipis.lost = 1;
        }),
        name,
      ).toContain('no IPI lost');
  });

  it('a lost wake-up', () => {
    expect(
      failedChecks('halter-sender', (report) => {
        report.lostWakeups = 1;
      }),
    ).toEqual(['no lost wake-up']);
  });

  it('a vCPU that did not finish, with its abort code named', () => {
    const baseline = baselines.get('halter-sender')!;
    const report = structuredClone(baseline.report) as Mutable<VmReport>;
    report.exit = { reason: 'fault', detail: 'vCPU 1 stopped the VM' };
    report.faults = [
      {
        vcpu: 1,
        fault: report.faults[0]?.fault as never,
        description: 'guest-abort at pc 0x1000: guest assertion failed: code 4, value 0 (0x0)',
      },
    ];
    report.perVcpu[1]!.guest.done = false;
    const finished = SCENARIOS.get('halter-sender')!
      .check(report as VmReport, baseline.parameters)
      .find((check) => check.name === 'every vCPU finished')!;
    expect(finished.ok).toBe(false);
    expect(finished.detail).toContain('lost wake-up');
    expect(finished.detail).toContain('not done: vCPU 1');
  });

  it('guest and emulator counts that disagree', () => {
    expect(
      failedChecks('storm', (report) => {
        report.perVcpu[0]!.guest.reports[0]! += 1;
      }),
    ).toEqual(expect.arrayContaining(['ICR writes match IPI commands', 'each vCPU sent its IPIs']));
    expect(
      failedChecks('storm', (report) => {
        report.perVcpu[1]!.counters.latencySamples += 1;
      }),
    ).toEqual(['one latency sample per operation']);
    expect(
      failedChecks('ping-pong', (report) => {
        report.perVcpu[1]!.guest.reports[1]! -= 1;
      }),
    ).toContain('handler runs match deliveries');
  });

  it('scenario semantics', () => {
    expect(
      failedChecks('ping-pong', (report) => {
        report.perVcpu[1]!.guest.reports[3]! -= 1;
      }),
    ).toContain('every ping handled');
    expect(
      failedChecks('halter-sender', (report) => {
        report.perVcpu[0]!.guest.reports[3]! += 1;
      }),
    ).toEqual(expect.arrayContaining(['halted once per IPI', 'halts = halt exits']));
    expect(
      failedChecks('halter-sender', (report) => {
        report.perVcpu[0]!.guest.reports[4]! -= 1;
      }),
    ).toContain('woke once per IPI');
    expect(
      failedChecks('halter-sender', (report) => {
        report.perVcpu[1]!.latencyNs = { ...report.perVcpu[1]!.latencyNs!, max: 2e9 };
      }),
    ).toContain('every IPI handled within 1 s');
    expect(
      failedChecks('storm', (report) => {
        report.perVcpu[1]!.guest.reports[0]! -= 1;
        report.perVcpu[1]!.counters.ipiCommands -= 1;
        report.perVcpu[1]!.counters.ipisSent -= 1;
      }),
    ).toEqual(expect.arrayContaining(['budget split evenly', 'the whole budget sent']));
    expect(
      failedChecks('shootdown', (report) => {
        report.perVcpu[2]!.guest.reports[3]! -= 1;
      }),
    ).toContain('acks = IPIs per target');
    expect(
      failedChecks('shootdown', (report) => {
        report.perVcpu[0]!.guest.reports[2]! -= 1;
        report.perVcpu[1]!.guest.reports[2]! += 1;
      }),
    ).toContain('initiator rotates every 16');
    expect(
      failedChecks('logical-flat', (report) => {
        report.perVcpu[2]!.guest.reports[3]! += 1;
      }),
    ).toContain('each vCPU got exactly the IPIs that named it');
    expect(
      failedChecks('logical-flat', (report) => {
        report.perVcpu[1]!.guest.reports[6] = 1;
      }),
    ).toContain('none to the wrong vCPU');
    expect(
      failedChecks('logical-flat', (report) => {
        report.perVcpu[1]!.guest.reports[7] = 0;
      }),
    ).toContain('LDR took');
  });
});

describe('a guest assertion ends the run', () => {
  it('quickly, and the failed check names the abort code', async () => {
    // A 1 ns timeout makes sync-call's first bounded wait give up at once.
    const started = performance.now();
    const { result } = await runScenario(
      SCENARIOS.get('sync-call')!,
      { vcpus: 2, ipis: 50, seed: 1 },
      { defines: new Map([['TIMEOUT_NS', 1]]) },
    );
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(result.ok).toBe(false);
    expect(result.report.exit.reason).toBe('fault');
    const finished = result.checks.find((check) => check.name === 'every vCPU finished')!;
    expect(finished.ok).toBe(false);
    expect(finished.detail).toMatch(/guest assertion failed: code [23].*\[(not every vCPU came online|a call was not completed)/);
  });
});

describe('host-side expectations', () => {
  it('the shootdown rotation: terms of 16 in vCPU order, the last one short', () => {
    expect(expectedShootdowns(3, 40, 16)).toEqual({ shootdowns: [16, 16, 8], terms: [1, 1, 1] });
    expect(expectedShootdowns(2, 50, 16)).toEqual({ shootdowns: [32, 18], terms: [2, 2] });
    expect(expectedShootdowns(4, 0, 16)).toEqual({ shootdowns: [0, 0, 0, 0], terms: [0, 0, 0, 0] });
  });

  it('logical IDs and destinations follow the SDM flat and cluster models', () => {
    expect(logicalId(LogicalMode.Flat, 5)).toBe(0x20);
    expect(logicalId(LogicalMode.Cluster, 6)).toBe(0x14);
    expect(logicalDestinationNames(LogicalMode.Cluster, 0x16, 0x14)).toBe(true);
    expect(logicalDestinationNames(LogicalMode.Cluster, 0x26, 0x14)).toBe(false);
    expect(isSweptPattern(LogicalMode.Cluster, 6, 0x13)).toBe(true);
    expect(isSweptPattern(LogicalMode.Cluster, 6, 0x14)).toBe(false);
    expect(isSweptPattern(LogicalMode.Cluster, 60, 0xff)).toBe(false);
    expect([...Array(256).keys()].filter((destination) => isSweptPattern(LogicalMode.Flat, 3, destination))).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('expected receipts match a brute-force sweep', () => {
    for (const [mode, vcpus] of [
      [LogicalMode.Flat, 5],
      [LogicalMode.Cluster, 11],
    ] as const) {
      for (const seed of [0, 3, 0x47, 0xfe]) {
        const patterns = 700;
        const brute = new Array<number>(vcpus).fill(0);
        let destination = seed & 0xff;
        for (let sent = 0; sent < patterns; ) {
          if (isSweptPattern(mode, vcpus, destination)) {
            for (let vcpu = 0; vcpu < vcpus; vcpu++)
              if (logicalDestinationNames(mode, destination, logicalId(mode, vcpu))) brute[vcpu]! += 1;
            sent++;
          }
          destination = (destination + 1) & 0xff;
        }
        expect(expectedLogicalReceipts(mode, vcpus, seed, patterns), `${mode} ${vcpus} ${seed}`).toEqual(brute);
      }
    }
  });
});

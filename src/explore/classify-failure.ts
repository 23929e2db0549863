// What one explored run found, from the child's exit status and its `--json` report (docs/json.md):
// pass, a failure (with a kind, a signature and a detail), bad input (the child refused its
// arguments: exit 2), or cancelled. A signature is the failure's kind and its stable details (the
// vCPU, the vector, the lock cycle, the check's name) without the numbers that change from seed to
// seed (counts, times), so that two seeds hitting the same bug share one signature.

/** The subcommand a seed runs: `run program.s`, `stress --pattern P`, `lockdep --scenario F`. */
export type ExploreSubcommand = 'run' | 'stress' | 'lockdep';

export const FailureKind = {
  LostWakeup: 'lost-wakeup',
  LostIpi: 'lost-ipi',
  Deadlock: 'deadlock',
  Lockdep: 'lockdep',
  Hang: 'hang',
  GuestFault: 'guest-fault',
  VcpuError: 'vcpu-error',
  GuestFailure: 'guest-failure',
  CheckFailed: 'check-failed',
  Problem: 'problem',
  Crash: 'crash',
  Failed: 'failed',
} as const;
export type FailureKind = (typeof FailureKind)[keyof typeof FailureKind];

export interface Failure {
  readonly kind: FailureKind;
  /** `kind` and its stable details: equal for two seeds that hit the same bug. */
  readonly signature: string;
  /** The finding in words, with the run's own numbers. */
  readonly detail: string;
  /** The signatures of the run's other findings (a lost IPI that also failed a check, ...). */
  readonly also: readonly string[];
  /**
   * The run's thread switches of the kind --max-switches limits, when known: the report's
   * schedule.preemptions (switches where the running thread could have gone on), or, in a report
   * without it, schedule.switches (every switch: a looser bound, as forced switches are not limited).
   */
  readonly switches?: number;
}

/** How a child run ended, as the seed runner saw it. */
export interface RunOutcome {
  /** The exit status; null when a signal ended the child. */
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Killed after the run timeout. */
  readonly timedOut: boolean;
  /** Killed because exploring stopped (another seed failed). */
  readonly cancelled: boolean;
}

export type RunVerdict =
  | { readonly verdict: 'pass'; readonly switches?: number }
  | { readonly verdict: 'fail'; readonly failure: Failure }
  | { readonly verdict: 'bad-input'; readonly message: string }
  | { readonly verdict: 'cancelled' };

/**
 * The seed-independent form of a detail: its first line, with decimals ("2.13 s") and numbers of four
 * digits or more (counts, times in ms) replaced by N. Small integers (vCPU indices, vectors, exit
 * causes) are kept: they name where a bug struck.
 */
export function stableText(text: string): string {
  const firstLine = text.split('\n').find((line) => line.trim() !== '') ?? '';
  return firstLine
    .trim()
    .replace(/\b\d+\.\d+\b/g, 'N')
    .replace(/\b\d{4,}\b/g, 'N')
    .replace(/\b\d{1,3}(,\d{3})+\b/g, 'N');
}

function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .find((line) => line.trim() !== '')
      ?.trim() ?? ''
  );
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const numberAt = (value: unknown): number | undefined => (typeof value === 'number' ? value : undefined);
const stringAt = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const arrayAt = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

interface Finding {
  readonly kind: FailureKind;
  readonly signature: string;
  readonly detail: string;
}

const finding = (kind: FailureKind, details: string, detail: string): Finding => ({
  kind,
  signature: details === '' ? kind : `${kind} ${details}`,
  detail,
});

/** The watchdog's lost wake-up (vm-watchdog.ts lostWakeup): "vCPU 1 is blocked with vector 64 (0x40) ...". */
function lostWakeupFinding(report: Json): Finding | undefined {
  const exit = isObject(report['exit']) ? report['exit'] : {};
  const detail = stringAt(exit['detail']) ?? '';
  const match = /vCPU (\d+) is blocked with (?:vector \d+ \((0x[0-9a-f]+)\)|(an event pending))/.exec(detail);
  if (match !== null) {
    const what = match[2] === undefined ? 'event' : `vector ${match[2]}`;
    return finding(FailureKind.LostWakeup, `vCPU ${match[1]} ${what}`, firstLine(detail));
  }
  const lost = numberAt(report['lostWakeups']) ?? 0;
  if (lost === 0) return undefined;
  const vcpus = arrayAt(report['perVcpu'])
    .filter((entry) => isObject(entry) && isObject(entry['counters']) && (numberAt(entry['counters']['lostWakeups']) ?? 0) > 0)
    .map((entry) => (entry as Json)['vcpu']);
  return finding(FailureKind.LostWakeup, vcpus.length === 0 ? '' : `vCPU ${vcpus.join(',')}`, `${lost} lost wake-up(s)`);
}

function exitFindings(report: Json): Finding[] {
  const exit = isObject(report['exit']) ? report['exit'] : {};
  const reason = stringAt(exit['reason']);
  const detail = stringAt(exit['detail']) ?? '';
  if (reason === 'timeout') return [finding(FailureKind.Hang, 'timeout', firstLine(detail))];
  // A lost wake-up's watchdog exit is the lost wake-up's finding, not a second one.
  if (reason === 'watchdog' && lostWakeupFinding(report)?.detail !== firstLine(detail))
    return [finding(FailureKind.Hang, `watchdog: ${stableText(detail)}`, firstLine(detail))];
  return [];
}

function ipiFindings(report: Json): Finding[] {
  const ipis = isObject(report['ipis']) ? report['ipis'] : undefined;
  const lost = numberAt(ipis?.['lost']) ?? 0;
  if (ipis === undefined || lost === 0) return [];
  return [
    finding(
      FailureKind.LostIpi,
      '',
      `${lost} IPI(s) lost: accepted ${numberAt(ipis['accepted'])}, delivered ${numberAt(ipis['delivered'])}, pending ${numberAt(ipis['pending'])}`,
    ),
  ];
}

/** A fault as `run` reports it ({ vcpu, fault: { kind, pc } }) or as `stress` does ("vCPU 1: kind at pc 0x40 ..."). */
function faultFindings(report: Json): Finding[] {
  return arrayAt(report['faults']).flatMap((entry) => {
    if (isObject(entry) && isObject(entry['fault'])) {
      const pc = numberAt(entry['fault']['pc']);
      const where = pc === undefined ? '' : ` at pc 0x${pc.toString(16)}`;
      return [
        finding(
          FailureKind.GuestFault,
          `vCPU ${entry['vcpu']} ${stringAt(entry['fault']['kind'])}${where}`,
          `vCPU ${entry['vcpu']}: ${stringAt(entry['description'])}`,
        ),
      ];
    }
    const text = stringAt(entry);
    if (text === undefined) return [];
    const match = /^vCPU (\d+): (\S+ at pc 0x[0-9a-f]+)/.exec(text);
    return [finding(FailureKind.GuestFault, match === null ? stableText(text) : `vCPU ${match[1]} ${match[2]}`, text)];
  });
}

function errorFindings(report: Json): Finding[] {
  return arrayAt(report['errors']).map((entry) => {
    const text = isObject(entry) ? `vCPU ${entry['vcpu']}: ${stringAt(entry['message'])}` : String(entry);
    return finding(FailureKind.VcpuError, stableText(text), text);
  });
}

/** A lockdep report: `run` nests it (lockdep.report.cycle), `stress` flattens it (lockdep.cycle, lockdep.report text). */
function lockdepFindings(report: Json): Finding[] {
  const lockdep = isObject(report['lockdep']) ? report['lockdep'] : undefined;
  if (lockdep === undefined) return [];
  const nested = isObject(lockdep['report']) ? lockdep['report'] : undefined;
  const text = nested === undefined ? stringAt(lockdep['report']) : stringAt(nested['text']);
  if (text === undefined || text === '') return [];
  const cycle = arrayAt(nested === undefined ? lockdep['cycle'] : nested['cycle']).map(String);
  return [finding(FailureKind.Lockdep, cycle.join(' -> '), firstLine(text.replace(/^[=\s-]+$/gm, '')))];
}

/** HC_DONE with a status other than 0: the guest said it failed. */
function guestStatusFindings(report: Json): Finding[] {
  return arrayAt(report['perVcpu']).flatMap((entry) => {
    if (!isObject(entry) || !isObject(entry['guest'])) return [];
    const status = numberAt(entry['guest']['doneStatus']);
    if (status === undefined || status === 0) return [];
    return [
      finding(FailureKind.GuestFailure, `vCPU ${entry['vcpu']} status ${status}`, `vCPU ${entry['vcpu']} finished with status ${status}`),
    ];
  });
}

function checkFindings(report: Json): Finding[] {
  return arrayAt(report['checks']).flatMap((check) =>
    isObject(check) && check['ok'] === false
      ? [finding(FailureKind.CheckFailed, String(check['name']), `${String(check['name'])}: ${String(check['detail'])}`)]
      : [],
  );
}

/** `lockdep --json`: the verdict, its cycle and the problems (src/cli/lockdep-command.ts). */
function lockdepCommandFindings(report: Json): Finding[] {
  const verdict = stringAt(report['verdict']);
  const cycle = arrayAt(report['cycle']).map(String).join(' -> ');
  const found: Finding[] = [];
  if (verdict === 'deadlock') found.push(finding(FailureKind.Deadlock, cycle, firstLine(stringAt(report['report']) ?? '')));
  if (verdict === 'possible-deadlock') found.push(finding(FailureKind.Lockdep, cycle, `possible deadlock: ${cycle}`));
  found.push(...ipiFindings(report));
  for (const problem of arrayAt(report['problems']).map(String)) found.push(finding(FailureKind.Problem, stableText(problem), problem));
  return found;
}

/** Every finding in a report, the most telling first (a lost wake-up before the hang it caused). */
export function reportFindings(subcommand: ExploreSubcommand, report: Json): Finding[] {
  if (subcommand === 'lockdep') return lockdepCommandFindings(report);
  const lostWakeup = lostWakeupFinding(report);
  return [
    ...(lostWakeup === undefined ? [] : [lostWakeup]),
    ...ipiFindings(report),
    ...lockdepFindings(report),
    ...exitFindings(report),
    ...faultFindings(report),
    ...errorFindings(report),
    ...guestStatusFindings(report),
    ...checkFindings(report),
  ];
}

function scheduleSwitches(report: Json): number | undefined {
  const schedule = isObject(report['schedule']) ? report['schedule'] : undefined;
  return numberAt(schedule?.['preemptions']) ?? numberAt(schedule?.['switches']);
}

function parseReport(stdout: string): Json | undefined {
  try {
    const value: unknown = JSON.parse(stdout);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The verdict on one child run. `runTimeoutSeconds` names the bound in a hang's detail. */
export function classifyRun(subcommand: ExploreSubcommand, outcome: RunOutcome, runTimeoutSeconds: number): RunVerdict {
  if (outcome.cancelled) return { verdict: 'cancelled' };
  if (outcome.timedOut) {
    const detail = `no result within the run timeout (${runTimeoutSeconds} s): the run was killed`;
    return { verdict: 'fail', failure: { kind: FailureKind.Hang, signature: 'hang run timeout', detail, also: [] } };
  }
  if (outcome.exitCode === 2) return { verdict: 'bad-input', message: firstLine(outcome.stderr) || 'exit status 2' };
  const report = outcome.exitCode === 0 || outcome.exitCode === 1 ? parseReport(outcome.stdout) : undefined;
  if (report === undefined) {
    const how = outcome.signal === null ? `exit ${outcome.exitCode}` : `signal ${outcome.signal}`;
    const message = firstLine(outcome.stderr);
    const detail = `the run ended by ${how} without a JSON report${message === '' ? '' : `: ${message}`}`;
    const signature = `crash ${how}${message === '' ? '' : `: ${stableText(message)}`}`;
    return { verdict: 'fail', failure: { kind: FailureKind.Crash, signature, detail, also: [] } };
  }
  const switches = scheduleSwitches(report);
  const findings = reportFindings(subcommand, report);
  if (findings.length === 0 && outcome.exitCode === 1) {
    const reason = isObject(report['exit']) ? stringAt(report['exit']['reason']) : undefined;
    findings.push(finding(FailureKind.Failed, reason ?? '', `the run exited 1${reason === undefined ? '' : ` (exit reason ${reason})`}`));
  }
  const [first, ...rest] = findings;
  if (first === undefined) return { verdict: 'pass', ...(switches === undefined ? {} : { switches }) };
  const also = [...new Set(rest.map((each) => each.signature).filter((signature) => signature !== first.signature))];
  return { verdict: 'fail', failure: { ...first, also, ...(switches === undefined ? {} : { switches }) } };
}

// `--inject NAME` (run, stress, scale, conformance, lockdep): one bug of the AVIC bug zoo
// (docs/bug-zoo.md) or its fixed twin NAME-fixed, as VmConfig.inject; `--inject list` prints the
// catalogue and exits 0. An unknown name is bad input (exit 2), refused before anything runs with
// VmConfig's own one-line message, which lists the names.

import { type Command, CommanderError, Option } from 'commander';
import { FIXED_SUFFIX, INJECTED_BUGS } from '../kvm/control/injected-bugs.js';
import { validateInject } from '../kvm/vm/vm-config.js';

export const INJECT_LIST = 'list';

/**
 * Adds --inject to `command`. `--inject list` prints the catalogue as soon as it is parsed, before
 * the command's mandatory options and arguments are checked, and ends the parse with exit status 0.
 */
export function addInjectOption(command: Command): Command {
  command.addOption(
    new Option(
      '--inject <name>',
      `reproduce a real AVIC delivery or wake-up bug of KVM (NAME), or run its fixed twin (NAME${FIXED_SUFFIX}), which must run clean; \`--inject list\` lists them (docs/bug-zoo.md)`,
    ),
  );
  command.on('option:inject', (value: string) => {
    if (value !== INJECT_LIST) return;
    process.stdout.write(`${injectedBugsListText()}\n`);
    throw new CommanderError(0, 'avic-smp.injectList', 'listed the injected bugs');
  });
  return command;
}

/** The catalogue as `--inject list` prints it: per bug, what goes wrong, its upstream fix and its twin. */
export function injectedBugsListText(): string {
  const width = Math.max(...INJECTED_BUGS.map((bug) => bug.name.length + FIXED_SUFFIX.length));
  const indent = ' '.repeat(width + 2);
  return INJECTED_BUGS.map(
    (bug) =>
      `${bug.name.padEnd(width)}  ${bug.summary}\n` +
      `${indent}fix: Linux ${bug.fix.kernel}, ${bug.fix.commit} (${bug.fix.function})\n` +
      `${`${bug.name}${FIXED_SUFFIX}`.padEnd(width)}  ${bug.fixedTwin}`,
  ).join('\n\n');
}

/**
 * The VmConfig field for the chosen --inject (nothing when absent), checked before anything runs:
 * an unknown name throws VmConfigError, whose one line lists the names (exit 2).
 */
export function injectConfig(inject: string | undefined): { inject?: string } {
  return inject === undefined ? {} : { inject: validateInject(inject) };
}

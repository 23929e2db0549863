// The bug zoo's catalogue (src/kvm/control/injected-bugs.ts) and VmConfig.inject: every bug has a
// fixed twin, a cited fix and a distinct switch; unknown names are refused with the list of names.

import { describe, expect, it } from 'vitest';
import {
  INJECTED_BUGS,
  InjectedBugFlag,
  findInjectedBug,
  injectedBugFlags,
  injectedBugNames,
} from '../../../src/kvm/control/injected-bugs.js';
import { VmConfigError, validateConfig } from '../../../src/kvm/vm/vm-config.js';

describe('the bug zoo catalogue', () => {
  it('names each bug and its -fixed twin, the four the issue names among them', () => {
    const names = injectedBugNames();
    expect(names).toHaveLength(2 * INJECTED_BUGS.length);
    for (const name of ['erratum-1235', 'invalid-target-ignored', 'blocking-no-recheck', 'isrunning-before-irr'])
      expect(names).toEqual(expect.arrayContaining([name, `${name}-fixed`]));
    expect(INJECTED_BUGS.length).toBeGreaterThanOrEqual(6);
  });

  it('every bug cites its fix (commit, kernel, function) and says what it alters and what its twin runs', () => {
    for (const bug of INJECTED_BUGS) {
      expect(bug.summary, bug.name).not.toBe('');
      expect(bug.fix.commit, bug.name).not.toBe('');
      expect(bug.fix.kernel, bug.name).toMatch(/^\d+\.\d+/);
      expect(bug.fix.function, bug.name).not.toBe('');
      expect(bug.alters, bug.name).not.toBe('');
      expect(bug.fixedTwin, bug.name).not.toBe('');
    }
  });

  it('each flag bug has its own bit; a twin and none have no flags', () => {
    const flags = INJECTED_BUGS.map((bug) => bug.flag).filter((flag) => flag !== InjectedBugFlag.None);
    expect(new Set(flags).size).toBe(flags.length);
    expect(flags.every((flag) => (flag & (flag - 1)) === 0)).toBe(true);
    for (const bug of INJECTED_BUGS) {
      expect(injectedBugFlags(bug.name)).toBe(bug.flag);
      expect(injectedBugFlags(`${bug.name}-fixed`)).toBe(0);
    }
    expect(injectedBugFlags('none')).toBe(0);
    expect(findInjectedBug('blocking-no-recheck-fixed')).toMatchObject({ fixed: true, bug: { name: 'blocking-no-recheck' } });
    expect(findInjectedBug('no-such-bug')).toBeUndefined();
  });
});

describe('VmConfig.inject', () => {
  it("defaults to 'none' and keeps a known name", () => {
    expect(validateConfig({ vcpus: 2 }).inject).toBe('none');
    expect(validateConfig({ vcpus: 2, inject: 'isrunning-before-irr' }).inject).toBe('isrunning-before-irr');
  });

  it('refuses an unknown name with one message that lists every name', () => {
    expect(() => validateConfig({ vcpus: 2, inject: 'no-such-bug' })).toThrow(VmConfigError);
    expect(() => validateConfig({ vcpus: 2, inject: 'no-such-bug' })).toThrow(
      `unknown injected bug "no-such-bug"; the bugs are: ${injectedBugNames().join(', ')}`,
    );
    expect(() => validateConfig({ vcpus: 2, inject: 7 as unknown as string })).toThrow(VmConfigError);
  });

  it("erratum-1235 turns the erratum model on; its twin adds KVM's work-around, IPI virtualization off", () => {
    expect(validateConfig({ vcpus: 2, inject: 'erratum-1235' })).toMatchObject({ erratum1235: true, ipiVirtualization: true });
    expect(validateConfig({ vcpus: 2, inject: 'erratum-1235-fixed' })).toMatchObject({ erratum1235: true, ipiVirtualization: false });
    expect(validateConfig({ vcpus: 2, inject: 'blocking-no-recheck' })).toMatchObject({ erratum1235: false, ipiVirtualization: true });
  });
});

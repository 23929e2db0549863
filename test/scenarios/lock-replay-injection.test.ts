// VmConfig.injectLockBug across the layers: src/scenarios builds and checks it (the replay's name,
// its handshake words, whether a report is its purpose); the core checks only its shape and passes
// it to the workers untouched (docs/lock-scenarios.md).
import { describe, expect, it } from 'vitest';
import { VmConfigError, validateConfig } from '../../src/kvm/vm/vm-config.js';
import { ReplayHandshake } from '../../src/scenarios/lock-scenarios/lock-replays-handshake.js';
import { injectedLockBug, vcpuLockReplay, VCPU_LOCK_REPLAY_NAMES } from '../../src/scenarios/lock-scenarios/lock-replays-vcpu.js';
import { LOCK_REPLAYS } from '../../src/scenarios/lock-scenarios/lock-replays.js';

describe('injectedLockBug (src/scenarios): the replay as the VM carries it', () => {
  it('a buggy replay expects its report, a fixed one does not; each gets zeroed handshake words of its own', () => {
    const s1 = injectedLockBug('s1');
    const fixed = injectedLockBug('s1-fixed');
    expect(s1).toMatchObject({ name: 's1', expectsReport: true });
    expect(fixed).toMatchObject({ name: 's1-fixed', expectsReport: false });
    expect(s1.handshake?.byteLength).toBe(ReplayHandshake.byteSize);
    expect(new Int32Array(s1.handshake!).every((word) => word === 0)).toBe(true);
    expect(s1.handshake).not.toBe(injectedLockBug('s1').handshake);
  });

  it('an unknown name is one VmConfigError naming every replay', () => {
    expect(() => injectedLockBug('s2')).toThrow(VmConfigError);
    expect(() => injectedLockBug('s2')).toThrow(`injectLockBug must be 'none' or one of ${VCPU_LOCK_REPLAY_NAMES.join(', ')}, got s2`);
  });

  it('every registered replay has a vCPU side the workers know by its name', () => {
    for (const replay of LOCK_REPLAYS) expect(VCPU_LOCK_REPLAY_NAMES).toContain(replay.name);
  });

  it('the worker side: a part for each vCPU the replay involves, none for the others, and an unknown name is an error', () => {
    expect(vcpuLockReplay(undefined, 0)).toBeUndefined();
    expect(vcpuLockReplay(injectedLockBug('abba'), 0)).toBeTypeOf('function');
    expect(vcpuLockReplay(injectedLockBug('abba'), 1)).toBeTypeOf('function');
    expect(vcpuLockReplay(injectedLockBug('abba'), 2)).toBeUndefined();
    expect(vcpuLockReplay({ name: 's1' }, 0)).toBeTypeOf('function');
    expect(() => vcpuLockReplay({ name: 'bogus' }, 0)).toThrow(/no lock replay is named "bogus"; the replays are s1, /);
  });
});

describe('validateConfig (the core): only the shape of injectLockBug', () => {
  it('passes the object through untouched, and reads a bare name as { name }', () => {
    const injected = injectedLockBug('s4');
    expect(validateConfig({ vcpus: 2, injectLockBug: injected }).injectLockBug).toBe(injected);
    expect(validateConfig({ vcpus: 2, injectLockBug: 's1' }).injectLockBug).toEqual({ name: 's1' });
    expect(validateConfig({ vcpus: 2 }).injectLockBug).toBe('none');
    expect(validateConfig({ vcpus: 2, injectLockBug: 'none' }).injectLockBug).toBe('none');
  });

  it.each([
    ['an empty name', ''],
    ['a name that is not a string', { name: 1 }],
    ['handshake words that are not shared memory', { name: 's1', handshake: new ArrayBuffer(4) }],
    ['an expectation that is not a boolean', { name: 's1', expectsReport: 'yes' }],
  ])('rejects %s with one VmConfigError', (_, injectLockBug) => {
    expect(() => validateConfig({ vcpus: 2, injectLockBug: injectLockBug as never })).toThrow(VmConfigError);
    expect(() => validateConfig({ vcpus: 2, injectLockBug: injectLockBug as never })).toThrow(
      /^injectLockBug must be 'none', a lock replay's name or \{ name, handshake/,
    );
  });
});

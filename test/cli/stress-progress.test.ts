// The stress/scale progress bar: drawn on a terminal only, only once a run has lasted a second,
// and cleared when it stops. A PassThrough stream stands in for stderr.

import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createRunProgress } from '../../src/cli/progress.js';

function fakeStderr(isTTY: boolean): { stream: NodeJS.WriteStream; output: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
  });
  Object.assign(stream, { isTTY, columns: 100 });
  return { stream: stream as unknown as NodeJS.WriteStream, output: () => text };
}

describe('createRunProgress', () => {
  it('draws nothing when stderr is not a terminal, however long the run', () => {
    const { stream, output } = fakeStderr(false);
    const progress = createRunProgress({ label: 'storm, 4 vCPUs', seconds: 3, stream });
    progress.update({ elapsedSeconds: 2, fraction: 0.66 });
    progress.stop();
    expect(output()).toBe('');
  });

  it('draws nothing during the first second of a run on a terminal', () => {
    const { stream, output } = fakeStderr(true);
    const progress = createRunProgress({ label: 'storm, 4 vCPUs', seconds: 3, stream });
    progress.update({ elapsedSeconds: 0.5 });
    progress.update({ elapsedSeconds: 0.9 });
    progress.stop();
    expect(output()).toBe('');
  });

  it('after a second, shows the label, a bar, elapsed/--seconds as a percentage, and clears the line on stop', () => {
    const { stream, output } = fakeStderr(true);
    const progress = createRunProgress({ label: 'storm, 4 vCPUs', seconds: 4, stream });
    progress.update({ elapsedSeconds: 1.2 });
    expect(output()).toContain('storm, 4 vCPUs');
    expect(output()).toMatch(/30%\s+1\.2 s/);
    progress.stop();
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's ESC [2K (erase line) is what is looked for
    expect(output()).toMatch(/\u001b\[2K/); // the bar's line is erased
  });

  it("prefers the scenario's own fraction (an --ipis run) over elapsed time", () => {
    const { stream, output } = fakeStderr(true);
    const progress = createRunProgress({ label: 'ack, 2 vCPUs', stream });
    progress.update({ elapsedSeconds: 1.5, fraction: 0.25 });
    expect(output()).toMatch(/25%\s+1\.5 s/);
    progress.stop();
  });

  it('without any fraction, shows the elapsed time alone', () => {
    const { stream, output } = fakeStderr(true);
    const progress = createRunProgress({ label: 'ack, 2 vCPUs', stream });
    progress.update({ elapsedSeconds: 2.25 });
    expect(output()).toContain('running for 2.3 s');
    progress.stop();
  });
});

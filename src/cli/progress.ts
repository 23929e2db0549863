// The progress bar on stderr (cli-progress): only on a terminal, and only once a run has lasted a
// second, so short runs, pipes, CI logs and --json consumers never see it. It is cleared when the
// run ends, leaving the report alone on the screen.

import cliProgress from 'cli-progress';

/** What a scenario run reports about every 100 ms. */
export interface RunProgressSample {
  readonly elapsedSeconds: number;
  /** Done so far, 0..1, when the scenario knows (an --ipis run); otherwise elapsed / --seconds. */
  readonly fraction?: number;
}

export interface RunProgress {
  update(sample: RunProgressSample): void;
  stop(): void;
}

export interface RunProgressOptions {
  /** Shown before the bar: "storm, 4 vCPUs". */
  readonly label: string;
  /** The run's --seconds, when it has one. */
  readonly seconds?: number;
  /** Default process.stderr. */
  readonly stream?: NodeJS.WriteStream;
  /** The bar appears once a run has lasted this long. Default 1 s. */
  readonly afterSeconds?: number;
}

const NO_PROGRESS: RunProgress = { update: () => undefined, stop: () => undefined };

export function createRunProgress(options: RunProgressOptions): RunProgress {
  const stream = options.stream ?? process.stderr;
  if (stream.isTTY !== true) return NO_PROGRESS;
  const afterSeconds = options.afterSeconds ?? 1;
  let bar: cliProgress.SingleBar | undefined;
  let stopped = false;
  const fractionOf = (sample: RunProgressSample): number | undefined =>
    sample.fraction ?? (options.seconds === undefined ? undefined : sample.elapsedSeconds / options.seconds);
  return {
    update(sample) {
      if (stopped || sample.elapsedSeconds < afterSeconds) return;
      const fraction = fractionOf(sample);
      const payload = { elapsed: sample.elapsedSeconds.toFixed(1) };
      const value = fraction === undefined ? 0 : Math.round(Math.min(1, Math.max(0, fraction)) * 1000);
      if (bar === undefined) {
        const format =
          fraction === undefined ? `${options.label}  running for {elapsed} s` : `${options.label}  {bar} {percentage}%  {elapsed} s`;
        bar = new cliProgress.SingleBar(
          { stream, format, barsize: 30, clearOnComplete: true, hideCursor: false, fps: 10 },
          cliProgress.Presets.shades_classic,
        );
        bar.start(1000, value, payload);
      } else {
        bar.update(value, payload);
      }
    },
    stop() {
      stopped = true;
      bar?.stop();
    },
  };
}

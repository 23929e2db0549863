import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // SMP tests start real worker threads; every wait inside them is bounded well below this.
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Worker-heavy files run one at a time: this machine has 2 cores, and vCPU threads from
    // parallel files would only measure the scheduler.
    fileParallelism: false,
  },
});

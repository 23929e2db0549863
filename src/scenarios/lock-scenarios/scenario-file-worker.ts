// Worker entry for a lock scenario file's "vcpu N" thread (scenario-file-runner.ts starts it):
// attaches to the shared lockdep region as vCPU N's worker slot, as the VM's workers do, runs the
// thread's steps blocking, and posts its result. Loaded as built JavaScript (dist/). Wiring only.

import { parentPort, workerData } from 'node:worker_threads';
import { Lockdep } from '../../lockdep/lockdep.js';
import { ScenarioThread, type ScenarioThreadData } from '../../lockdep/scenario-file-steps.js';

const data = workerData as ScenarioThreadData;
const lockdep = Lockdep.attach(data.lockdep, { threadSlot: data.vcpu + 1, vcpu: data.vcpu, enabled: data.enabled });
parentPort?.postMessage(new ScenarioThread(data, lockdep).runBlocking());

// Every shipped scenario by name: what `avic-smp stress --pattern` and `scale` accept.

import { broadcast } from './broadcast.js';
import { halterSender } from './halter-sender.js';
import { hotAdd } from './hot-add.js';
import { logical, logicalCluster, logicalFlat } from './logical.js';
import { ack, ackHalt, pingPong, pingPongHalt } from './ping-pong.js';
import type { ScenarioDefinition } from './scenario.js';
import { shootdown } from './shootdown.js';
import { storm } from './storm.js';
import { syncCall } from './sync-call.js';

const ALL: readonly ScenarioDefinition[] = [
  pingPong,
  pingPongHalt,
  ack,
  ackHalt,
  syncCall,
  halterSender,
  storm,
  broadcast,
  shootdown,
  logical,
  logicalFlat,
  logicalCluster,
  hotAdd,
];

export const SCENARIOS: ReadonlyMap<string, ScenarioDefinition> = new Map(ALL.map((definition) => [definition.name, definition]));

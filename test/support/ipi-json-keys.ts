// The keys of a report's `ipis` object in every command's --json (docs/json.md), sorted: the balance
// sent = accepted + coalesced + dropped, accepted = delivered + pending + lost, and what it counts beside.
export const IPI_JSON_KEYS: readonly string[] = [
  'accepted',
  'coalesced',
  'commands',
  'delivered',
  'discardedByInit',
  'dropped',
  'lost',
  'nmisMerged',
  'pending',
  'sent',
  'timerInterrupts',
];

// Readers broken on purpose, for fuzz.test.ts to check that the runner catches what it is for: a native crash
// (abort), a hang, an internal TypeError. Each breaks on one byte value the mutations write early.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Target } from './targets.js';

const broken = (name: string, when: number, then: () => void): Target => ({
  name,
  about: `breaks (${name}) when the input holds the byte 0x${when.toString(16)}`,
  seeds: async () => [{ name: 'zeros', files: { 'input.bin': new Uint8Array(16) } }],
  read(dir) {
    if (readFileSync(join(dir, 'input.bin')).includes(when)) then();
    return null;
  },
  namesPath: false,
  sources: [],
});

export const targets: Target[] = [
  broken('crash', 0xff, () => process.abort()),
  broken('hang', 0x80, () => {
    for (;;);
  }),
  broken('internal', 0x7f, () => {
    throw new TypeError('Cannot read properties of undefined');
  }),
];

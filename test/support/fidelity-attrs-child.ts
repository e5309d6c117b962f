/**
 * Child process for the attribute-rewrite crash test: rewrites the fidelity attributes
 * of a run file without end, alternating a long and a short version (the header grows
 * and shrinks), saying "wrote <n>" after each.
 *
 *   node bin/run-ts.js test/support/fidelity-attrs-child.ts FILE
 */
import { setVariableAttributes } from '../../src/netcdf/attributes.ts';

export const longAttrs = {
  fidelity_note: 'x'.repeat(3000),
  fidelity_within_tolerance_percent: { type: 'double' as const, value: [100, 86.5, 100] },
};
export const shortAttrs = {
  fidelity_note: 'short',
  fidelity_within_tolerance_percent: { type: 'double' as const, value: [99, 88, 99] },
};

async function main(): Promise<void> {
  const file = process.argv[2]!;
  for (let n = 1; ; n++) {
    setVariableAttributes(file, {
      air_temperature: n % 2 ? longAttrs : shortAttrs,
      co2: n % 2 ? shortAttrs : longAttrs,
    });
    console.log(`wrote ${n}`);
    await new Promise((r) => setImmediate(r));
  }
}

if (process.argv[1]?.endsWith('fidelity-attrs-child.ts')) void main();

import { z } from 'zod';

/**
 * The envelope every driver kind's testcase file shares: the profile it belongs to and
 * named cases whose body (`shape`) the kind defines.
 */
export function testcaseDocument<S extends z.ZodRawShape>(shape: S) {
  return z
    .object({
      /** `<vendor>-<model>` of the profile these cases belong to. */
      profile: z.string(),
      cases: z.array(z.object({ name: z.string().min(1), ...shape }).strict()).min(1),
    })
    .strict();
}

/** Expected vs decoded: numbers within a relative 1e-9, anything else identical. */
export function sameValue(expected: unknown, got: unknown): boolean {
  if (typeof expected === 'number' && typeof got === 'number')
    return Math.abs(expected - got) <= 1e-9 * Math.max(1, Math.abs(expected));
  return expected === got;
}

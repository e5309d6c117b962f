/**
 * Testcases of an OPC UA profile (`drivers/opcua/testcases/<vendor>-<model>.yaml`): raw node
 * values with status codes and the engineering values and qualities they must decode to,
 * and writes with the raw value they must produce (or the error they must raise). Checked
 * with the driver's own decode functions by the profile corpus test.
 */
import { z } from 'zod';
import { profileId, type OpcuaProfile, type OpcuaTag } from '../../config/profile-schema.ts';
import { Quality, SampleValue } from '../../core/sample.ts';
import { reportFailures, type TestcaseReport } from '../testcase-report.ts';
import { runTestcaseDocument, sameValue, testcaseDocument } from '../testcase-document.ts';
import { decodeDataValue, encodeWrite, statusCodeFromName } from './decode.ts';

const RawValue = z.union([z.number(), z.boolean(), z.string(), z.null()]);

const ValueCase = z
  .object({
    /** The tag, by name… */
    tag: z.string().optional(),
    /** …or by its node id as written in the profile. */
    node: z.string().optional(),
    raw: RawValue,
    /** Status code name; Good when absent. */
    status: z
      .string()
      .regex(/^(Good|Uncertain|Bad)[A-Za-z0-9_]*$/, 'status code names start with Good, Uncertain or Bad')
      .default('Good'),
    expect: z.object({ value: SampleValue, q: Quality }).strict(),
  })
  .strict()
  .refine((c) => (c.tag === undefined) !== (c.node === undefined), 'give exactly one of tag or node');

const WriteCase = z
  .object({
    tag: z.string(),
    value: z.union([z.number(), z.boolean(), z.string()]),
    /** The raw value sent to the server… */
    expect_raw: z.union([z.number(), z.boolean(), z.string()]).optional(),
    /** …or a fragment of the error message when the write must be refused. */
    expect_error: z.string().optional(),
  })
  .strict()
  .refine(
    (c) => (c.expect_raw === undefined) !== (c.expect_error === undefined),
    'give exactly one of expect_raw or expect_error',
  );

export const OpcuaTestcases = testcaseDocument({
  values: z.array(ValueCase).default([]),
  writes: z.array(WriteCase).default([]),
});
export type OpcuaTestcases = z.infer<typeof OpcuaTestcases>;

/** Runs every case of a testcase document through the driver's decode and write functions. */
export function runOpcuaTestcases(profile: OpcuaProfile, doc: unknown): TestcaseReport {
  const byName = new Map(profile.tags.map((t) => [t.name, t]));
  const byNode = new Map(profile.tags.map((t) => [t.node, t]));
  const id = profileId(profile);
  return runTestcaseDocument(OpcuaTestcases, profile, doc, 'value case', (c, check, covered) => {
    c.values.forEach((v, vi) => {
      const at = ['values', vi];
      const tag: OpcuaTag | undefined = v.tag !== undefined ? byName.get(v.tag) : byNode.get(v.node!);
      if (!tag)
        return void check(
          at,
          `values[${vi}]`,
          false,
          `no tag ${v.tag !== undefined ? `named "${v.tag}"` : `with node ${v.node}`} in the profile`,
        );
      const label = `values[${vi}] (${tag.name})`;
      covered.add(tag.name);
      const sample = decodeDataValue(
        id,
        tag,
        { value: v.raw, statusCode: statusCodeFromName(v.status), statusName: v.status },
        0,
      );
      if (sample.q !== v.expect.q) check(at, label, false, `expected quality ${v.expect.q}, got ${sample.q}`);
      else if (!sameValue(v.expect.value, sample.value))
        check(
          at,
          label,
          false,
          `raw ${JSON.stringify(v.raw)} decodes to ${JSON.stringify(sample.value)}, expected ${JSON.stringify(v.expect.value)}`,
        );
      else
        check(
          at,
          label,
          true,
          `raw ${JSON.stringify(v.raw)} (${v.status}) decodes to ${JSON.stringify(sample.value)} ${sample.q}, expected ${JSON.stringify(v.expect.value)} ${v.expect.q}`,
        );
    });
    c.writes.forEach((w, wi) => {
      const at = ['writes', wi];
      const label = `writes[${wi}] (${w.tag})`;
      const tag = byName.get(w.tag);
      if (!tag) return void check(at, label, false, `no tag named "${w.tag}" in the profile`);
      let raw: unknown;
      try {
        raw = encodeWrite(tag, w.value);
      } catch (err) {
        const msg = (err as Error).message;
        if (w.expect_error === undefined)
          check(
            at,
            label,
            false,
            `write ${JSON.stringify(w.value)} refused (${msg}), expected raw ${JSON.stringify(w.expect_raw)}`,
          );
        else if (!msg.includes(w.expect_error))
          check(at, label, false, `error "${msg}" does not contain "${w.expect_error}"`);
        else check(at, label, true, `write ${JSON.stringify(w.value)} refused: ${msg}`);
        return;
      }
      if (w.expect_error !== undefined)
        check(
          at,
          label,
          false,
          `write ${JSON.stringify(w.value)} accepted (raw ${JSON.stringify(raw)}), expected an error containing "${w.expect_error}"`,
        );
      else
        check(
          at,
          label,
          sameValue(w.expect_raw, raw),
          `write ${JSON.stringify(w.value)} encodes to raw ${JSON.stringify(raw)}, expected ${JSON.stringify(w.expect_raw)}`,
        );
    });
  });
}

/** Every mismatch between a testcase document and what the driver decodes; empty = pass. */
export function checkOpcuaTestcases(profile: OpcuaProfile, doc: unknown): string[] {
  return reportFailures(runOpcuaTestcases(profile, doc));
}

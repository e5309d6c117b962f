/**
 * Testcases of a Modbus profile (`drivers/modbus/testcases/<vendor>-<model>.yaml`): raw
 * register words (or coil/discrete bits) as the PLC holds them and the engineering values
 * they must decode to, and writes with the words or bit they must put on the wire (or the
 * error they must raise). Checked with the driver's own decode and write functions by the
 * profile corpus test.
 */
import { z } from 'zod';
import { registerCount, type ModbusProfile, type ModbusTag, type WordOrder } from '../../config/profile-schema.ts';
import { reportFailures, type TestcaseReport } from '../testcase-report.ts';
import { runTestcaseDocument, sameValue, testcaseDocument } from '../testcase-document.ts';
import { decodeTag } from './driver.ts';
import { encodeModbusWrite, type ModbusWrite } from './write.ts';

const Word = z.number().int().min(0).max(0xffff);
/** Address → register word (hex in YAML is fine: 0x41AC) or bit (0/1). */
const Bank = z.record(z.string().regex(/^\d+$/, 'addresses are decimal numbers'), Word);

const ValueExpect = z.union([z.number(), z.boolean(), z.string()]);

const WriteCase = z
  .object({
    tag: z.string(),
    value: z.union([z.number(), z.boolean(), z.string()]),
    /** Words written from the tag's address (FC6 for one, FC16 for more)… */
    expect_registers: z.array(Word).optional(),
    /** …or the coil state (FC5) or register bit (read-modify-write)… */
    expect_bit: z.boolean().optional(),
    /** …or a fragment of the error message when the write must be refused. */
    expect_error: z.string().optional(),
  })
  .strict()
  .refine(
    (c) => [c.expect_registers, c.expect_bit, c.expect_error].filter((x) => x !== undefined).length === 1,
    'give exactly one of expect_registers, expect_bit or expect_error',
  );

export const ModbusTestcases = testcaseDocument({
  /** The PLC's memory for this case, per area. */
  registers: z.object({ holding: Bank, input: Bank, coil: Bank, discrete: Bank }).partial().strict().default({}),
  /** Tag name → decoded engineering value. */
  expect: z.record(z.string(), ValueExpect).default({}),
  writes: z.array(WriteCase).default([]),
});
export type ModbusTestcases = z.infer<typeof ModbusTestcases>;

const hex = (words: readonly number[]) => `[${words.map((w) => `0x${w.toString(16).padStart(4, '0')}`).join(', ')}]`;

function describeWrite(w: ModbusWrite): string {
  if (w.kind === 'registers') return `registers ${hex(w.words)} at ${w.address}`;
  return `${w.kind === 'coil' ? 'coil' : `bit ${w.bit} of register`} ${w.address} = ${w.on}`;
}

/** Runs every case of a testcase document through the driver's decode and write functions. */
export function runModbusTestcases(profile: ModbusProfile, doc: unknown): TestcaseReport {
  const tags = new Map(profile.tags.map((t) => [t.name, { ...t, area: t.area ?? profile.defaults.area }]));
  const orderOf = (t: ModbusTag): WordOrder => t.order ?? profile.defaults.order;
  return runTestcaseDocument(ModbusTestcases, profile, doc, 'expected value', (c, check, covered) => {
    for (const [name, expected] of Object.entries(c.expect)) {
      const at = ['expect', name];
      const label = `expect.${name}`;
      const tag = tags.get(name);
      if (!tag) {
        check(at, label, false, `no tag named "${name}" in the profile`);
        continue;
      }
      covered.add(name);
      const bank = c.registers[tag.area] ?? {};
      const bitArea = tag.area === 'coil' || tag.area === 'discrete';
      const n = bitArea ? 1 : registerCount(tag);
      const words: number[] = [];
      const missing: number[] = [];
      for (let a = tag.address; a < tag.address + n; a++) {
        const w = bank[String(a)];
        if (w === undefined) missing.push(a);
        else words.push(w);
      }
      if (missing.length) {
        check(
          at,
          label,
          false,
          `registers.${tag.area} has no value at ${missing.join(', ')} (${tag.type} at ${tag.area} ${tag.address} needs ${n})`,
        );
        continue;
      }
      let got: unknown;
      try {
        got = decodeTag(tag, words, 0, orderOf(tag));
      } catch (err) {
        check(at, label, false, `cannot decode ${hex(words)}: ${(err as Error).message}`);
        continue;
      }
      const ok = sameValue(expected, got);
      check(
        at,
        label,
        ok,
        `${tag.area} ${hex(words)} decodes to ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`,
      );
    }
    c.writes.forEach((w, wi) => {
      const at = ['writes', wi];
      const label = `writes[${wi}] (${w.tag})`;
      const tag = tags.get(w.tag);
      if (!tag) return void check(at, label, false, `no tag named "${w.tag}" in the profile`);
      let got: ModbusWrite;
      try {
        got = encodeModbusWrite(tag, w.value, orderOf(tag));
      } catch (err) {
        const msg = (err as Error).message;
        if (w.expect_error === undefined) check(at, label, false, `write ${JSON.stringify(w.value)} refused (${msg})`);
        else if (!msg.includes(w.expect_error))
          check(at, label, false, `error "${msg}" does not contain "${w.expect_error}"`);
        else check(at, label, true, `write ${JSON.stringify(w.value)} refused: ${msg}`);
        return;
      }
      const ok =
        w.expect_registers !== undefined
          ? got.kind === 'registers' &&
            got.words.length === w.expect_registers.length &&
            got.words.every((x, i) => x === w.expect_registers![i])
          : w.expect_bit !== undefined
            ? got.kind !== 'registers' && got.on === w.expect_bit
            : false;
      const wanted =
        w.expect_error !== undefined
          ? `an error containing "${w.expect_error}"`
          : w.expect_registers !== undefined
            ? `registers ${hex(w.expect_registers)}`
            : `bit = ${w.expect_bit}`;
      check(at, label, ok, `write ${JSON.stringify(w.value)} gives ${describeWrite(got)}, expected ${wanted}`);
    });
  });
}

/** Every mismatch between a testcase document and what the driver decodes and writes; empty = pass. */
export function checkModbusTestcases(profile: ModbusProfile, doc: unknown): string[] {
  return reportFailures(runModbusTestcases(profile, doc));
}

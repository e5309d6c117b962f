import { z } from 'zod';
import { ProfileTolerances } from '../fidelity/tolerance.ts';

/** Tag names become MQTT topic levels, InfluxDB tags and NetCDF variable names. */
export const TagName = z
  .string()
  .regex(/^[a-z][a-z0-9_]*$/, 'tag names are lower_snake_case (letters, digits, _), starting with a letter');

/** What a tag is for; dashboards and the archive use it (setpoint vs measurement). */
export const TagRole = z.enum(['measurement', 'setpoint', 'alarm', 'state', 'command']);

const CommonTag = z.object({
  name: TagName.describe(
    'Tag name, lower_snake_case; becomes the MQTT topic level, the InfluxDB tag and the NetCDF variable name',
  ),
  description: z.string().min(1).describe('What the value is, for people (dashboards, NetCDF long_name)'),
  /** UDUNITS string, e.g. degree_Celsius, percent, umol mol-1; "1" for dimensionless. */
  unit: z
    .string()
    .min(1)
    .optional()
    .describe(
      'udunits2 unit string in ASCII: degree_Celsius, percent, umol mol-1, umol m-2 s-1, W m-2, kPa, h, "1" for dimensionless; checked by octopus validate',
    ),
  /** CF standard name; must exist in the CF Standard Name Table. */
  standard_name: z
    .string()
    .regex(/^[a-z][a-z0-9_]*$/)
    .optional()
    .describe(
      'CF standard name (CF Standard Name Table v83, shipped in resources/cf); the unit must convert to its canonical units',
    ),
  role: TagRole.default('measurement').describe('measurement (default), setpoint, alarm, state or command'),
  /** For a setpoint: the measured tag it controls. */
  setpoint_of: TagName.optional().describe('For a setpoint: the name of the measured tag it controls'),
  writable: z
    .boolean()
    .default(false)
    .describe('Whether Octopus may write this tag (MQTT …/set/<tag>, the API); false by default'),
  /** Engineering value = raw * scale + offset (numbers only). */
  scale: z.number().finite().default(1).describe('Engineering value = raw × scale + offset; writes apply the inverse'),
  offset: z.number().finite().default(0).describe('Engineering value = raw × scale + offset; writes apply the inverse'),
  /** Sensible physical range; used by validation of writes and the simulator. */
  min: z
    .number()
    .finite()
    .optional()
    .describe('Lowest sensible engineering value: writes below it are refused; the simulator stays above it'),
  max: z
    .number()
    .finite()
    .optional()
    .describe('Highest sensible engineering value: writes above it are refused; the simulator stays below it'),
  /** A bool whose rising edge starts a run of the chamber's experiment and falling edge stops it. */
  /** A door contact: true (or non-zero) means open; open longer than alarms.door_open_max_s raises door_open. */
  door: z
    .boolean()
    .optional()
    .describe(
      'true for a door contact (bool or number; true or non-zero = open): the door_open alarm watches it (alarms.door_open_max_s)',
    ),
  run_trigger: z
    .boolean()
    .default(false)
    .describe(
      "A bool whose rising edge starts a run of the chamber's experiment and falling edge stops it (at most one per profile)",
    ),
  /** The simulator's model for this tag (see src/sim); ignored by drivers. */
  sim: z
    .string()
    .optional()
    .describe(
      'Optional: what the simulator models for this tag (air_temperature, relative_humidity, co2, par, soil_moisture, setpoint, alarm, alarm_word, door, run, runtime, heater); without it the simulator infers it from standard_name, role and name, or serves a constant',
    ),
});

// ---- Modbus ----------------------------------------------------------------

export const ModbusArea = z.enum(['coil', 'discrete', 'input', 'holding']);
export type ModbusArea = z.infer<typeof ModbusArea>;
export const ModbusType = z.enum([
  'bool',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'float32',
  'int64',
  'uint64',
  'float64',
  'string',
]);
export type ModbusType = z.infer<typeof ModbusType>;
/**
 * Byte/word order of a multi-register value, named after the bytes of a big-endian
 * 32-bit value A B C D: ABCD = big-endian (Modbus standard), CDAB = word-swapped,
 * BADC = byte-swapped, DCBA = little-endian. For 64-bit values the same pattern is
 * applied to the four words (ABCD → words 0..3, CDAB → word order reversed: word 3 first, …).
 */
export const WordOrder = z.enum(['ABCD', 'CDAB', 'BADC', 'DCBA']);
export type WordOrder = z.infer<typeof WordOrder>;

/** Modicon reference tables: the leading digit of 0xxxx/1xxxx/3xxxx/4xxxx. */
const MODICON_AREA: Record<string, ModbusArea> = { '0': 'coil', '1': 'discrete', '3': 'input', '4': 'holding' };

/**
 * A Modicon-style reference (datasheets' "40001", "4x0001", "300011") → area and zero-based
 * address: the first digit names the table (0 coil, 1 discrete input, 3 input register,
 * 4 holding register), the rest is the 1-based number. Numbers below 10000 are coils
 * (00001 written as 1). Returns an error message for anything else.
 */
export function parseModicon(ref: number | string): { area: ModbusArea; address: number } | { error: string } {
  const text = String(ref).trim();
  let table: string;
  let number: string;
  const x = /^([0-9])[xX:](\d{1,5})$/.exec(text);
  if (x) [table, number] = [x[1]!, x[2]!];
  else if (/^\d{5,6}$/.test(text)) [table, number] = [text[0]!, text.slice(1)];
  else if (typeof ref === 'number' && /^\d{1,4}$/.test(text)) [table, number] = ['0', text];
  else
    return {
      error:
        'a Modicon reference looks like 40001, 400001 or "4x0001" (first digit 0 coil, 1 discrete input, 3 input register, 4 holding register)',
    };
  const area = MODICON_AREA[table];
  if (!area)
    return {
      error: `Modicon table ${table}xxxx does not exist (0 coil, 1 discrete input, 3 input register, 4 holding register)`,
    };
  const n = Number(number);
  if (n < 1 || n > 65536) return { error: `Modicon references count from 1 to 65536 within a table (got ${n})` };
  return { area, address: n - 1 };
}

export const ModbusTag = CommonTag.extend({
  area: ModbusArea.optional().describe(
    'holding (FC3 read, FC6/FC16 write; default from defaults.area), input (FC4), coil (FC1, FC5 write) or discrete (FC2)',
  ),
  /** Zero-based protocol address (the number on the wire, not 40001-style). */
  address: z
    .number()
    .int()
    .optional()
    .describe(
      'Zero-based protocol address (the number on the wire): holding register "40001" is address 0. Give address or modicon',
    ),
  /** The datasheet's Modicon reference instead of area + address. */
  modicon: z
    .union([z.number().int(), z.string()])
    .optional()
    .describe(
      'Modicon reference from the datasheet instead of area + address: 40001 or "4x0001" = holding 0, 30011 = input 10, 10001 = discrete 0, 1 ("00001") = coil 0; 6-digit 400001 works too',
    ),
  type: ModbusType.describe('bool, int16, uint16, int32, uint32, float32, int64, uint64, float64 or string'),
  order: WordOrder.optional().describe(
    'Word/byte order of a multi-register value (overrides defaults.order): ABCD big-endian, CDAB word-swapped, BADC byte-swapped, DCBA little-endian',
  ),
  /** Bit 0–15 of a register, for `bool` in input/holding registers. */
  bit: z
    .number()
    .int()
    .min(0)
    .max(15)
    .optional()
    .describe('For a bool in a holding/input register: the bit, 0 (least significant) to 15'),
  /** Registers occupied; optional, checked against the type when given; required for strings. */
  count: z
    .number()
    .int()
    .positive()
    .optional()
    .describe('Registers occupied: required for strings (2 characters each), checked against the type otherwise'),
})
  .strict()
  .transform((t, ctx) => {
    if (t.modicon === undefined) {
      if (t.address === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['address'],
          message: 'required field is missing: give address (zero-based) or modicon (datasheet 40001-style)',
          input: t,
        });
        return z.NEVER;
      }
      return { ...t, address: t.address };
    }
    const m = parseModicon(t.modicon);
    if ('error' in m) {
      ctx.addIssue({ code: 'custom', path: ['modicon'], message: m.error, input: t.modicon });
      return z.NEVER;
    }
    if (t.address !== undefined && t.address !== m.address) {
      ctx.addIssue({
        code: 'custom',
        path: ['address'],
        message: `give address or modicon, not both (modicon ${t.modicon} is ${m.area} address ${m.address})`,
        input: t.address,
      });
      return z.NEVER;
    }
    if (t.area !== undefined && t.area !== m.area) {
      ctx.addIssue({
        code: 'custom',
        path: ['area'],
        message: `modicon ${t.modicon} is in the ${m.area} table; drop area or make it ${m.area}`,
        input: t.area,
      });
      return z.NEVER;
    }
    return { ...t, area: m.area, address: m.address };
  });
export type ModbusTag = z.infer<typeof ModbusTag>;

/** The fields every profile starts with, whatever its kind: who made the controller, which model. */
const ProfileIdentity = {
  vendor: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]*$/)
    .describe('Vendor, lower-case letters, digits and -; the file is <vendor>-<model>.yaml'),
  model: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]*$/)
    .describe('Model, lower-case letters, digits and -; the file is <vendor>-<model>.yaml'),
  description: z.string().min(1).describe('What the controller is'),
};

/** The field every profile ends with: its default tolerances. */
const ProfileTolerancesField = {
  tolerances: ProfileTolerances.default({}).describe(
    'Default tolerance band and minimum excursion duration per controlled variable (a tag some setpoint names in setpoint_of), by its name; chambers and treatments can override them',
  ),
};

export const ModbusProfile = z
  .object({
    kind: z.literal('modbus').describe('modbus: a Modbus TCP or RTU controller profile'),
    ...ProfileIdentity,
    /** Profiles must say it: addresses are the zero-based protocol addresses. */
    addressing: z
      .literal('zero-based')
      .describe(
        'Must be zero-based: tag addresses are protocol addresses (use modicon: for datasheet 40001-style references)',
      ),
    defaults: z
      .object({
        area: ModbusArea.default('holding').describe(
          'Area of tags that give none: holding (default), input, coil or discrete',
        ),
        order: WordOrder.default('ABCD').describe(
          'Word/byte order of multi-register values: ABCD (default), CDAB, BADC, DCBA',
        ),
        allow_high_addresses: z
          .boolean()
          .optional()
          .describe(
            'true when the register map really uses zero-based addresses that look like Modicon references (holding 40001–49999, input 30001–39999, discrete 10001–19999), e.g. SunSpec maps; otherwise such addresses are refused',
          ),
      })
      .strict()
      .default({ area: 'holding', order: 'ABCD' })
      .describe('Defaults for every tag'),
    tags: z.array(ModbusTag).min(1).describe('The values the controller exposes'),
    ...ProfileTolerancesField,
  })
  .strict();
export type ModbusProfile = z.infer<typeof ModbusProfile>;

// ---- OPC UA ----------------------------------------------------------------

export const OpcuaType = z.enum([
  'Boolean',
  'SByte',
  'Byte',
  'Int16',
  'UInt16',
  'Int32',
  'UInt32',
  'Int64',
  'UInt64',
  'Float',
  'Double',
  'String',
  'DateTime',
]);
export type OpcuaType = z.infer<typeof OpcuaType>;

/** `nsu=<namespace URI>;s=<id>` (or i=/g=/b=); `ns=<index>;…` is accepted but fragile. */
export const NodeIdText = z
  .string()
  .regex(/^(nsu=[^;]+;|ns=\d+;)?[sigb]=.+$/, 'node id must look like "nsu=<uri>;s=<name>" or "ns=<n>;i=<n>"');

export const OpcuaTag = CommonTag.extend({
  node: NodeIdText.describe(
    'Node id: nsu=<namespace URI>;s=<id> (also i=, g=, b=); ns=<index>;… works but breaks when the server reorders its namespaces',
  ),
  type: OpcuaType.describe(
    'OPC UA built-in type of the variable (used for writes): Boolean, SByte, Byte, Int16, UInt16, Int32, UInt32, Int64, UInt64, Float, Double, String, DateTime',
  ),
}).strict();
export type OpcuaTag = z.infer<typeof OpcuaTag>;

export const OpcuaProfile = z
  .object({
    kind: z.literal('opcua').describe('opcua: an OPC UA server profile'),
    ...ProfileIdentity,
    tags: z.array(OpcuaTag).min(1).describe('The variables the controller exposes'),
    ...ProfileTolerancesField,
  })
  .strict();
export type OpcuaProfile = z.infer<typeof OpcuaProfile>;

export const Profile = z.discriminatedUnion('kind', [ModbusProfile, OpcuaProfile]);
export type Profile = z.infer<typeof Profile>;
export type Tag = ModbusTag | OpcuaTag;

/** Registers a Modbus type occupies (bits in coils/discrete inputs count as 1). */
export function registerCount(tag: Pick<ModbusTag, 'type' | 'count'>): number {
  switch (tag.type) {
    case 'bool':
    case 'int16':
    case 'uint16':
      return 1;
    case 'int32':
    case 'uint32':
    case 'float32':
      return 2;
    case 'int64':
    case 'uint64':
    case 'float64':
      return 4;
    case 'string':
      return tag.count ?? 0;
  }
}

/** Profile id as used by `chambers[].profile`: `<vendor>-<model>`. */
export function profileId(p: Pick<Profile, 'vendor' | 'model'>): string {
  return `${p.vendor}-${p.model}`;
}

import { z } from 'zod';

/** Tag names become MQTT topic levels, InfluxDB tags and NetCDF variable names. */
export const TagName = z
  .string()
  .regex(/^[a-z][a-z0-9_]*$/, 'tag names are lower_snake_case (letters, digits, _), starting with a letter');

/** What a tag is for; dashboards and the archive use it (setpoint vs measurement). */
export const TagRole = z.enum(['measurement', 'setpoint', 'alarm', 'state', 'command']);

const CommonTag = z.object({
  name: TagName,
  description: z.string().min(1),
  /** UDUNITS string, e.g. degree_Celsius, percent, umol mol-1; "1" for dimensionless. */
  unit: z.string().min(1).optional(),
  /** CF standard name; must exist in the CF Standard Name Table. */
  standard_name: z.string().regex(/^[a-z][a-z0-9_]*$/).optional(),
  role: TagRole.default('measurement'),
  /** For a setpoint: the measured tag it controls. */
  setpoint_of: TagName.optional(),
  writable: z.boolean().default(false),
  /** Engineering value = raw * scale + offset (numbers only). */
  scale: z.number().finite().default(1),
  offset: z.number().finite().default(0),
  /** Sensible physical range; used by validation of writes and the simulator. */
  min: z.number().finite().optional(),
  max: z.number().finite().optional(),
  /** A bool whose rising edge starts a run of the chamber's experiment and falling edge stops it. */
  run_trigger: z.boolean().default(false),
  /** The simulator's model for this tag (see src/sim); ignored by drivers. */
  sim: z.string().optional(),
});

// ---- Modbus ----------------------------------------------------------------

export const ModbusArea = z.enum(['coil', 'discrete', 'input', 'holding']);
export type ModbusArea = z.infer<typeof ModbusArea>;
export const ModbusType = z.enum([
  'bool', 'int16', 'uint16', 'int32', 'uint32', 'float32', 'int64', 'uint64', 'float64', 'string',
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

export const ModbusTag = CommonTag.extend({
  area: ModbusArea.optional(),
  /** Zero-based protocol address (the number on the wire, not 40001-style). */
  address: z.number().int(),
  type: ModbusType,
  order: WordOrder.optional(),
  /** Bit 0–15 of a register, for `bool` in input/holding registers. */
  bit: z.number().int().min(0).max(15).optional(),
  /** Registers occupied; optional, checked against the type when given; required for strings. */
  count: z.number().int().positive().optional(),
});
export type ModbusTag = z.infer<typeof ModbusTag>;

export const ModbusProfile = z.object({
  kind: z.literal('modbus'),
  vendor: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
  model: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
  description: z.string().min(1),
  /** Profiles must say it: addresses are the zero-based protocol addresses. */
  addressing: z.literal('zero-based'),
  defaults: z
    .object({ area: ModbusArea.default('holding'), order: WordOrder.default('ABCD') })
    .default({ area: 'holding', order: 'ABCD' }),
  tags: z.array(ModbusTag).min(1),
});
export type ModbusProfile = z.infer<typeof ModbusProfile>;

// ---- OPC UA ----------------------------------------------------------------

export const OpcuaType = z.enum([
  'Boolean', 'SByte', 'Byte', 'Int16', 'UInt16', 'Int32', 'UInt32', 'Int64', 'UInt64',
  'Float', 'Double', 'String', 'DateTime',
]);
export type OpcuaType = z.infer<typeof OpcuaType>;

/** `nsu=<namespace URI>;s=<id>` (or i=/g=/b=); `ns=<index>;…` is accepted but fragile. */
export const NodeIdText = z
  .string()
  .regex(/^(nsu=[^;]+;|ns=\d+;)?[sigb]=.+$/, 'node id must look like "nsu=<uri>;s=<name>" or "ns=<n>;i=<n>"');

export const OpcuaTag = CommonTag.extend({
  node: NodeIdText,
  type: OpcuaType,
});
export type OpcuaTag = z.infer<typeof OpcuaTag>;

export const OpcuaProfile = z.object({
  kind: z.literal('opcua'),
  vendor: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
  model: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
  description: z.string().min(1),
  tags: z.array(OpcuaTag).min(1),
});
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

import type { ConfigIssue } from '../core/errors.ts';
import { controlledVariables } from '../fidelity/tolerance.ts';
import { checkStandardName, checkUnit } from '../units/check.ts';
import type { Unit } from '../units/unit.ts';
import {
  registerCount,
  type ModbusProfile,
  type OpcuaProfile,
  type Profile,
  type ModbusArea,
} from './profile-schema.ts';

/** Checks a profile beyond its shape: names, references, Modbus address layout. */
export function lintProfile(file: string, p: Profile): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const at = (i: number, field: string) => `tags[${i}].${field}`;
  const names = new Map<string, number>();
  p.tags.forEach((t, i) => {
    const first = names.get(t.name);
    if (first !== undefined)
      issues.push({ file, path: at(i, 'name'), message: `duplicate tag name (first at tags[${first}])`, got: t.name });
    else names.set(t.name, i);
    if (t.min !== undefined && t.max !== undefined && t.min > t.max)
      issues.push({ file, path: at(i, 'min'), message: `min is above max ${t.max}`, got: t.min });
  });
  const triggers = p.tags.map((t, i) => ({ t, i })).filter(({ t }) => t.run_trigger);
  for (const { t, i } of triggers) {
    if (t.type !== 'bool' && t.type !== 'Boolean')
      issues.push({ file, path: at(i, 'run_trigger'), message: 'a run trigger must be a bool tag', got: t.type });
  }
  p.tags.forEach((t, i) => {
    // A door contact reads open as true or non-zero: strings and dates cannot say it.
    if (t.door && ['string', 'String', 'DateTime'].includes(t.type))
      issues.push({
        file,
        path: at(i, 'door'),
        message: 'a door tag must be a bool or a number (true / non-zero = open)',
        got: t.type,
      });
  });
  if (triggers.length > 1)
    issues.push({
      file,
      path: at(triggers[1]!.i, 'run_trigger'),
      message: `only one run trigger per profile (first at tags[${triggers[0]!.i}])`,
    });
  p.tags.forEach((t, i) => {
    if (t.setpoint_of !== undefined && !names.has(t.setpoint_of)) {
      issues.push({
        file,
        path: at(i, 'setpoint_of'),
        message: `no tag of that name in this profile`,
        got: t.setpoint_of,
      });
    }
  });
  const controlled = new Set(controlledVariables(p.tags).map((c) => c.measured));
  for (const key of Object.keys(p.tolerances)) {
    if (!controlled.has(key))
      issues.push({
        file,
        path: `tolerances.${key}`,
        message: `not a controlled variable: no setpoint names it in setpoint_of (controlled: ${[...controlled].join(', ') || 'none'})`,
        got: key,
      });
  }
  issues.push(...lintUnits(file, p));
  issues.push(...(p.kind === 'modbus' ? lintModbus(file, p) : lintOpcua(file, p)));
  return issues;
}

/** Units parse as udunits2 units; standard names exist in the CF table and their canonical units accept the unit. */
function lintUnits(file: string, p: Profile): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  p.tags.forEach((t, i) => {
    let unit: Unit | undefined;
    if (t.unit !== undefined) {
      const u = checkUnit(t.unit);
      if (u.ok) unit = u.unit;
      else issues.push({ file, path: `tags[${i}].unit`, message: u.message });
    }
    if (t.standard_name !== undefined) {
      for (const [field, message] of checkStandardName(t.standard_name, t.unit, unit))
        issues.push({ file, path: `tags[${i}].${field}`, message });
    }
  });
  return issues;
}

/** Zero-based addresses that read like a datasheet's Modicon reference of the same table. */
const MODICON_LOOKALIKE: Partial<Record<ModbusArea, { digit: number; from: number; to: number }>> = {
  holding: { digit: 4, from: 40001, to: 49999 },
  input: { digit: 3, from: 30001, to: 39999 },
  discrete: { digit: 1, from: 10001, to: 19999 },
};

function lintOpcua(file: string, p: OpcuaProfile): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const nodes = new Map<string, number>();
  p.tags.forEach((t, i) => {
    const first = nodes.get(t.node);
    if (first !== undefined)
      issues.push({ file, path: `tags[${i}].node`, message: `node already used by tags[${first}]`, got: t.node });
    else nodes.set(t.node, i);
  });
  return issues;
}

interface Span {
  i: number;
  area: ModbusArea;
  start: number;
  end: number;
  bit?: number;
}

function lintModbus(file: string, p: ModbusProfile): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const spans: Span[] = [];
  p.tags.forEach((t, i) => {
    const path = (f: string) => `tags[${i}].${f}`;
    const area = t.area ?? p.defaults.area;
    const bitArea = area === 'coil' || area === 'discrete';
    const count = registerCount(t);
    if (bitArea && t.type !== 'bool')
      issues.push({ file, path: path('type'), message: `${area} holds single bits; only type bool fits`, got: t.type });
    if (bitArea && t.bit !== undefined)
      issues.push({
        file,
        path: path('bit'),
        message: `bit applies to bools in input/holding registers, not to ${area}s`,
        got: t.bit,
      });
    if (!bitArea && t.type === 'bool' && t.bit === undefined)
      issues.push({ file, path: path('bit'), message: `a bool in ${area} registers needs bit (0-15)`, got: t.bit });
    if (t.type !== 'bool' && t.bit !== undefined)
      issues.push({ file, path: path('bit'), message: `bit only applies to type bool`, got: t.bit });
    if (t.type === 'string' && t.count === undefined)
      issues.push({ file, path: path('count'), message: 'strings need count (registers, 2 characters each)' });
    if (t.type !== 'string' && t.count !== undefined && t.count !== count) {
      issues.push({
        file,
        path: path('count'),
        message: `type ${t.type} occupies ${count} register${count > 1 ? 's' : ''}`,
        got: t.count,
      });
    }
    if (t.writable && (area === 'input' || area === 'discrete'))
      issues.push({
        file,
        path: path('writable'),
        message: `${area} ${area === 'input' ? 'registers' : 'inputs'} are read-only in Modbus`,
        got: true,
      });
    const look = MODICON_LOOKALIKE[area];
    if (
      look &&
      t.modicon === undefined &&
      !p.defaults.allow_high_addresses &&
      t.address >= look.from &&
      t.address <= look.to
    ) {
      const zeroBased = t.address - look.digit * 10000 - 1;
      issues.push({
        file,
        path: path('address'),
        message: `looks like a Modicon reference: ${area} register ${t.address} in a datasheet is zero-based address ${zeroBased}; write "address: ${zeroBased}" or "modicon: ${t.address}" (if the map really uses zero-based ${t.address}, set defaults.allow_high_addresses: true)`,
        got: t.address,
      });
    }
    const end = t.address + Math.max(count, 1) - 1;
    if (t.address < 0 || end > 65535) {
      issues.push({
        file,
        path: path('address'),
        message: `address out of range: ${t.type} spans ${t.address}..${end}, Modbus addresses are 0..65535`,
        got: t.address,
      });
      return;
    }
    spans.push({ i, area, start: t.address, end, bit: t.type === 'bool' && !bitArea ? t.bit : undefined });
  });
  spans.sort((a, b) => (a.area < b.area ? -1 : a.area > b.area ? 1 : a.start - b.start));
  for (let k = 1; k < spans.length; k++) {
    const cur = spans[k]!;
    for (let j = k - 1; j >= 0; j--) {
      const prev = spans[j]!;
      if (prev.area !== cur.area || prev.end < cur.start) continue;
      const bitsShareRegister = prev.bit !== undefined && cur.bit !== undefined && prev.bit !== cur.bit;
      if (bitsShareRegister) continue;
      const name = p.tags[prev.i]!.name;
      issues.push({
        file,
        path: `tags[${cur.i}].address`,
        message: `overlaps tags[${prev.i}] "${name}" (${cur.area} ${prev.start}..${prev.end}${prev.bit !== undefined ? ` bit ${prev.bit}` : ''})`,
        got: p.tags[cur.i]!.address,
      });
      break;
    }
  }
  return issues;
}

/**
 * `octopus browse opc.tcp://…`: walks a live address space and drafts an OPC UA profile:
 * one tag per Variable, with an `nsu=` node id, the data type, writable from AccessLevel,
 * description and (best effort) unit. The draft validates as an OpcuaProfile; TODO
 * comments mark what a human must finish, and each tag carries its browse path in a comment.
 *
 * Without `--root` the walk starts at Objects (skipping the Server object and every other
 * standard namespace-0 node) and tags are named from their path below the top object.
 * With `--root nsu=…;s=Chamber7` it walks only that node's subtree and names tags from
 * their path below it (Setpoints/CO2 → setpoints_co2). Clashing names go first to nodes in
 * the root's namespace, then to shallower ones, then in browse order — so look-alikes
 * from other namespaces get the `_2` suffix, never the clean name.
 */
import { Document, isMap, type YAMLMap } from 'yaml';
import type { OpcuaOptions } from '../../config/instance-schema.ts';
import { OpcuaProfile, OpcuaType, type OpcuaTag } from '../../config/profile-schema.ts';
import { connectOpcua, type OpcuaConnection } from './client.ts';
import { parseNodeIdText, resolveNodeId, toNsuText } from './node-id.ts';
import { udunitsFromUnece, uneceCode } from './units.ts';

export interface BrowseOptions {
  /** Levels below Objects (or the root) to descend (default 6). */
  depth?: number;
  /** Node to start from (`nsu=<uri>;s=<id>`, `ns=<n>;…` or `i=<n>`); tags are named from their path below it. */
  root?: string;
  securityMode?: OpcuaOptions['security_mode'];
  securityPolicy?: OpcuaOptions['security_policy'];
  auth?: OpcuaOptions['auth'];
}

const OBJECTS = 'i=85';

/** Non-built-in data types a profile can still read as a built-in type. */
const DERIVED_TYPES: Record<string, OpcuaType> = {
  'i=26': 'Double', // Number
  'i=27': 'Int64', // Integer
  'i=28': 'UInt64', // UInteger
  'i=29': 'Int32', // Enumeration
  'i=290': 'Double', // Duration
  'i=294': 'DateTime', // UtcTime
  'ns=0;i=290': 'Double',
  'ns=0;i=294': 'DateTime',
};

interface FoundVariable {
  nodeId: string;
  /** Browse names from the start node (excluded) down to the variable. */
  path: string[];
  /** Position in browse order. */
  order: number;
}

interface DraftTag {
  tag: OpcuaTag;
  todo?: string;
  /** Browse path, for the comment above the tag. */
  path: string;
}

function snake(s: string): string {
  return s
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/** A lower_snake_case tag name from a browse path, unique in `taken`. */
export function tagNameFromPath(path: string[], taken: Set<string>): string {
  let base = snake(path.join('_')) || 'tag';
  if (!/^[a-z]/.test(base)) base = `tag_${base}`;
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}_${n}`;
  taken.add(name);
  return name;
}

const namespaceIndexOf = (nodeId: string): number => Number(/^ns=(\d+);/.exec(nodeId)?.[1] ?? 0);

/**
 * Names for the variables (same order as given). Without a root the top object is left out
 * of the name (Objects/Chamber/AirTemperature → air_temperature). Clashes: the root's
 * namespace first, then the shallower path, then browse order.
 */
export function nameVariables(vars: FoundVariable[], rootNamespace: number | undefined): string[] {
  const nameParts = (v: FoundVariable) =>
    rootNamespace === undefined ? v.path.slice(v.path.length > 1 ? 1 : 0) : v.path;
  const priority = [...vars].sort(
    (a, b) =>
      Number(rootNamespace !== undefined && namespaceIndexOf(a.nodeId) !== rootNamespace) -
        Number(rootNamespace !== undefined && namespaceIndexOf(b.nodeId) !== rootNamespace) ||
      a.path.length - b.path.length ||
      a.order - b.order,
  );
  const taken = new Set<string>();
  const names = new Map<FoundVariable, string>();
  for (const v of priority) names.set(v, tagNameFromPath(nameParts(v), taken));
  return vars.map((v) => names.get(v)!);
}

async function walk(c: OpcuaConnection, start: string, maxDepth: number): Promise<FoundVariable[]> {
  const found: FoundVariable[] = [];
  const seen = new Set<string>([start]);
  let level: Array<{ nodeId: string; path: string[] }> = [{ nodeId: start, path: [] }];
  for (let depth = 0; depth < maxDepth && level.length > 0; depth++) {
    const next: typeof level = [];
    for (const parent of level) {
      for (const child of await c.browse(parent.nodeId)) {
        // Namespace 0 holds the standard objects (Server, Aliases, …), never a device's data.
        if (seen.has(child.nodeId) || !/^ns=[1-9]/.test(child.nodeId)) continue;
        seen.add(child.nodeId);
        const path = [...parent.path, child.browseName];
        if (child.nodeClass === 'Object') next.push({ nodeId: child.nodeId, path });
        // Variables' own children (properties such as EngineeringUnits) are not tags.
        else if (child.nodeClass === 'Variable') found.push({ nodeId: child.nodeId, path, order: found.length });
      }
    }
    level = next;
  }
  return found;
}

async function draftTags(
  c: OpcuaConnection,
  vars: FoundVariable[],
  nsArray: string[],
  rootNamespace: number | undefined,
  pathPrefix: string,
): Promise<{ tags: DraftTag[]; skipped: string[] }> {
  const tags: DraftTag[] = [];
  const skipped: string[] = [];
  const typed: Array<{
    v: FoundVariable;
    type: OpcuaType;
    info: Awaited<ReturnType<OpcuaConnection['variableInfo']>>[number];
  }> = [];
  for (let start = 0; start < vars.length; start += 250) {
    const chunk = vars.slice(start, start + 250);
    const infos = await c.variableInfo(chunk.map((v) => v.nodeId));
    for (const [i, v] of chunk.entries()) {
      const info = infos[i]!;
      const parsedType = OpcuaType.safeParse(info.dataType);
      const type = parsedType.success ? parsedType.data : DERIVED_TYPES[info.dataType];
      if (!type)
        skipped.push(
          `${[pathPrefix, ...v.path].join('/')} (${toNsuText(v.nodeId, nsArray)}): data type ${info.dataType} has no OpcuaType`,
        );
      else typed.push({ v, type, info });
    }
  }
  // Names only for the variables that become tags, so a skipped one never takes a name.
  const names = nameVariables(
    typed.map((t) => t.v),
    rootNamespace,
  );
  for (const [i, { v, type, info }] of typed.entries()) {
    const node = toNsuText(v.nodeId, nsArray);
    const tag: OpcuaTag = {
      name: names[i]!,
      node,
      type,
      description: info.description || info.displayName || v.path.join('/'),
      role: 'measurement',
      writable: info.writable,
      scale: 1,
      run_trigger: false,
      offset: 0,
    };
    let todo: string | undefined;
    const euNode = (await c.browse(v.nodeId)).find((p) => p.browseName === 'EngineeringUnits');
    const eu = euNode ? await c.engineeringUnits(euNode.nodeId).catch(() => undefined) : undefined;
    if (eu) {
      const unit = udunitsFromUnece(eu.unitId);
      if (unit) tag.unit = unit;
      else {
        const code = uneceCode(eu.unitId);
        todo = `TODO unit: server says "${eu.displayName}" (${code ? `UNECE ${code}` : 'no UNECE code'}); give the UDUNITS string`;
      }
    }
    tags.push({ tag, todo, path: [pathPrefix, ...v.path].join('/') });
  }
  return { tags, skipped };
}

/** Drafts a profile from the live server at `endpoint`, as YAML text. */
export async function browseProfile(endpoint: string, opts: BrowseOptions = {}): Promise<string> {
  const depth = opts.depth ?? 6;
  if (!Number.isInteger(depth) || depth < 1)
    throw new Error(`browse: --depth must be a positive integer (got ${depth})`);
  const c = await connectOpcua({
    endpoint,
    securityMode: opts.securityMode ?? 'None',
    securityPolicy: opts.securityPolicy ?? 'None',
    auth: opts.auth ?? { type: 'anonymous' },
  });
  try {
    const nsArray = await c.namespaceArray();
    let start = OBJECTS;
    let rootNamespace: number | undefined;
    let prefix = 'Objects';
    if (opts.root !== undefined) {
      const r = resolveNodeId(opts.root, nsArray);
      if (!r.ok) throw new Error(`browse ${endpoint}: --root ${r.error}`);
      start = r.nodeId.replace(/^ns=0;/, '');
      rootNamespace = namespaceIndexOf(r.nodeId);
      const [info] = await c.variableInfo([start]);
      if (!info?.displayName && (await c.browse(start)).length === 0) {
        throw new Error(
          `browse ${endpoint}: --root ${opts.root} (${r.nodeId}) has no children on the server (is the node id right?)`,
        );
      }
      prefix = info?.displayName || parseNodeIdText(opts.root).identifier;
    }
    const vars = await walk(c, start, depth);
    const { tags, skipped } = await draftTags(c, vars, nsArray, rootNamespace, prefix);
    const where = opts.root === undefined ? 'Objects' : opts.root;
    if (tags.length === 0)
      throw new Error(
        `browse ${endpoint}: no readable variables under ${where} within depth ${depth}${skipped.length ? ` (${skipped.length} skipped: ${skipped.slice(0, 3).join('; ')})` : ''}`,
      );
    const profile = OpcuaProfile.parse({
      kind: 'opcua',
      vendor: 'vendor',
      model: 'model',
      description: `Drafted by octopus browse from ${endpoint}${opts.root ? ` (root ${opts.root})` : ''} on ${new Date().toISOString().slice(0, 10)}`,
      tags: tags.map((t) => t.tag),
    });
    return render(profile, tags, skipped, endpoint);
  } finally {
    await c.close();
  }
}

function render(profile: OpcuaProfile, tags: DraftTag[], skipped: string[], endpoint: string): string {
  // Defaults (role measurement, scale 1, offset 0, writable false) are left out of the draft.
  const plain = {
    ...profile,
    tags: profile.tags.map(({ name, node, type, description, unit, writable }) => ({
      name,
      node,
      type,
      description,
      ...(unit ? { unit } : {}),
      ...(writable ? { writable } : {}),
    })),
  };
  const doc = new Document(plain);
  doc.commentBefore = [
    ` Draft OPC UA profile from ${endpoint}.`,
    ' TODO: set vendor and model (file name drivers/opcua/<vendor>-<model>.yaml), check each tag:',
    ' name, role (setpoint/alarm/state), setpoint_of, unit, CF standard_name, min/max.',
    ...(skipped.length ? [' Skipped variables:', ...skipped.map((s) => `   ${s}`)] : []),
  ].join('\n');
  const seq = doc.get('tags', true);
  tags.forEach((t, i) => {
    const item = (seq as { items?: unknown[] } | undefined)?.items?.[i];
    if (isMap(item)) (item as YAMLMap).commentBefore = [` ${t.path}`, ...(t.todo ? [` ${t.todo}`] : [])].join('\n');
  });
  return doc.toString({ lineWidth: 0 });
}

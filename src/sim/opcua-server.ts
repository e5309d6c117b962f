/**
 * A real OPC UA server (node-opcua) serving variables described as plain data: either an
 * OPC UA profile's tags or an explicit list. The only module that imports node-opcua-server.
 * Used by the simulator, the integration tests and the benchmark.
 */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// node-opcua-server does not re-export these; they are its own pinned dependencies.
import { OPCUAServer } from 'node-opcua-server';
import { OPCUACertificateManager } from 'node-opcua-certificate-manager';
import { DataType, Variant, VariantArrayType } from 'node-opcua-variant';
import { StatusCodes, type StatusCode } from 'node-opcua-status-code';
import type { DataValue } from 'node-opcua-data-value';
import { EUInformation } from 'node-opcua-types';
import { uneceFromUdunits, uneceUnitId } from '../drivers/opcua/units.ts';
import type { INamespace, UAObject, UAVariable } from 'node-opcua-address-space';
import type { OpcuaProfile, OpcuaType } from '../config/profile-schema.ts';
import { parseNodeIdText } from '../drivers/opcua/node-id.ts';

export type SimValue = number | boolean | string;

export interface SimVariable {
  /** The `s=` identifier (string node id) inside the namespace, e.g. `Chamber.AirTemperature`. */
  id: string;
  browseName: string;
  type: OpcuaType;
  writable: boolean;
  initial: SimValue;
  description?: string;
  /** UDUNITS unit; advertised as an EngineeringUnits property (UNECE code when one is known). */
  unit?: string;
  /** Namespace URI; the server's main namespace when absent. */
  namespaceUri?: string;
  /**
   * Where to put it instead of the folders its dotted id implies: folders along `path`
   * (dotted) under Objects, in `namespaceUri` (default: the variable's), reusing those that
   * exist. Lets a test serve look-alikes in another namespace (Objects/Chamber7 twice).
   */
  folder?: { path: string; namespaceUri?: string };
}

export interface OpcuaServerOptions {
  port: number;
  host?: string;
  namespaceUri: string;
  /** Serve a profile's tags (their `node` must be `nsu=…;s=…`) under Objects/<folder>. */
  profile?: { profile: OpcuaProfile; folder: string };
  variables?: SimVariable[];
  /** Namespaces registered before the main one, so that its index shifts. */
  extraNamespacesFirst?: string[];
  /** When given, only these users may log in (anonymous is refused). */
  users?: Array<{ username: string; password: string }>;
  /** PKI folder, reused between starts so the server certificate is made only once. */
  pkiDir?: string;
}

export interface SetValueOptions {
  /** A status code name: Good, BadSensorFailure, UncertainLastUsableValue, … */
  statusCode?: string;
  sourceTimestamp?: Date | number;
}

export interface WriteEvent {
  id: string;
  value: SimValue;
}

export interface RunningOpcuaServer {
  endpoint: string;
  /** Namespace index of the main namespace URI (differs when extra namespaces come first). */
  namespaceIndex: number;
  ids(): string[];
  setValue(id: string, value: SimValue, opts?: SetValueOptions): void;
  onWrite(cb: (e: WriteEvent) => void): void;
  /**
   * Adds variables while serving, registering their namespace if it is new — as a PLC
   * does after a program download (the NamespaceArray grows, clients stay connected).
   */
  addVariables(vars: SimVariable[]): void;
  /** The server's application instance certificate (DER). */
  certificate(): Buffer;
  /** Sessions open now and created since start (a reconnecting client creates new ones). */
  sessions(): { current: number; created: number };
  stop(): Promise<void>;
}

export const DEFAULT_SIM_PKI_DIR = join(tmpdir(), 'octopus-opcua-pki', 'server');

function statusCodeByName(name: string): StatusCode {
  // StatusCodes is a class whose static members are the codes; index it by name.
  const code = (StatusCodes as unknown as Record<string, StatusCode | undefined>)[name];
  if (!code)
    throw new Error(
      `unknown OPC UA status code name "${name}" (e.g. Good, BadSensorFailure, UncertainLastUsableValue)`,
    );
  return code;
}

function toVariant(type: OpcuaType, value: SimValue): Variant {
  const dataType = DataType[type];
  if (type === 'DateTime')
    return new Variant({ dataType, value: new Date(typeof value === 'boolean' ? Number(value) : value) });
  if (type === 'Int64' || type === 'UInt64') {
    const n = BigInt(Math.trunc(Number(value)));
    const u = BigInt.asUintN(64, n);
    return new Variant({
      dataType,
      arrayType: VariantArrayType.Scalar,
      value: [Number(u >> 32n), Number(u & 0xffffffffn)],
    });
  }
  return new Variant({ dataType, value });
}

function fromVariant(v: Variant): SimValue {
  const raw: unknown = v.value;
  if (raw instanceof Date) return raw.toISOString();
  if (Array.isArray(raw) && raw.length === 2) {
    const u = (BigInt(raw[0] as number) << 32n) | BigInt(raw[1] as number);
    return Number(v.dataType === DataType.Int64 ? BigInt.asIntN(64, u) : u);
  }
  return raw as SimValue;
}

function profileVariables(profile: OpcuaProfile): SimVariable[] {
  return profile.tags.map((t) => {
    const parsed = parseNodeIdText(t.node);
    if (parsed.namespace.kind !== 'uri' || parsed.identifierType !== 's') {
      throw new Error(
        `simulator needs node ids of the form nsu=<uri>;s=<id>; tag "${t.name}" has ${JSON.stringify(t.node)}`,
      );
    }
    const initial = t.type === 'Boolean' ? false : t.type === 'String' ? '' : t.type === 'DateTime' ? 0 : (t.min ?? 0);
    return {
      id: parsed.identifier,
      namespaceUri: parsed.namespace.uri,
      browseName: parsed.identifier.split('.').pop() ?? parsed.identifier,
      type: t.type,
      writable: t.writable,
      initial,
      description: t.description,
      unit: t.unit,
    };
  });
}

const UNECE_NAMESPACE = 'http://www.opcfoundation.org/UA/units/un/cefact';

function addEngineeringUnits(ns: INamespace, node: UAVariable, unit: string): void {
  const code = uneceFromUdunits(unit);
  const eu = new EUInformation({
    namespaceUri: UNECE_NAMESPACE,
    // -1: no UNECE code for this unit (OPC UA Part 8 allows it); the display name still says it.
    unitId: code ? uneceUnitId(code) : -1,
    displayName: { text: unit },
    description: { text: unit },
  });
  ns.addVariable({
    propertyOf: node,
    browseName: 'EngineeringUnits',
    dataType: 'EUInformation',
    value: new Variant({ dataType: DataType.ExtensionObject, value: eu }),
  });
}

export async function startOpcuaServer(opts: OpcuaServerOptions): Promise<RunningOpcuaServer> {
  const pkiDir = opts.pkiDir ?? DEFAULT_SIM_PKI_DIR;
  mkdirSync(pkiDir, { recursive: true });
  const server = new OPCUAServer({
    port: opts.port,
    host: opts.host,
    // Advertise the loopback names too, so clients that connect to 127.0.0.1 find a matching endpoint.
    alternateHostname: ['127.0.0.1', 'localhost'],
    resourcePath: '',
    disableDiscovery: true,
    allowAnonymous: !opts.users,
    userManager: opts.users
      ? { isValidUser: (u: string, p: string) => opts.users!.some((x) => x.username === u && x.password === p) }
      : undefined,
    serverCertificateManager: new OPCUACertificateManager({
      rootFolder: pkiDir,
      automaticallyAcceptUnknownCertificate: true,
    }),
    // X.509 user tokens are checked against this store; a simulator trusts any user certificate.
    userCertificateManager: new OPCUACertificateManager({
      rootFolder: `${pkiDir}-users`,
      automaticallyAcceptUnknownCertificate: true,
    }),
    buildInfo: { productName: 'octopus-sim', manufacturerName: 'octopus', softwareVersion: '1' },
    serverInfo: { applicationUri: 'urn:octopus:sim', productUri: 'urn:octopus:sim' },
    maxConnectionsPerEndpoint: 50,
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace;
  if (!addressSpace) throw new Error('OPC UA simulator: address space missing after initialize()');
  for (const uri of opts.extraNamespacesFirst ?? []) addressSpace.registerNamespace(uri);

  const namespaces = new Map<string, INamespace>();
  const namespaceFor = (uri: string): INamespace => {
    let ns = namespaces.get(uri) ?? addressSpace.getNamespace(uri) ?? undefined;
    if (!ns) ns = addressSpace.registerNamespace(uri);
    namespaces.set(uri, ns);
    return ns;
  };
  const main = namespaceFor(opts.namespaceUri);
  const folderName = opts.profile?.folder ?? 'Simulation';
  const folder: UAObject = main.addObject({
    organizedBy: addressSpace.rootFolder.objects,
    browseName: folderName,
    nodeId: `s=${folderName}`,
  });

  // Dotted ids become folders, as PLCs lay them out: Chamber.Setpoints.CO2 → Chamber/Setpoints/CO2.
  const folders = new Map<string, UAObject>();
  /** Folders by namespace URI and dotted path from Objects (explicit `folder` placement). */
  const placed = new Map<string, UAObject>([[`${opts.namespaceUri}|${folderName}`, folder]]);
  const placeIn = (spec: { path: string; namespaceUri?: string }, fallbackUri: string): UAObject => {
    const uri = spec.namespaceUri ?? fallbackUri;
    const ns = namespaceFor(uri);
    let parent: UAObject = addressSpace.rootFolder.objects;
    let path = '';
    for (const seg of spec.path.split('.')) {
      path = path ? `${path}.${seg}` : seg;
      let f = placed.get(`${uri}|${path}`);
      if (!f) {
        f = ns.addObject({ organizedBy: parent, browseName: seg, nodeId: `s=${path}` });
        placed.set(`${uri}|${path}`, f);
      }
      parent = f;
    }
    return parent;
  };
  const parentOf = (ns: INamespace, id: string): UAObject => {
    const segments = id.split('.').slice(0, -1);
    if (segments[0] === folderName) segments.shift();
    let parent = folder;
    let path = folderName;
    for (const seg of segments) {
      path = `${path}.${seg}`;
      let f = folders.get(path);
      if (!f) {
        f = ns.addObject({ organizedBy: parent, browseName: seg, nodeId: `s=${path}` });
        folders.set(path, f);
      }
      parent = f;
    }
    return parent;
  };
  const nodes = new Map<string, { node: UAVariable; type: OpcuaType }>();
  const writeListeners: Array<(e: WriteEvent) => void> = [];
  let settingFromSource = false;
  const addVariable = (v: SimVariable) => {
    if (nodes.has(v.id)) throw new Error(`OPC UA simulator: variable id "${v.id}" defined twice`);
    const ns = namespaceFor(v.namespaceUri ?? opts.namespaceUri);
    const access = v.writable ? 'CurrentRead | CurrentWrite' : 'CurrentRead';
    const node = ns.addVariable({
      componentOf: v.folder ? placeIn(v.folder, v.namespaceUri ?? opts.namespaceUri) : parentOf(ns, v.id),
      nodeId: `s=${v.id}`,
      browseName: v.browseName,
      description: v.description,
      dataType: DataType[v.type],
      accessLevel: access,
      userAccessLevel: access,
      minimumSamplingInterval: 0,
    });
    node.setValueFromSource(toVariant(v.type, v.initial), StatusCodes.Good, new Date());
    if (v.unit) addEngineeringUnits(ns, node, v.unit);
    nodes.set(v.id, { node, type: v.type });
    // value_changed fires for our own setValue too; the flag tells client writes apart.
    node.on('value_changed', (dv: DataValue) => {
      if (settingFromSource) return;
      const e = { id: v.id, value: fromVariant(dv.value) };
      for (const cb of writeListeners) cb(e);
    });
  };
  for (const v of [...(opts.profile ? profileVariables(opts.profile.profile) : []), ...(opts.variables ?? [])])
    addVariable(v);

  await server.start();
  const host = opts.host ?? '127.0.0.1';
  return {
    endpoint: `opc.tcp://${host}:${opts.port}`,
    namespaceIndex: main.index,
    ids: () => [...nodes.keys()],
    setValue(id, value, o = {}) {
      const entry = nodes.get(id);
      if (!entry)
        throw new Error(`OPC UA simulator: no variable "${id}" (known: ${[...nodes.keys()].slice(0, 10).join(', ')}…)`);
      const ts = o.sourceTimestamp === undefined ? new Date() : new Date(o.sourceTimestamp);
      settingFromSource = true;
      try {
        entry.node.setValueFromSource(toVariant(entry.type, value), statusCodeByName(o.statusCode ?? 'Good'), ts);
      } finally {
        settingFromSource = false;
      }
    },
    onWrite(cb) {
      writeListeners.push(cb);
    },
    addVariables(vars) {
      for (const v of vars) addVariable(v);
    },
    certificate: () => Buffer.from(server.getCertificate()),
    sessions: () => ({ current: server.engine.currentSessionCount, created: server.engine.cumulatedSessionCount }),
    async stop() {
      await server.shutdown(0);
    },
  };
}

/**
 * Thin adapter over node-opcua-client: the only module that imports it. The rest of the
 * code sees plain values (PlainDataValue), status code numbers and names, ms timestamps
 * and `ns=<i>;s=…` node id strings. A connection is single-use: when it is lost (socket
 * closed, session closed or invalid, keep-alive failure, subscription silent or
 * terminated) it reports `onLost` once and the caller builds a new one. node-opcua's
 * own reconnection is switched off (maxRetry 0) because it does not reliably restore
 * sessions and subscriptions after a server process restart.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { format } from 'node:util';
import {
  AttributeIds,
  BrowseDirection,
  ClientMonitoredItemGroup,
  DataType,
  MessageSecurityMode,
  NodeClass,
  OPCUAClient,
  SecurityPolicy,
  TimestampsToReturn,
  UserTokenType,
  Variant,
  VariantArrayType,
  crypto_utils,
  makeNodeClassMask,
  makeResultMask,
  setDebugLogger,
  setErrorLogger,
  setWarningLogger,
  type ClientSession,
  type ClientSubscription,
  type DataValue,
  type UserIdentityInfo,
  type VariantOptions,
} from 'node-opcua-client';
import type { OpcuaOptions } from '../../config/instance-schema.ts';
import type { OpcuaType } from '../../config/profile-schema.ts';
import { createLogger, type Logger } from '../../core/log.ts';
import type { PlainDataValue } from './decode.ts';
import { ClientPki } from './pki.ts';
import { checkServerTrust, type ServerTrust } from './trust.ts';

export type { PlainDataValue };

export interface ConnectOptions {
  endpoint: string;
  securityMode: OpcuaOptions['security_mode'];
  securityPolicy: OpcuaOptions['security_policy'];
  auth: OpcuaOptions['auth'];
  /** What to do with a server certificate that is not in the trust list (Sign/SignAndEncrypt only). */
  serverTrust?: ServerTrust;
  /** The chamber this connection serves, recorded with pinned and refused certificates. */
  chamber?: string;
  /** Client PKI folder (own certificate, trusted servers); reused between runs. */
  pkiDir?: string;
  applicationName?: string;
  /** Environment the auth variables are read from (tests inject one). */
  env?: NodeJS.ProcessEnv;
  connectTimeoutMs?: number;
}

/** The client PKI folder under a data directory (OCTOPUS_DATA_DIR, else ./data). */
export function clientPkiDir(dataDir: string): string {
  return join(dataDir, 'pki', 'opcua-client');
}

export function defaultClientPkiDir(env: NodeJS.ProcessEnv = process.env): string {
  return clientPkiDir(env.OCTOPUS_DATA_DIR || './data');
}

// ---- node-opcua's own log lines ---------------------------------------------------

// eslint-disable-next-line no-control-regex
const ANSI_COLOUR = /\u001b\[[0-9;]*m/g;

/** One line, no colours: node-opcua's messages carry ANSI codes and span lines. */
function oneLine(args: unknown[]): string {
  return format(...args)
    .replace(ANSI_COLOUR, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * Routes node-opcua's own debug, warning and error output (printed with console.log by
 * node-opcua-debug, e.g. on every reconnect attempt) through our logger, so that it obeys
 * OCTOPUS_LOG_LEVEL and has our format. Its warnings are details of failures the drivers
 * already report themselves (with the reason in status and health): they go to `debug`;
 * its errors go to `warn`. Process-wide; called once when this module loads.
 */
export function routeOpcuaLogs(log: Logger): void {
  // The first argument node-opcua passes is its call-site context ({ filename, callerline }).
  setDebugLogger((_context?: unknown, ...args: unknown[]) => log.debug(oneLine(args)));
  setWarningLogger((_context?: unknown, ...args: unknown[]) => log.debug(oneLine(args)));
  setErrorLogger((_context?: unknown, ...args: unknown[]) => log.warn(oneLine(args)));
}
routeOpcuaLogs(createLogger('node-opcua'));

function pemToDer(pem: string, file: string): Buffer {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new Error(`OPC UA auth: ${file} holds no PEM certificate`);
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

function userIdentity(auth: OpcuaOptions['auth'], env: NodeJS.ProcessEnv): UserIdentityInfo {
  switch (auth.type) {
    case 'anonymous':
      return { type: UserTokenType.Anonymous };
    case 'username': {
      const userName = env[auth.username_env];
      const password = env[auth.password_env];
      if (!userName) throw new Error(`OPC UA auth: environment variable ${auth.username_env} (username) is not set`);
      if (password === undefined)
        throw new Error(`OPC UA auth: environment variable ${auth.password_env} (password) is not set`);
      return { type: UserTokenType.UserName, userName, password };
    }
    case 'certificate': {
      const read = (file: string) => {
        try {
          return readFileSync(file, 'utf8');
        } catch (err) {
          throw new Error(`OPC UA auth: cannot read ${file}: ${(err as Error).message}`);
        }
      };
      let keyOperations: ReturnType<typeof crypto_utils.keyOperationsFromPrivateKey>;
      try {
        keyOperations = crypto_utils.keyOperationsFromPrivateKey(
          crypto_utils.makePrivateKeyFromPem(read(auth.key_file)),
        );
      } catch (err) {
        throw new Error(`OPC UA auth: ${auth.key_file} is not a usable PEM private key: ${(err as Error).message}`);
      }
      return {
        type: UserTokenType.Certificate,
        certificateData: pemToDer(read(auth.cert_file), auth.cert_file),
        keyOperations,
      };
    }
  }
}

// ---- plain values ------------------------------------------------------------

type PlainValue = PlainDataValue['value'];

function plainValue(v: Variant | null | undefined): PlainValue {
  if (!v || v.value === null || v.value === undefined) return null;
  const raw: unknown = v.value;
  if ((v.dataType === DataType.Int64 || v.dataType === DataType.UInt64) && Array.isArray(raw) && raw.length === 2) {
    const u = (BigInt(raw[0] as number) << 32n) | BigInt(raw[1] as number);
    return Number(v.dataType === DataType.Int64 ? BigInt.asIntN(64, u) : u);
  }
  if (typeof raw === 'number' || typeof raw === 'boolean' || typeof raw === 'string') return raw;
  if (typeof raw === 'bigint') return Number(raw);
  if (raw instanceof Date) return raw.toISOString();
  if (Buffer.isBuffer(raw)) return raw.toString('base64');
  if (Array.isArray(raw) || ArrayBuffer.isView(raw)) return JSON.stringify(Array.from(raw as ArrayLike<unknown>));
  // LocalizedText: its text (null when the server has none).
  if (typeof raw === 'object' && raw !== null && 'text' in raw && 'locale' in raw)
    return (raw as { text: string | null }).text;
  return String(raw);
}

function msOrUndefined(d: Date | null | undefined): number | undefined {
  // node-opcua reports a missing timestamp as null or as the 1601 epoch (negative ms).
  const ms = d?.getTime();
  return ms !== undefined && Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

function toPlainDataValue(dv: DataValue): PlainDataValue {
  return {
    value: plainValue(dv.value),
    statusCode: dv.statusCode.value,
    statusName: dv.statusCode.name,
    sourceTimestamp: msOrUndefined(dv.sourceTimestamp),
    serverTimestamp: msOrUndefined(dv.serverTimestamp),
  };
}

function toVariantOptions(type: OpcuaType, value: number | boolean | string): VariantOptions {
  const dataType = DataType[type];
  if (type === 'DateTime') return { dataType, value: new Date(typeof value === 'boolean' ? Number(value) : value) };
  if (type === 'Int64' || type === 'UInt64') {
    const u = BigInt.asUintN(64, BigInt(Math.trunc(Number(value))));
    return { dataType, arrayType: VariantArrayType.Scalar, value: [Number(u >> 32n), Number(u & 0xffffffffn)] };
  }
  return { dataType, value };
}

// ---- subscriptions -------------------------------------------------------------

export interface SubscriptionOptions {
  publishingIntervalMs: number;
  samplingIntervalMs: number;
  queueSize: number;
  /** Monitored items are created this many per CreateMonitoredItems request. */
  batchSize: number;
  /**
   * Called once per publish response with every value it carried (coalesced). `index` is
   * the item's position in the order items were added (initial ones first, then each add()).
   */
  onValues(changes: Array<{ index: number; value: PlainDataValue }>): void;
}

export interface ItemStatus {
  statusCode: number;
  statusName: string;
}

export interface OpcuaSubscription {
  readonly publishingIntervalMs: number;
  /**
   * Adds monitored items to the running subscription; resolves with their
   * CreateMonitoredItems results and the index of the first one (see onValues).
   */
  add(nodeIds: string[]): Promise<{ first: number; status: ItemStatus[] }>;
  terminate(): Promise<void>;
}

async function createSubscription(
  session: ClientSession,
  opts: SubscriptionOptions,
  markLost: (reason: string) => void,
): Promise<OpcuaSubscription & { stopWatchdog(): void }> {
  // Keep-alive about every 5 s whatever the interval; lifetime 3× that (spec minimum).
  const maxKeepAliveCount = Math.max(2, Math.ceil(5000 / opts.publishingIntervalMs));
  const sub: ClientSubscription = await session.createSubscription2({
    requestedPublishingInterval: opts.publishingIntervalMs,
    requestedMaxKeepAliveCount: maxKeepAliveCount,
    requestedLifetimeCount: maxKeepAliveCount * 6,
    maxNotificationsPerPublish: 0,
    publishingEnabled: true,
    priority: 1,
  });
  let stopping = false;
  let lastActivity = Date.now();
  const touch = () => {
    lastActivity = Date.now();
  };
  sub.on('keepalive', touch);
  sub.on('received_notifications', touch);
  sub.on('terminated', () => !stopping && markLost(`subscription ${sub.subscriptionId} terminated`));
  sub.on(
    'status_changed',
    (status: { name: string }) => !stopping && markLost(`subscription ${sub.subscriptionId} status ${status.name}`),
  );
  sub.on(
    'internal_error',
    (err: Error) => !stopping && markLost(`subscription ${sub.subscriptionId} internal error: ${err.message}`),
  );
  // The server answers at least every keep-alive period; two missed ones mean it is gone.
  const silentLimit = 2 * sub.publishingInterval * sub.maxKeepAliveCount + 2000;
  const watchdog = setInterval(() => {
    const silent = Date.now() - lastActivity;
    if (silent > silentLimit)
      markLost(`subscription ${sub.subscriptionId}: no publish response for ${silent} ms (limit ${silentLimit} ms)`);
  }, 1000);
  watchdog.unref();

  let pending: Array<{ index: number; value: PlainDataValue }> = [];
  const flush = () => {
    const batch = pending;
    pending = [];
    opts.onValues(batch);
  };
  let count = 0;
  const add = async (nodeIds: string[]): Promise<{ first: number; status: ItemStatus[] }> => {
    const first = count;
    count += nodeIds.length;
    const status: ItemStatus[] = [];
    for (let start = 0; start < nodeIds.length; start += opts.batchSize) {
      const base = first + start;
      const items = nodeIds
        .slice(start, start + opts.batchSize)
        .map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value }));
      const group = ClientMonitoredItemGroup.create(
        sub,
        items,
        { samplingInterval: opts.samplingIntervalMs, queueSize: opts.queueSize, discardOldest: true },
        TimestampsToReturn.Both,
      );
      await new Promise<void>((resolve, reject) => {
        group.once('initialized', () => resolve());
        group.once('terminated', (err?: Error) =>
          reject(new Error(`monitored items ${base}..${base + items.length - 1}: ${err?.message ?? 'terminated'}`)),
        );
      });
      // node-opcua emits all changes of one publish response synchronously: flush after them.
      group.on('changed', (_item, dv: DataValue, i: number) => {
        if (pending.length === 0) setImmediate(flush);
        pending.push({ index: base + i, value: toPlainDataValue(dv) });
      });
      for (const item of group.monitoredItems)
        status.push({ statusCode: item.statusCode.value, statusName: item.statusCode.name });
    }
    return { first, status };
  };
  const stop = () => {
    stopping = true;
    clearInterval(watchdog);
  };
  return {
    publishingIntervalMs: sub.publishingInterval,
    add: async (nodeIds) => {
      try {
        return await add(nodeIds);
      } catch (err) {
        // A half-made subscription is of no use: the caller starts over on a new connection.
        stop();
        await sub.terminate().catch(() => undefined);
        markLost(`creating monitored items failed: ${(err as Error).message}`);
        throw err;
      }
    },
    stopWatchdog: stop,
    async terminate() {
      stop();
      await sub.terminate().catch(() => undefined);
    },
  };
}

/** Server_NamespaceArray (Part 5): the namespace URIs, index = namespace index. */
const SERVER_NAMESPACE_ARRAY = 'i=2255';

// ---- browsing -----------------------------------------------------------------

export interface BrowseChild {
  nodeId: string;
  browseName: string;
  displayName: string;
  nodeClass: 'Object' | 'Variable' | 'Other';
}

export interface VariableInfo {
  /** Built-in type name (Double, Int16, …) or the data type's node id text when not built in. */
  dataType: string;
  accessLevel: number;
  writable: boolean;
  description: string;
  displayName: string;
}

async function browseChildren(session: ClientSession, nodeId: string): Promise<BrowseChild[]> {
  let result = await session.browse({
    nodeId,
    browseDirection: BrowseDirection.Forward,
    referenceTypeId: 'HierarchicalReferences',
    includeSubtypes: true,
    nodeClassMask: makeNodeClassMask('Object | Variable'),
    resultMask: makeResultMask('ReferenceType | IsForward | BrowseName | DisplayName | NodeClass | TypeDefinition'),
  });
  const refs = [...(result.references ?? [])];
  while (result.continuationPoint && result.continuationPoint.length > 0) {
    result = await session.browseNext(result.continuationPoint, false);
    refs.push(...(result.references ?? []));
  }
  return refs.map((r) => ({
    // Namespace 0 is written without its prefix (i=85), as profiles and node-id.ts do.
    nodeId: r.nodeId.toString().replace(/^ns=0;/, ''),
    browseName: r.browseName.name ?? '',
    displayName: r.displayName.text ?? '',
    nodeClass: r.nodeClass === NodeClass.Object ? 'Object' : r.nodeClass === NodeClass.Variable ? 'Variable' : 'Other',
  }));
}

function variableInfoFrom([dataType, accessLevel, description, displayName]: DataValue[]): VariableInfo {
  const typeId: unknown = dataType?.value.value;
  let typeName = 'unknown';
  if (typeId && typeof typeId === 'object') {
    const id = typeId as { namespace: number; value: unknown; toString(): string };
    typeName =
      id.namespace === 0 && typeof id.value === 'number' && id.value <= 25
        ? (DataType[id.value] ?? id.toString())
        : id.toString();
  }
  const level = typeof accessLevel?.value.value === 'number' ? accessLevel.value.value : 0;
  return {
    dataType: typeName,
    accessLevel: level,
    writable: (level & 0x02) !== 0,
    description: String(plainValue(description?.value) ?? ''),
    displayName: String(plainValue(displayName?.value) ?? ''),
  };
}

/** EUInformation of an EngineeringUnits property, when it has one. */
export interface EngineeringUnits {
  unitId: number;
  displayName: string;
  description: string;
}

function euFrom(dv: DataValue): EngineeringUnits | undefined {
  const eu: unknown = dv.value?.value;
  if (!eu || typeof eu !== 'object' || !('unitId' in eu)) return undefined;
  const e = eu as { unitId: number; displayName?: { text?: string | null }; description?: { text?: string | null } };
  return { unitId: e.unitId, displayName: e.displayName?.text ?? '', description: e.description?.text ?? '' };
}

export interface OpcuaConnection {
  readonly endpoint: string;
  namespaceArray(): Promise<string[]>;
  /** Reads the Value attribute of many nodes, `chunk` at a time. */
  read(nodeIds: string[], chunk?: number): Promise<PlainDataValue[]>;
  write(
    nodeId: string,
    type: OpcuaType,
    value: number | boolean | string,
  ): Promise<{ statusCode: number; statusName: string }>;
  subscribe(opts: SubscriptionOptions): Promise<OpcuaSubscription>;
  browse(nodeId: string): Promise<BrowseChild[]>;
  variableInfo(nodeIds: string[]): Promise<VariableInfo[]>;
  /** Reads an EngineeringUnits property node (EUInformation). */
  engineeringUnits(propertyNodeId: string): Promise<EngineeringUnits | undefined>;
  /** Called once when the connection can no longer be used; the reason says why. */
  onLost(cb: (reason: string) => void): void;
  readonly lost: boolean;
  close(): Promise<void>;
}

/** Connection errors as one line: node-opcua's messages span several lines with advice. */
function connectError(endpoint: string, err: unknown): Error {
  return new Error(`OPC UA connect to ${endpoint} failed: ${(err as Error).message.replace(/\s+/g, ' ').trim()}`);
}

/**
 * The server certificate of the endpoint that matches the requested security mode and
 * policy, read with GetEndpoints over an unsecured discovery channel (what every OPC UA
 * server offers for this purpose). Nothing is trusted yet: checkServerTrust decides.
 */
async function fetchServerCertificate(opts: ConnectOptions, pki: ClientPki): Promise<Buffer> {
  const discovery = OPCUAClient.create({
    applicationName: opts.applicationName ?? 'Octopus',
    endpointMustExist: false,
    securityMode: MessageSecurityMode.None,
    securityPolicy: SecurityPolicy.None,
    connectionStrategy: { maxRetry: 0, initialDelay: 500, maxDelay: 2000 },
    transportTimeout: opts.connectTimeoutMs ?? 10_000,
    clientCertificateManager: pki.manager,
  });
  try {
    await discovery.connect(opts.endpoint);
    const endpoints = await discovery.getEndpoints();
    const mode = MessageSecurityMode[opts.securityMode];
    const policy: string = SecurityPolicy[opts.securityPolicy];
    const match = endpoints.find(
      (e) => e.securityMode === mode && e.securityPolicyUri === policy && e.serverCertificate?.length,
    );
    if (!match) {
      const offered = endpoints.map(
        (e) => `${MessageSecurityMode[e.securityMode]}/${(e.securityPolicyUri ?? '').replace(/^.*#/, '')}`,
      );
      throw new Error(
        `the server offers no endpoint with security mode ${opts.securityMode} and policy ${opts.securityPolicy} (offers: ${[...new Set(offered)].join(', ')})`,
      );
    }
    return match.serverCertificate;
  } catch (err) {
    throw connectError(opts.endpoint, err);
  } finally {
    await discovery.disconnect().catch(() => undefined);
  }
}

export async function connectOpcua(opts: ConnectOptions): Promise<OpcuaConnection> {
  const env = opts.env ?? process.env;
  const identity = userIdentity(opts.auth, env);
  const pki = new ClientPki(opts.pkiDir ?? defaultClientPkiDir(env));
  let serverCertificate: Buffer | undefined;
  try {
    await pki.init();
    if (opts.securityMode !== 'None') {
      // Sign / SignAndEncrypt: the channel is opened with exactly the certificate Octopus
      // checked (the server must hold its private key), never one node-opcua fetched itself.
      serverCertificate = await fetchServerCertificate(opts, pki);
      await checkServerTrust({
        pki,
        endpoint: opts.endpoint,
        chamber: opts.chamber,
        mode: opts.serverTrust ?? 'pinned',
        serverCertificate,
      });
      await pki.reload();
    }
  } catch (err) {
    await pki.dispose().catch(() => undefined);
    throw err;
  }
  const client = OPCUAClient.create({
    applicationName: opts.applicationName ?? 'Octopus',
    endpointMustExist: false,
    securityMode: MessageSecurityMode[opts.securityMode],
    securityPolicy: SecurityPolicy[opts.securityPolicy],
    ...(serverCertificate ? { serverCertificate } : {}),
    connectionStrategy: { maxRetry: 0, initialDelay: 500, maxDelay: 2000 },
    keepSessionAlive: true,
    keepAliveInterval: 5000,
    requestedSessionTimeout: 60_000,
    transportTimeout: opts.connectTimeoutMs ?? 10_000,
    clientCertificateManager: pki.manager,
  });
  let session: ClientSession | undefined;
  let lost = false;
  let closing = false;
  const lostListeners: Array<(reason: string) => void> = [];
  const subscriptions = new Set<{ stopWatchdog(): void }>();
  const markLost = (reason: string) => {
    if (lost || closing) return;
    lost = true;
    for (const cb of lostListeners) cb(reason);
  };
  client.on('connection_lost', () => markLost(`connection to ${opts.endpoint} lost`));
  client.on('close', (err?: Error | null) =>
    markLost(`connection to ${opts.endpoint} closed${err ? `: ${err.message}` : ''}`),
  );

  try {
    await client.connect(opts.endpoint);
    session = await client.createSession(identity);
  } catch (err) {
    closing = true;
    await client.disconnect().catch(() => undefined);
    await pki.dispose().catch(() => undefined);
    throw connectError(opts.endpoint, err);
  }
  const s = session;
  s.on('session_closed', (status: { name?: string }) =>
    markLost(`session closed by ${opts.endpoint} (${status?.name ?? 'unknown status'})`),
  );
  s.on('keepalive_failure', () => markLost(`session keep-alive to ${opts.endpoint} failed`));

  /** A service call failing with a session/channel error means the connection is gone. */
  const guard = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      const msg = (err as Error).message;
      if (
        /BadSession|BadSecureChannel|BadConnectionClosed|BadNotConnected|BadTooManySessions|closed|disconnected/i.test(
          msg,
        )
      ) {
        markLost(`${what} on ${opts.endpoint} failed: ${msg}`);
      }
      throw new Error(`OPC UA ${what} on ${opts.endpoint} failed: ${msg}`);
    }
  };

  return {
    endpoint: opts.endpoint,
    get lost() {
      return lost;
    },
    // Read afresh each time (node-opcua's readNamespaceArray caches the first answer for the
    // session's life): a PLC's namespaces can grow while connected (program download).
    namespaceArray: () =>
      guard('read NamespaceArray', async () => {
        const dv = await s.read({ nodeId: SERVER_NAMESPACE_ARRAY, attributeId: AttributeIds.Value });
        const value: unknown = dv.value?.value;
        if (!dv.statusCode.isGood() || !Array.isArray(value))
          throw new Error(`Server.NamespaceArray unreadable (${dv.statusCode.name})`);
        return value.map(String);
      }),
    async read(nodeIds, chunk = 1000) {
      const out: PlainDataValue[] = [];
      for (let i = 0; i < nodeIds.length; i += chunk) {
        const part = nodeIds.slice(i, i + chunk).map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value }));
        const values = await guard('read', () => s.read(part, 0));
        for (const dv of values) out.push(toPlainDataValue(dv));
      }
      return out;
    },
    async write(nodeId, type, value) {
      const status = await guard(`write ${nodeId}`, () =>
        s.write({ nodeId, attributeId: AttributeIds.Value, value: { value: toVariantOptions(type, value) } }),
      );
      return { statusCode: status.value, statusName: status.name };
    },
    async subscribe(subOpts) {
      const sub = await guard('create subscription', () => createSubscription(s, subOpts, markLost));
      subscriptions.add(sub);
      return sub;
    },
    browse: (nodeId) => guard(`browse ${nodeId}`, () => browseChildren(s, nodeId)),
    async variableInfo(nodeIds) {
      const attrs = [
        AttributeIds.DataType,
        AttributeIds.AccessLevel,
        AttributeIds.Description,
        AttributeIds.DisplayName,
      ];
      const req = nodeIds.flatMap((nodeId) => attrs.map((attributeId) => ({ nodeId, attributeId })));
      const values = await guard('read variable attributes', () => s.read(req));
      return nodeIds.map((_, i) => variableInfoFrom(values.slice(i * attrs.length, (i + 1) * attrs.length)));
    },
    async engineeringUnits(propertyNodeId) {
      const dv = await guard(`read ${propertyNodeId}`, () =>
        s.read({ nodeId: propertyNodeId, attributeId: AttributeIds.Value }),
      );
      return euFrom(dv);
    },
    onLost(cb) {
      lostListeners.push(cb);
    },
    async close() {
      if (closing) return;
      closing = true;
      for (const sub of subscriptions) sub.stopWatchdog();
      // A lost or frozen server does not answer: never wait long for CloseSession or
      // CloseSecureChannel; the socket is dropped either way.
      const atMost = (ms: number, p: Promise<unknown>) =>
        Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, ms).unref())]);
      if (!lost) await atMost(2000, s.close(true));
      await atMost(lost ? 500 : 2000, client.disconnect());
      await pki.dispose().catch(() => undefined);
    },
  };
}

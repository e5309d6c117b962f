/**
 * OPC UA driver for one chamber: a supervisor loop that connects, resolves `nsu=` node
 * ids against the server's current namespace array, then either subscribes (default)
 * or polls, and on any loss of the connection starts over with capped exponential
 * backoff — new session, new subscription, new monitored items.
 *
 * Tags the server does not serve (yet) — a namespace or node that appears after a PLC
 * program download — are reported (bad sample once, health `missingTags`, status reason)
 * and looked up again every `resolve_interval_ms` on the same connection: once found
 * they are added to the running subscription (or poll list) without reconnecting.
 */
import type { OpcuaTag } from '../../config/profile-schema.ts';
import { Backoff, sleep } from '../../core/backoff.ts';
import { badSample, type Sample } from '../../core/sample.ts';
import type { ResolvedOpcua } from '../../config/resolved.ts';
import type { ChamberState, Driver, DriverDeps, DriverHealth } from '../types.ts';
import {
  clientPkiDir,
  connectOpcua,
  type OpcuaConnection,
  type OpcuaSubscription,
  type PlainDataValue,
} from './client.ts';
import { decodeDataValue, encodeWrite, qualityOfStatus } from './decode.ts';
import { resolveNodeId } from './node-id.ts';
import { UntrustedServerCertificate } from './trust.ts';

/** A tag whose node id was found on the current connection. */
interface LiveTag {
  tag: OpcuaTag;
  nodeId: string;
}

/** Status names that mean "this node is not there (yet)" rather than "it is there but broken". */
const NOT_THERE = /^Bad(NodeIdUnknown|NodeIdInvalid)/;

export function createOpcuaDriver(resolved: ResolvedOpcua, deps: DriverDeps): Driver {
  const { chamber, tags } = resolved;
  const opts = chamber.opcua;
  const log = deps.log.child(`opcua:${chamber.id}`);
  const now = deps.now ?? Date.now;
  const publishingIntervalMs = opts.publishing_interval_ms ?? chamber.interval_ms;
  const tagsByName = new Map(tags.map((t) => [t.name, t]));

  const health: DriverHealth = {
    chamber: chamber.id,
    driver: 'opcua',
    endpoint: chamber.endpoint,
    state: 'offline',
    samples: 0,
    badSamples: 0,
    reconnects: 0,
    monitoredItems: 0,
  };
  let conn: OpcuaConnection | undefined;
  /** Tags being delivered on the current connection, by name (writes use their node id). */
  let live = new Map<string, LiveTag>();
  /** Tags not found on the current connection, with why, in profile order. */
  let missing = new Map<string, string>();
  let stopped = false;
  let everConnected = false;
  const abort = new AbortController();
  const stoppedSignal = new Promise<string>((resolve) =>
    abort.signal.addEventListener('abort', () => resolve('stopped'), { once: true }),
  );
  let loop: Promise<void> | undefined;
  /** Resolves start(): the first connection attempt has succeeded or failed. */
  let attempted: () => void = () => undefined;

  /** Status goes out (sink → MQTT, retained) only when the state or its reason changes. */
  const setStatus = (state: ChamberState, reason?: string) => {
    if (health.state === state && health.reason === reason) return;
    health.state = state;
    health.reason = reason;
    deps.sink.status(state, reason);
  };

  const emit = (samples: Sample[]) => {
    if (samples.length === 0 || stopped) return;
    for (const s of samples) {
      health.samples++;
      if (s.q === 'bad') health.badSamples++;
      if (health.lastSampleTs === undefined || s.ts > health.lastSampleTs) health.lastSampleTs = s.ts;
    }
    deps.sink.samples(samples);
  };

  const allBad = (reason: string) => emit(tags.map((t) => badSample(chamber.id, t.name, now(), reason)));

  /** Marks tags missing (one bad sample each when they become missing) and updates health. */
  const markMissing = (list: Array<{ tag: OpcuaTag; reason: string }>) => {
    const fresh = list.filter((m) => !missing.has(m.tag.name));
    for (const m of list) missing.set(m.tag.name, m.reason);
    emit(fresh.map((m) => badSample(chamber.id, m.tag.name, now(), m.reason)));
  };

  const markLive = (list: LiveTag[]) => {
    for (const lt of list) {
      live.set(lt.tag.name, lt);
      missing.delete(lt.tag.name);
    }
  };

  /** online/error and a reason that only changes when the set of missing tags (or why) changes. */
  const reportAvailability = () => {
    health.missingTags = missing.size ? tags.filter((t) => missing.has(t.name)).map((t) => t.name) : undefined;
    const problems = [...missing].map(([name, why]) => `${name}: ${why}`);
    if (live.size === 0) {
      setStatus('error', `no tag of ${chamber.endpoint} is readable: ${problems.slice(0, 3).join('; ')}`);
    } else {
      setStatus(
        'online',
        problems.length
          ? `${problems.length} of ${tags.length} tags unavailable: ${problems.slice(0, 3).join('; ')}`
          : undefined,
      );
    }
  };

  /** Node ids for the given tags against the server's current namespace array; the rest are missing. */
  async function resolveTags(
    c: OpcuaConnection,
    which: OpcuaTag[],
  ): Promise<{ found: LiveTag[]; notFound: Array<{ tag: OpcuaTag; reason: string }> }> {
    const nsArray = await c.namespaceArray();
    const found: LiveTag[] = [];
    const notFound: Array<{ tag: OpcuaTag; reason: string }> = [];
    for (const tag of which) {
      const r = resolveNodeId(tag.node, nsArray);
      if (r.ok) found.push({ tag, nodeId: r.nodeId });
      else notFound.push({ tag, reason: r.error });
    }
    return { found, notFound };
  }

  const decode = (lt: LiveTag | undefined, value: PlainDataValue, receivedAt: number): Sample[] =>
    lt ? [decodeDataValue(chamber.id, lt.tag, value, receivedAt)] : [];

  /** Subscription mode: the monitored items, by their subscription index (undefined = refused). */
  let monitored: Array<LiveTag | undefined> = [];

  async function monitor(sub: OpcuaSubscription, list: LiveTag[]): Promise<void> {
    if (list.length === 0) return;
    const { first, status } = await sub.add(list.map((l) => l.nodeId));
    const ok: LiveTag[] = [];
    const refused: Array<{ tag: OpcuaTag; reason: string }> = [];
    status.forEach((st, i) => {
      const lt = list[i]!;
      if (qualityOfStatus(st.statusCode) === 'bad') {
        refused.push({ tag: lt.tag, reason: `cannot monitor node ${lt.tag.node} (${lt.nodeId}): ${st.statusName}` });
      } else {
        monitored[first + i] = lt;
        ok.push(lt);
      }
    });
    markLive(ok);
    markMissing(refused);
    health.monitoredItems = monitored.filter(Boolean).length;
  }

  /** Poll mode: one read tells which nodes exist; the others are missing. */
  let polled: LiveTag[] = [];
  async function probe(c: OpcuaConnection, list: LiveTag[]): Promise<void> {
    if (list.length === 0) return;
    const values = await c.read(
      list.map((l) => l.nodeId),
      opts.batch_size,
    );
    const ok: LiveTag[] = [];
    const absent: Array<{ tag: OpcuaTag; reason: string }> = [];
    values.forEach((v, i) => {
      const lt = list[i]!;
      if (NOT_THERE.test(v.statusName))
        absent.push({ tag: lt.tag, reason: `node ${lt.tag.node} (${lt.nodeId}): ${v.statusName}` });
      else ok.push(lt);
    });
    polled = [...polled, ...ok];
    markLive(ok);
    markMissing(absent);
    health.requestsPerCycle = Math.ceil(polled.length / opts.batch_size);
  }

  /** Looks the missing tags up again on the same connection; found ones start delivering. */
  async function retryMissing(c: OpcuaConnection, sub: OpcuaSubscription | undefined): Promise<void> {
    const before = new Set(missing.keys());
    const { found, notFound } = await resolveTags(
      c,
      tags.filter((t) => missing.has(t.name)),
    );
    markMissing(notFound);
    if (sub) await monitor(sub, found);
    else await probe(c, found);
    const appeared = [...before].filter((name) => live.has(name));
    if (appeared.length) log.info('tags found on the server', { tags: appeared, stillMissing: missing.size });
    reportAvailability();
  }

  async function watchMissing(c: OpcuaConnection, sub: OpcuaSubscription | undefined): Promise<void> {
    while (!stopped && !c.lost && missing.size > 0) {
      await sleep(opts.resolve_interval_ms, abort.signal);
      if (stopped || c.lost) return;
      try {
        await retryMissing(c, sub);
      } catch (err) {
        if (c.lost || stopped) return;
        log.debug('looking up missing tags failed', { error: (err as Error).message });
      }
    }
  }

  async function pollUntilLost(c: OpcuaConnection): Promise<void> {
    while (!stopped && !c.lost) {
      const started = now();
      const list = polled;
      try {
        if (list.length > 0) {
          const values = await c.read(
            list.map((l) => l.nodeId),
            opts.batch_size,
          );
          emit(values.flatMap((value, i) => decode(list[i], value, now())));
        }
      } catch (err) {
        if (c.lost || stopped) return;
        const reason = `poll read failed: ${(err as Error).message}`;
        log.warn(reason);
        emit(list.map((l) => badSample(chamber.id, l.tag.name, now(), reason)));
      }
      await sleep(Math.max(0, chamber.interval_ms - (now() - started)), abort.signal);
    }
  }

  /** One connection's life: connect, resolve, subscribe or poll, wait until it is lost; returns why. */
  async function session(): Promise<string> {
    const c = await connectOpcua({
      endpoint: chamber.endpoint,
      securityMode: opts.security_mode,
      securityPolicy: opts.security_policy,
      serverTrust: opts.server_trust,
      chamber: chamber.id,
      auth: opts.auth,
      ...(deps.dataDir ? { pkiDir: clientPkiDir(deps.dataDir) } : {}),
    });
    const lost = new Promise<string>((resolve) => c.onLost(resolve));
    conn = c;
    try {
      if (everConnected) health.reconnects++;
      everConnected = true;
      live = new Map();
      missing = new Map();
      monitored = [];
      polled = [];
      const { found, notFound } = await resolveTags(c, tags);
      markMissing(notFound);
      let sub: OpcuaSubscription | undefined;
      if (opts.mode === 'subscription') {
        sub = await c.subscribe({
          publishingIntervalMs,
          samplingIntervalMs: opts.sampling_interval_ms ?? publishingIntervalMs,
          queueSize: opts.queue_size,
          batchSize: opts.batch_size,
          onValues: (changes) => {
            const at = now();
            emit(changes.flatMap(({ index, value }) => decode(monitored[index], value, at)));
          },
        });
        await monitor(sub, found);
        log.info('subscribed', {
          items: health.monitoredItems,
          missing: missing.size,
          publishingIntervalMs: sub.publishingIntervalMs,
        });
      } else {
        await probe(c, found);
      }
      reportAvailability();
      backoff.reset();
      failures = 0;
      attempted();
      const work: Array<Promise<unknown>> = [watchMissing(c, sub)];
      if (opts.mode === 'poll') work.push(pollUntilLost(c));
      void Promise.all(work).catch((err) => log.warn('driver task failed', { error: (err as Error).message }));
      const reason = await Promise.race([lost, stoppedSignal]);
      // Report before closing: closing a connection to a frozen server can take seconds.
      if (!stopped) {
        log.warn('connection lost', { reason });
        setStatus('offline', reason);
        allBad(reason);
      }
      return reason;
    } finally {
      conn = undefined;
      live = new Map();
      missing = new Map();
      monitored = [];
      polled = [];
      health.monitoredItems = 0;
      health.missingTags = undefined;
      health.requestsPerCycle = undefined;
      await c.close();
    }
  }

  // Capped at 5 s so that a restarted server is found again well within 15 s.
  const backoff = new Backoff(500, 5000);
  /** Consecutive failed connection attempts; logged at 1, 2, 4, 8, … (and on a new reason), not each time. */
  let failures = 0;
  let lastFailure: string | undefined;

  async function supervise(): Promise<void> {
    while (!stopped) {
      try {
        await session();
        if (stopped) break;
      } catch (err) {
        if (stopped) break;
        const msg = (err as Error).message;
        // A missing credential or an untrusted PLC certificate will not fix itself by
        // retrying: report it as an error (retries go on, slowly, for when it is fixed).
        const state: ChamberState =
          /auth:/.test(msg) || err instanceof UntrustedServerCertificate ? 'error' : 'offline';
        setStatus(state, msg);
        failures++;
        if (msg !== lastFailure || (failures & (failures - 1)) === 0) {
          log.warn(`connect failed (attempt ${failures}; retrying with backoff up to 5 s)`, { error: msg });
        }
        lastFailure = msg;
      }
      attempted();
      await sleep(backoff.next(), abort.signal);
    }
  }

  return {
    chamber: chamber.id,
    start() {
      if (loop) return Promise.resolve();
      const first = new Promise<void>((resolve) => {
        attempted = resolve;
      });
      loop = supervise();
      return first;
    },
    async stop() {
      stopped = true;
      abort.abort();
      attempted();
      await loop;
      setStatus('offline', 'driver stopped');
    },
    async write(name, value) {
      const tag = tagsByName.get(name);
      if (!tag)
        throw new Error(`chamber ${chamber.id}: no tag "${name}" (known: ${[...tagsByName.keys()].join(', ')})`);
      const raw = encodeWrite(tag, value);
      const c = conn;
      const lt = live.get(name);
      if (!c || c.lost)
        throw new Error(
          `chamber ${chamber.id}: cannot write "${name}": not connected to ${chamber.endpoint} (${health.reason ?? health.state})`,
        );
      if (!lt)
        throw new Error(
          `chamber ${chamber.id}: cannot write "${name}": node ${tag.node} is not available on ${chamber.endpoint}${missing.has(name) ? ` (${missing.get(name)})` : ''}`,
        );
      const res = await c.write(lt.nodeId, tag.type, raw);
      if (qualityOfStatus(res.statusCode) !== 'good') {
        throw new Error(
          `chamber ${chamber.id}: write ${name} = ${JSON.stringify(value)} (node ${tag.node}) refused by the server: ${res.statusName}`,
        );
      }
      log.info('wrote', { tag: name, value, raw });
    },
    health: () => ({ ...health, ...(health.missingTags ? { missingTags: [...health.missingTags] } : {}) }),
  };
}

/**
 * OPC UA driver for one chamber: a supervisor loop that connects, resolves `nsu=` node
 * ids against the server's current namespace array, then either subscribes (default)
 * or polls, and on any loss of the connection starts over with capped exponential
 * backoff — new session, new subscription, new monitored items.
 */
import type { OpcuaTag } from '../../config/profile-schema.ts';
import { Backoff, sleep } from '../../core/backoff.ts';
import { badSample, type Sample } from '../../core/sample.ts';
import type { ChamberState, Driver, DriverDeps, DriverHealth, ResolvedOpcua } from '../types.ts';
import { connectOpcua, type OpcuaConnection, type PlainDataValue } from './client.ts';
import { decodeDataValue, encodeWrite, qualityOfStatus } from './decode.ts';
import { resolveNodeId } from './node-id.ts';

/** A tag whose node id was found on the current connection. */
interface LiveTag {
  tag: OpcuaTag;
  nodeId: string;
}

export function createOpcuaDriver(resolved: ResolvedOpcua, deps: DriverDeps): Driver {
  const { chamber, tags } = resolved;
  const opts = chamber.opcua;
  const log = deps.log.child(`opcua:${chamber.id}`);
  const now = deps.now ?? Date.now;
  const publishingIntervalMs = opts.publishing_interval_ms ?? chamber.interval_ms;
  const tagsByName = new Map(tags.map((t) => [t.name, t]));

  const health: DriverHealth = {
    chamber: chamber.id, driver: 'opcua', endpoint: chamber.endpoint, state: 'offline',
    samples: 0, badSamples: 0, reconnects: 0, monitoredItems: 0,
  };
  let conn: OpcuaConnection | undefined;
  let live = new Map<string, LiveTag>();
  let stopped = false;
  let everConnected = false;
  const abort = new AbortController();
  const stoppedSignal = new Promise<string>((resolve) => abort.signal.addEventListener('abort', () => resolve('stopped'), { once: true }));
  let loop: Promise<void> | undefined;
  /** Resolves start(): the first connection attempt has succeeded or failed. */
  let attempted: () => void = () => undefined;

  const setStatus = (state: ChamberState, reason?: string) => {
    if (health.state === state && health.reason === reason) return;
    health.state = state;
    health.reason = reason;
    log.info(`state ${state}`, reason ? { reason } : undefined);
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

  /** Resolves every tag's node id; tags that cannot be resolved get a bad sample naming why. */
  async function resolveTags(c: OpcuaConnection): Promise<{ live: LiveTag[]; problems: string[] }> {
    const nsArray = await c.namespaceArray();
    const ok: LiveTag[] = [];
    const problems: string[] = [];
    const bad: Sample[] = [];
    for (const tag of tags) {
      const r = resolveNodeId(tag.node, nsArray);
      if (r.ok) ok.push({ tag, nodeId: r.nodeId });
      else {
        problems.push(`${tag.name}: ${r.error}`);
        bad.push(badSample(chamber.id, tag.name, now(), r.error));
      }
    }
    emit(bad);
    return { live: ok, problems };
  }

  const decodeBatch = (list: LiveTag[], changes: Array<{ index: number; value: PlainDataValue }>, receivedAt: number): Sample[] =>
    changes.flatMap(({ index, value }) => {
      const lt = list[index];
      return lt ? [decodeDataValue(chamber.id, lt.tag, value, receivedAt)] : [];
    });

  async function subscribe(c: OpcuaConnection, list: LiveTag[], problems: string[]): Promise<void> {
    const sub = await c.subscribe({
      publishingIntervalMs,
      samplingIntervalMs: opts.sampling_interval_ms ?? publishingIntervalMs,
      queueSize: opts.queue_size,
      batchSize: opts.batch_size,
      nodeIds: list.map((l) => l.nodeId),
      onValues: (changes) => emit(decodeBatch(list, changes, now())),
    });
    const bad: Sample[] = [];
    let good = 0;
    sub.itemStatus.forEach((st, i) => {
      const lt = list[i]!;
      if (qualityOfStatus(st.statusCode) === 'bad') {
        const reason = `cannot monitor node ${lt.tag.node} (${lt.nodeId}): ${st.statusName}`;
        problems.push(`${lt.tag.name}: ${reason}`);
        bad.push(badSample(chamber.id, lt.tag.name, now(), reason));
      } else good++;
    });
    health.monitoredItems = good;
    emit(bad);
    log.info('subscribed', { items: good, failed: list.length - good, publishingIntervalMs: sub.publishingIntervalMs });
  }

  async function pollUntilLost(c: OpcuaConnection, list: LiveTag[]): Promise<void> {
    const nodeIds = list.map((l) => l.nodeId);
    health.requestsPerCycle = Math.ceil(nodeIds.length / opts.batch_size);
    while (!stopped && !c.lost) {
      const started = now();
      try {
        const values = await c.read(nodeIds, opts.batch_size);
        emit(decodeBatch(list, values.map((value, index) => ({ index, value })), now()));
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
      auth: opts.auth,
    });
    const lost = new Promise<string>((resolve) => c.onLost(resolve));
    conn = c;
    try {
      if (everConnected) health.reconnects++;
      everConnected = true;
      const { live: list, problems } = await resolveTags(c);
      live = new Map(list.map((l) => [l.tag.name, l]));
      if (opts.mode === 'subscription' && list.length > 0) await subscribe(c, list, problems);
      if (list.length === 0 || problems.length === tags.length) {
        setStatus('error', `no tag of ${chamber.endpoint} is readable: ${problems.slice(0, 3).join('; ')}`);
      } else {
        setStatus('online', problems.length ? `${problems.length} of ${tags.length} tags unavailable: ${problems.slice(0, 3).join('; ')}` : undefined);
      }
      backoff.reset();
      attempted();
      if (opts.mode === 'poll') await Promise.race([pollUntilLost(c, list), lost, stoppedSignal]);
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
      health.monitoredItems = 0;
      health.requestsPerCycle = undefined;
      await c.close();
    }
  }

  // Capped at 5 s so that a restarted server is found again well within 15 s.
  const backoff = new Backoff(500, 5000);

  async function supervise(): Promise<void> {
    while (!stopped) {
      try {
        await session();
        if (stopped) break;
      } catch (err) {
        if (stopped) break;
        const msg = (err as Error).message;
        // A missing credential will not fix itself by retrying faster: report it as an error.
        const state: ChamberState = /auth:/.test(msg) ? 'error' : 'offline';
        setStatus(state, msg);
        log.debug('connect failed', { error: msg });
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
      if (!tag) throw new Error(`chamber ${chamber.id}: no tag "${name}" (known: ${[...tagsByName.keys()].join(', ')})`);
      const raw = encodeWrite(tag, value);
      const c = conn;
      const lt = live.get(name);
      if (!c || c.lost) throw new Error(`chamber ${chamber.id}: cannot write "${name}": not connected to ${chamber.endpoint} (${health.reason ?? health.state})`);
      if (!lt) throw new Error(`chamber ${chamber.id}: cannot write "${name}": node ${tag.node} is not available on ${chamber.endpoint}`);
      const res = await c.write(lt.nodeId, tag.type, raw);
      if (qualityOfStatus(res.statusCode) !== 'good') {
        throw new Error(`chamber ${chamber.id}: write ${name} = ${JSON.stringify(value)} (node ${tag.node}) refused by the server: ${res.statusName}`);
      }
      log.info('wrote', { tag: name, value, raw });
    },
    health: () => ({ ...health }),
  };
}

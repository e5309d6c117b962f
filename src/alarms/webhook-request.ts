/**
 * One delivery attempt of a webhook: the JSON body, its HMAC-SHA256 signature, the POST
 * (Node's fetch, no redirects followed) and what the answer means for the retry policy:
 *
 * - 2xx → delivered;
 * - network error, timeout, 408, 429, 5xx → retried (Retry-After honoured);
 * - any other status (3xx, 4xx) → refused for good: dead-lettered without retrying.
 */
import { createHmac } from 'node:crypto';
import { VERSION } from '../core/version.ts';
import type { AlarmEvent } from './model.ts';

/** What a receiver gets: the alarm event plus the webhook's name and the delivery id (the same for every attempt). */
export interface WebhookBody extends AlarmEvent {
  webhook: string;
  delivery_id: string;
}

export type AttemptOutcome =
  | { kind: 'delivered'; status: number }
  | { kind: 'retry'; status?: number; error: string; retryAfterMs?: number }
  | { kind: 'refused'; status: number; error: string };

export const SIGNATURE_HEADER = 'X-Octopus-Signature';

/** `sha256=<hex>`: HMAC-SHA256 of the exact body bytes with the shared secret. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** A target URL split into what is requested and what is shown: credentials go into a Basic header; logs show the origin only (paths of chat webhooks carry their secret). */
export interface Target {
  url: string;
  shown: string;
  authorization?: string;
}

export function parseTarget(raw: string): Target {
  const u = new URL(raw);
  let authorization: string | undefined;
  if (u.username || u.password) {
    authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
    u.username = '';
    u.password = '';
  }
  return { url: u.toString(), shown: u.origin, ...(authorization ? { authorization } : {}) };
}

/** Retry-After in ms (delta-seconds or an HTTP date), undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** The first bytes of a response body as text (for the error message); the rest is discarded. */
async function head(res: Response, max = 300): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < max) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, max).replace(/\s+/g, ' ').trim();
}

export interface AttemptRequest {
  target: Target;
  body: string;
  deliveryId: string;
  event: AlarmEvent['event'];
  attempt: number;
  secret?: string;
  timeoutMs: number;
  /** Aborts the attempt (the notifier is closing). */
  signal?: AbortSignal;
  now: number;
}

export async function attempt(r: AttemptRequest): Promise<AttemptOutcome> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': `octopus/${VERSION}`,
    'x-octopus-delivery': r.deliveryId,
    'x-octopus-event': r.event,
    'x-octopus-attempt': String(r.attempt),
  };
  if (r.secret !== undefined) headers[SIGNATURE_HEADER.toLowerCase()] = signature(r.secret, r.body);
  if (r.target.authorization) headers.authorization = r.target.authorization;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Error(`no answer within ${r.timeoutMs} ms`)), r.timeoutMs);
  const onAbort = () => ctl.abort(new Error('notifier closing'));
  r.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await fetch(r.target.url, {
      method: 'POST',
      headers,
      body: r.body,
      redirect: 'manual',
      signal: ctl.signal,
    });
    const text = await head(res);
    const s = res.status;
    if (s >= 200 && s < 300) return { kind: 'delivered', status: s };
    const error = `HTTP ${s} from ${r.target.shown}${text ? `: ${text}` : ''}`;
    if (s === 408 || s === 429 || s >= 500)
      return { kind: 'retry', status: s, error, retryAfterMs: retryAfterMs(res.headers.get('retry-after'), r.now) };
    if (s >= 300 && s < 400)
      return {
        kind: 'refused',
        status: s,
        error: `${error} (redirect to ${res.headers.get('location') ?? '?'} not followed: configure the final URL)`,
      };
    return { kind: 'refused', status: s, error };
  } catch (err) {
    const reason = ctl.signal.aborted ? (ctl.signal.reason as Error).message : describeNetworkError(err);
    return { kind: 'retry', error: `${r.target.shown}: ${reason}` };
  } finally {
    clearTimeout(timer);
    r.signal?.removeEventListener('abort', onAbort);
  }
}

/** fetch's TypeError("fetch failed") hides the cause (ECONNREFUSED…): name it. */
function describeNetworkError(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e.cause;
  if (cause?.code)
    return `${cause.code}${cause.message && !cause.message.includes(cause.code) ? ` (${cause.message})` : ''}`;
  return cause?.message ?? e.message ?? String(err);
}

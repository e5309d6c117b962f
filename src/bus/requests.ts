import type { z } from 'zod';

/** A request payload, validated; or why it is refused (with its id when one could be read). */
export type ParsedRequest<T> = { ok: true; data: T } | { ok: false; reason: string; id: string | null };

/** Largest request payload read; anything longer is refused unread. */
export const MAX_REQUEST_BYTES = 4096;

/**
 * Parses a setpoint or command payload with its zod schema. Refused: retained messages
 * (a request must not be replayed to the next subscriber), oversized, non-JSON or
 * schema-invalid payloads; the reason names the field and the value.
 */
export function parseRequest<S extends z.ZodType>(
  schema: S,
  payload: Buffer,
  retained: boolean,
): ParsedRequest<z.infer<S>> {
  if (payload.length > MAX_REQUEST_BYTES)
    return { ok: false, reason: `payload is ${payload.length} bytes (at most ${MAX_REQUEST_BYTES})`, id: null };
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch {
    return {
      ok: false,
      reason: `payload is not JSON (got ${JSON.stringify(payload.toString('utf8').slice(0, 60))})`,
      id: null,
    };
  }
  const rawId =
    body && typeof body === 'object' && 'id' in body && typeof body.id === 'string' ? body.id.slice(0, 128) : null;
  if (retained)
    return { ok: false, reason: 'retained requests are not executed (publish with retain=false)', id: rawId };
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    return {
      ok: false,
      reason: `${i.path.join('.') || 'payload'}: ${i.message} (got ${JSON.stringify(body).slice(0, 80)})`,
      id: rawId,
    };
  }
  return { ok: true, data: parsed.data as z.infer<S> };
}

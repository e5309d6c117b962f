import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { AuditEntry } from '../../auth/audit.ts';
import { atLeast } from '../../auth/roles.ts';
import type { UserStore } from '../../auth/users.ts';
import { SetRequest } from '../../bus/payload.ts';
import { parseRequest, MAX_REQUEST_BYTES } from '../../bus/requests.ts';
import type { SetpointAttempt, SetpointOutcome } from '../../gateway/setpoints.ts';
import { actor, requireRole } from '../hooks/auth.ts';

/** A writable tag of a chamber, as the live view's setpoint control offers it. */
export interface SetpointControl {
  tag: string;
  type: string;
  unit?: string;
  min?: number;
  max?: number;
}

export interface SetpointRouteOptions {
  users: UserStore;
  /** The gateway's setpoint path (validated, written, audited). */
  setpoint: (call: SetpointAttempt) => Promise<SetpointOutcome>;
  /** Records attempts refused for their role (the gateway records the rest). */
  audit?: (e: Omit<AuditEntry, 'ts'>) => void;
}

const Params = z.object({ chamber: z.string().min(1).max(64), tag: z.string().min(1).max(128) });
const Result = z.object({
  status: z.enum(['accepted', 'refused']),
  chamber: z.string(),
  tag: z.string(),
  value: z.union([z.number(), z.boolean(), z.string()]).optional(),
  reason: z.string().optional(),
  id: z.string().nullable(),
  by: z.string(),
});

/**
 * `POST /api/chambers/:chamber/setpoints/:tag` `{"value": …, "id"?: …}` (operator and
 * up): the same validation, PLC write and audit entry as an MQTT set request; 200 with
 * the accepted value, 422 with the reason when refused (malformed bodies included: they
 * are audited too). Only `application/json` bodies: a cross-site form cannot send one,
 * and cookie sessions also need the x-csrf-token header (src/web/session.ts).
 */
export const setpointRoutes: FastifyPluginAsync<SetpointRouteOptions> = async (app, o) => {
  // Raw body: the route parses it itself so that a malformed request is audited like on MQTT.
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit: MAX_REQUEST_BYTES },
    (_req, body, done) => done(null, body),
  );
  app.post(
    '/api/chambers/:chamber/setpoints/:tag',
    {
      // Signed in (401 otherwise); the operator role is checked below so that a refused
      // attempt by a weaker role is audited with its author.
      onRequest: requireRole(o.users, 'viewer'),
      schema: {
        tags: ['chambers'],
        summary: 'Write a setpoint to a chamber PLC (operator); audited',
        description:
          'Body `{"value": number|boolean|string, "id"?: string}`. 200 accepted (written), 422 refused with the reason. The same contract as MQTT `<prefix>/<chamber>/set/<tag>/<user>`.',
        params: Params,
        security: [{ bearer: [] }],
        response: { 200: Result, 403: z.object({ error: z.string() }), 422: Result },
      },
    },
    async (req, reply) => {
      const { chamber, tag } = req.params as z.infer<typeof Params>;
      const who = actor(req);
      const by = req.principal?.user ?? 'anonymous';
      const role = req.principal?.role ?? 'viewer';
      if (!atLeast(role, 'operator')) {
        try {
          o.audit?.({
            who,
            action: 'setpoint',
            what: `${chamber}/${tag}`,
            detail: { value: null, result: `refused: needs role operator (${by} is ${role})` },
          });
        } catch (err) {
          req.log.error(`audit log: cannot record a refused setpoint by ${by}: ${(err as Error).message}`);
        }
        return reply.code(403).send({ error: `needs role operator or higher (user "${by}" is ${role})` });
      }
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const parsed = parseRequest(SetRequest, body, false);
      const id = parsed.ok ? (parsed.data.id ?? null) : parsed.id;
      const outcome: SetpointOutcome = parsed.ok
        ? await o.setpoint({ chamber, tag, value: parsed.data.value, id, who })
        : await o.setpoint({ chamber, tag, id, who, malformed: parsed.reason });
      if (outcome.status === 'accepted')
        return reply.code(200).send({ status: 'accepted', chamber, tag, value: outcome.value, id, by });
      return reply.code(422).send({ status: 'refused', chamber, tag, reason: outcome.reason, id, by });
    },
  );
};

import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { AuditEntry } from '../../auth/audit.ts';
import { atLeast } from '../../auth/roles.ts';
import type { UserStore } from '../../auth/users.ts';
import { Alarm, AlarmEvent, type AlarmService } from '../../alarms/model.ts';
import { AlarmAckBody, AlarmHistoryQuery, AlarmParams, ErrorReply, toMs } from '../api-schemas.ts';
import { actor, requireRole } from '../hooks/auth.ts';

export interface AlarmRouteOptions {
  users: UserStore;
  /** The collector's alarm engine when it runs in this process; without it the routes answer 503. */
  alarms?: AlarmService;
  /** Records acknowledgements refused for their role (the engine records the accepted ones). */
  audit?: (e: Omit<AuditEntry, 'ts'>) => void;
}

const NO_ENGINE =
  'no alarm engine in this process: alarms are evaluated by the collector (collector.enabled and alarms.enabled in the configuration); with a separate `octopus collect`, read them on MQTT <prefix>/+/alarm and acknowledge on <prefix>/alarms/ack/<user>';

/**
 * The alarms API (docs/alarms.md): `GET /api/alarms` (active), `GET /api/alarms/history`,
 * `POST /api/alarms/:id/ack` (operator or admin, with a comment; audited). Reading needs
 * any signed-in role.
 */
export const alarmRoutes: FastifyPluginAsync<AlarmRouteOptions> = async (app, o) => {
  const engine = o.alarms;
  app.get(
    '/api/alarms',
    {
      onRequest: requireRole(o.users, 'viewer'),
      schema: {
        tags: ['alarms'],
        summary: 'Active alarms of every chamber (raised or acknowledged, not cleared), newest first',
        security: [{ bearer: [] }],
        response: { 200: z.object({ alarms: z.array(Alarm) }), 503: ErrorReply },
      },
    },
    async (_req, reply) => {
      if (!engine) return reply.code(503).send({ error: NO_ENGINE });
      return { alarms: engine.active() };
    },
  );

  app.get(
    '/api/alarms/history',
    {
      onRequest: requireRole(o.users, 'viewer'),
      schema: {
        tags: ['alarms'],
        summary: 'Alarm events (raised, acknowledged, cleared), newest first',
        querystring: AlarmHistoryQuery,
        security: [{ bearer: [] }],
        response: { 200: z.object({ events: z.array(AlarmEvent) }), 503: ErrorReply },
      },
    },
    async (req, reply) => {
      if (!engine) return reply.code(503).send({ error: NO_ENGINE });
      const q = req.query as z.infer<typeof AlarmHistoryQuery>;
      return {
        events: engine.history({
          limit: q.limit,
          ...(q.since ? { since: toMs(q.since) } : {}),
          ...(q.chamber ? { chamber: q.chamber } : {}),
        }),
      };
    },
  );

  app.post(
    '/api/alarms/:id/ack',
    {
      // Signed in (401 otherwise); the operator role is checked below so that a refused
      // attempt by a weaker role is audited with its author.
      onRequest: requireRole(o.users, 'viewer'),
      schema: {
        tags: ['alarms'],
        summary: 'Acknowledge an active alarm with a comment (operator or admin); audited',
        description:
          '200 with the acknowledged alarm; 403 for viewers and researchers; 404 unknown id; 409 already acknowledged or cleared; 503 no engine here, or the audit log cannot be written. The same as MQTT `<prefix>/alarms/ack/<user>`.',
        params: AlarmParams,
        body: AlarmAckBody,
        security: [{ bearer: [] }],
        response: {
          200: z.object({ alarm: Alarm }),
          403: ErrorReply,
          404: ErrorReply,
          409: ErrorReply,
          503: ErrorReply,
        },
      },
    },
    async (req, reply) => {
      const { id } = req.params as z.infer<typeof AlarmParams>;
      const { comment } = req.body as z.infer<typeof AlarmAckBody>;
      const who = actor(req);
      const by = req.principal?.user ?? 'anonymous';
      const role = req.principal?.role ?? 'viewer';
      if (!atLeast(role, 'operator')) {
        try {
          o.audit?.({
            who,
            action: 'alarm_ack',
            what: id,
            detail: { comment, result: `refused: needs role operator (${by} is ${role})` },
          });
        } catch (err) {
          req.log.error(`audit log: cannot record a refused acknowledgement by ${by}: ${(err as Error).message}`);
        }
        return reply.code(403).send({ error: `needs role operator or higher (user "${by}" is ${role})` });
      }
      if (!engine) return reply.code(503).send({ error: NO_ENGINE });
      const r = await engine.acknowledge(id, who, comment);
      if (!r.ok) return reply.code(r.status).send({ error: r.error });
      return { alarm: r.alarm };
    },
  );
};

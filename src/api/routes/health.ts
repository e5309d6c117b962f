import type { FastifyPluginAsync } from 'fastify';
import type { HealthReport } from '../../core/health.ts';

/** GET /api/health: 200 {"status":"ok",…}; 503 with the same body when degraded. */
export const healthRoutes: FastifyPluginAsync<{ health: () => HealthReport }> = async (app, opts) => {
  app.get('/api/health', async (_req, reply) => {
    const report = opts.health();
    return reply.code(report.status === 'ok' ? 200 : 503).send(report);
  });
};

import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from '../../core/metrics.ts';

/** GET /metrics in the Prometheus text exposition format. */
export const metricsRoutes: FastifyPluginAsync<{ registry: Registry }> = async (app, opts) => {
  app.get('/metrics', async (_req, reply) => {
    const body = await opts.registry.metrics();
    return reply.type(opts.registry.contentType).send(body);
  });
};

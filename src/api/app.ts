import Fastify, { type FastifyInstance } from 'fastify';
import type { Metric } from 'prom-client';
import type { HealthReport } from './health-schema.ts';
import { healthRoutes } from './routes/health.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { createMetrics } from './metrics.ts';

export interface AppDeps {
  health: () => HealthReport;
  logger?: boolean;
  /** Metrics observed elsewhere (e.g. the InfluxDB write latency histogram). */
  metrics?: Metric[];
}

/** The HTTP app: external plugins, then app plugins, then routes. Tests call `inject`. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({ logger: deps.logger ?? false });
  const registry = createMetrics(deps.health, deps.metrics);
  await app.register(healthRoutes, { health: deps.health });
  await app.register(metricsRoutes, { registry });
  return app;
}

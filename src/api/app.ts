import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Metric } from 'prom-client';
import type { AuditLog } from '../auth/audit.ts';
import type { UserStore } from '../auth/users.ts';
import type { ExperimentStore } from '../experiments/store.ts';
import type { HealthReport } from './health-schema.ts';
import { installErrorHandler } from './plugins/errors.ts';
import { adminRoutes } from './routes/admin.ts';
import { downloadRoutes, type RunFileResolver } from './routes/downloads.ts';
import { experimentRoutes } from './routes/experiments.ts';
import { healthRoutes } from './routes/health.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { createMetrics } from './metrics.ts';

export type { RunFileResolver } from './routes/downloads.ts';

export interface AppDeps {
  health: () => HealthReport;
  logger?: boolean;
  /** Metrics observed elsewhere (e.g. the InfluxDB write latency histogram). */
  metrics?: Metric[];
  /**
   * The researcher API (experiments, runs, downloads, admin): mounted when `experiments`
   * and `users` are given; `audit` is then required (every download is logged):
   * `UserStore.forDataDir(dataDir)`, `AuditLog.forDataDir(dataDir)`.
   */
  experiments?: ExperimentStore;
  users?: UserStore;
  audit?: AuditLog;
  /** Where a run's NetCDF is now (open runs may be in a working folder); default `<experiment dir>/<run.file>`. */
  runFile?: RunFileResolver;
  version?: string;
}

/** The HTTP app: external plugins, then app plugins, then routes. Tests call `inject`. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({ logger: deps.logger ?? false });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandler(app);
  await app.register(swagger, {
    openapi: {
      info: { title: 'Octopus API', description: 'Climate-chamber gateway: health, metrics, experiments, runs and data downloads. Send `Authorization: Bearer <token>`; roles viewer < researcher < operator < admin (docs/api.md).', version: deps.version ?? '0.1.0' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API token (octopus token create <user>) or OCTOPUS_ADMIN_TOKEN' } } },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  const registry = createMetrics(deps.health, deps.metrics);
  await app.register(healthRoutes, { health: deps.health });
  await app.register(metricsRoutes, { registry });
  if (deps.experiments && deps.users) {
    const audit = deps.audit;
    if (!audit) throw new Error('buildApp: the experiments API needs an audit log (AppDeps.audit)');
    await app.register(experimentRoutes, { store: deps.experiments, users: deps.users, audit });
    await app.register(downloadRoutes, { store: deps.experiments, users: deps.users, audit, runFile: deps.runFile });
    await app.register(adminRoutes, { users: deps.users, audit });
  }
  return app;
}

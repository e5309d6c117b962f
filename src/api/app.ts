import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Metric } from '../core/metrics.ts';
import type { AuditLog } from '../auth/audit.ts';
import type { UserStore } from '../auth/users.ts';
import type { ExperimentStore } from '../experiments/store.ts';
import type { HealthReport } from '../core/health.ts';
import { installErrorHandler } from './hooks/errors.ts';
import { installSecurityHeaders } from './hooks/security-headers.ts';
import { HttpConfig } from '../config/instance-schema.ts';
import { SignInGuard } from '../web/sign-in-guard.ts';
import { webSignInRoutes } from '../web/routes/signin.ts';
import type { z } from 'zod';
import { adminRoutes } from './routes/admin.ts';
import { downloadRoutes, type RunFileResolver } from './routes/downloads.ts';
import { experimentRoutes } from './routes/experiments.ts';
import { runReportRoutes } from './routes/run-reports.ts';
import type { ToleranceSource } from '../fidelity/plan.ts';
import { healthRoutes } from './routes/health.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { BundleJobs, bundleRoutes } from './routes/bundles.ts';
import { webAdminRoutes } from '../web/routes/admin.ts';
import { webLiveRoutes } from '../web/routes/live.ts';
import { webAlarmRoutes } from '../web/routes/alarms.ts';
import { setpointRoutes, type SetpointControl } from './routes/setpoints.ts';
import { alarmRoutes } from './routes/alarms.ts';
import type { AlarmService } from '../alarms/model.ts';
import type { SetpointAttempt, SetpointOutcome } from '../gateway/setpoints.ts';
import { webPageRoutes } from '../web/routes/experiments.ts';
import { webStaticRoutes } from '../web/routes/static.ts';
import { subsetRoutes } from '../web/routes/subset.ts';
import { GrafanaLinks } from '../web/grafana.ts';
import { LiveValues } from '../web/live.ts';
import { cookieToBearer } from '../web/session.ts';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
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
  /** The configured chambers' tolerances (treatment fidelity of open runs); without it, runs are judged from their files' attributes. */
  tolerances?: ToleranceSource;
  version?: string;
  /** Latest chamber values for the live page (`GET /api/live`); fed by the caller (collector or MQTT). */
  live?: LiveValues;
  /** Where whole-experiment zips are prepared; default `<data_dir>/bundles` (next to the audit log's `state/`). */
  bundlesDir?: string;
  /** How long a finished zip stays downloadable; default OCTOPUS_BUNDLE_TTL_S or 24 h. */
  bundleTtlMs?: number;
  /** Slows bundle preparation (ms pause per 256 KiB read): for tests that watch the progress bar. */
  bundleThrottleMs?: number;
  /** Grafana links (default: OCTOPUS_GRAFANA_URL + dashboards/generated uids). */
  grafana?: GrafanaLinks;
  /** The gateway's setpoint path: mounts `POST /api/chambers/:chamber/setpoints/:tag` (operator). */
  setpoint?: (call: SetpointAttempt) => Promise<SetpointOutcome>;
  /** Writable tags per chamber, offered by the live view's setpoint control to operators. */
  setpointControls?: Record<string, SetpointControl[]>;
  /** The `http:` section of the configuration (trusted proxies, sign-in limits, registrations, bundle quota); defaults as documented. */
  http?: z.input<typeof HttpConfig>;
  /** The collector's alarm engine when it runs in this process: `/api/alarms…` (answering 503 without it) and the alarm page's active alarms, history and acknowledgement. */
  alarms?: AlarmService;
  /** Clock of the sign-in throttles (ms); tests move it instead of sleeping. */
  now?: () => number;
}

function readPem(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`${key}: cannot read "${path}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** The HTTP app: external plugins, then app plugins, then routes. Tests call `inject`. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const http = HttpConfig.parse(deps.http ?? {});
  // X-Forwarded-* are believed only from the configured proxies (req.ip, req.protocol).
  const app = Fastify({
    logger: deps.logger ?? false,
    ...(http.trusted_proxies.length ? { trustProxy: http.trusted_proxies } : {}),
    ...(http.tls
      ? {
          https: {
            cert: readPem('http.tls.cert_file', http.tls.cert_file),
            key: readPem('http.tls.key_file', http.tls.key_file),
          },
        }
      : {}),
    // The HTTPS server has another Node type; routes and hooks are the same, hence the cast.
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandler(app);
  installSecurityHeaders(app);
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Octopus API',
        description:
          'Climate-chamber gateway: health, metrics, experiments, runs and data downloads. Send `Authorization: Bearer <token>`; roles viewer < researcher < operator < admin (docs/api.md).',
        version: deps.version ?? '0.1.0',
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'API token (octopus token create <user>); OCTOPUS_ADMIN_TOKEN only for POST /api/setup/admin',
          },
        },
      },
    },
    transform: jsonSchemaTransform,
  });
  // No validator badge: it would load an image from validator.swagger.io (the CSP allows this origin only).
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { validatorUrl: null } });
  const registry = createMetrics(deps.health, deps.metrics);
  await app.register(healthRoutes, { health: deps.health });
  await app.register(metricsRoutes, { registry });
  if (deps.experiments && deps.users) {
    const audit = deps.audit;
    if (!audit) throw new Error('buildApp: the experiments API needs an audit log (AppDeps.audit)');
    // web page: sessions are API tokens in a cookie (src/web/session.ts)
    app.addHook('onRequest', async (req) => cookieToBearer(req));
    await app.register(experimentRoutes, { store: deps.experiments, users: deps.users, audit });
    await app.register(downloadRoutes, { store: deps.experiments, users: deps.users, audit, runFile: deps.runFile });
    await app.register(runReportRoutes, {
      store: deps.experiments,
      users: deps.users,
      runFile: deps.runFile,
      tolerances: deps.tolerances,
    });
    const guard = new SignInGuard(http.sign_in, deps.now);
    await app.register(adminRoutes, { users: deps.users, audit, guard });
    const jobs = new BundleJobs(deps.bundlesDir ?? join(dirname(dirname(audit.file)), 'bundles'), deps.experiments, {
      ttlMs: deps.bundleTtlMs ?? Number(process.env.OCTOPUS_BUNDLE_TTL_S || 86_400) * 1000,
      runFile: deps.runFile,
      audit,
      throttleMs: deps.bundleThrottleMs,
      maxRunningPerUser: http.bundles.max_running_per_user,
      maxBytesPerUser: http.bundles.max_bytes_per_user,
    });
    app.addHook('onClose', async () => jobs.close());
    await app.register(bundleRoutes, { jobs, users: deps.users, audit });
    await app.register(subsetRoutes, { store: deps.experiments, users: deps.users, audit, runFile: deps.runFile });
    const grafana = deps.grafana ?? new GrafanaLinks();
    await app.register(webStaticRoutes);
    await app.register(webSignInRoutes, {
      users: deps.users,
      audit,
      guard,
      maxPendingRegistrations: http.max_pending_registrations,
    });
    await app.register(webPageRoutes, {
      store: deps.experiments,
      users: deps.users,
      audit,
      grafana,
      runFile: deps.runFile,
      tolerances: deps.tolerances,
    });
    await app.register(webAdminRoutes, { users: deps.users, audit });
    const live = deps.live ?? new LiveValues();
    await app.register(webLiveRoutes, {
      live,
      users: deps.users,
      store: deps.experiments,
      grafana,
      controls: deps.setpoint ? deps.setpointControls : undefined,
    });
    await app.register(alarmRoutes, { users: deps.users, alarms: deps.alarms, audit: (e) => audit.write(e) });
    await app.register(webAlarmRoutes, { live, users: deps.users, alarms: deps.alarms });
    if (deps.setpoint) {
      const setpoint = deps.setpoint;
      await app.register(setpointRoutes, { users: deps.users, setpoint, audit: (e) => audit.write(e) });
    }
  }
  return app;
}

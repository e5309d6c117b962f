/**
 * The only file that imports prom-client: the Prometheus registry, metric kinds and
 * default process metrics that the rest of Octopus uses come from here.
 */
export { collectDefaultMetrics, Gauge, Histogram, Registry, type Metric } from 'prom-client';

/**
 * A typed InfluxQL dataquery for the Grafana InfluxDB datasource. The foundation SDK has
 * no InfluxDB query builder, so this follows its custom-query example: a plain object
 * implementing `cog.Dataquery`, and a builder for it. Only raw InfluxQL is used (the
 * datasource's "raw query" mode): it runs on InfluxDB 1.8+, on 2.x through a DBRP
 * mapping and on 3.x, where Flux does not.
 */
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import type * as common from '@grafana/grafana-foundation-sdk/common';

/** Datasources provisioned by dashboards/provisioning/datasources/octopus.yaml. */
export const INFLUX: common.DataSourceRef = { type: 'influxdb', uid: 'octopus-influxdb' };
export const PROMETHEUS: common.DataSourceRef = { type: 'prometheus', uid: 'octopus-prometheus' };

/** The measurement and the experiments' event measurement (docs/influxdb.md). */
export const MEASUREMENT = 'climate';
export const EVENTS = 'experiment_events';

/**
 * The 1-minute rollup of `climate` (same tags, field `value` = the minute's mean), kept by
 * a continuous query (1.x) or a task (2.x, deploy/influxdb/init/rollup.sh). At 1 Hz a
 * 30-day panel reads 2.6 M points per chamber and variable from `climate`, 43 k from the
 * rollup: long ranges read the rollup (variable `$source`), live views the raw data.
 */
export const ROLLUP = 'climate_1m';

/** InfluxDB 1.x keeps the rollup with this continuous query (recomputing 15 minutes back, for late samples). */
export const continuousQuery = (db: string) =>
  `CREATE CONTINUOUS QUERY ${ROLLUP} ON ${db} RESAMPLE FOR 15m BEGIN ${rollupStatement()} END`;

/** The rollup's statement: the body of the continuous query, or a backfill when run as is. */
export const rollupStatement = (timeFilter?: string) =>
  `SELECT mean("value") AS "value" INTO "${ROLLUP}" FROM "${MEASUREMENT}"${timeFilter ? ` WHERE ${timeFilter}` : ''} GROUP BY time(1m), *`;

export interface InfluxQLQuery extends cog.Dataquery {
  refId: string;
  datasource: common.DataSourceRef;
  /** The InfluxQL statement, with Grafana macros ($timeFilter, $__interval, $chamber…). */
  query: string;
  rawQuery: true;
  resultFormat: 'time_series' | 'table';
  /** Series name pattern: $tag_chamber, $col… */
  alias?: string;
  hide?: boolean;
}

export class InfluxQLQueryBuilder implements cog.Builder<cog.Dataquery> {
  private readonly internal: InfluxQLQuery;

  constructor(query: string) {
    this.internal = {
      refId: 'A',
      datasource: INFLUX,
      query,
      rawQuery: true,
      resultFormat: 'time_series',
      _implementsDataqueryVariant() {},
    };
  }

  refId(refId: string): this {
    this.internal.refId = refId;
    return this;
  }

  alias(alias: string): this {
    this.internal.alias = alias;
    return this;
  }

  table(): this {
    this.internal.resultFormat = 'table';
    return this;
  }

  build(): InfluxQLQuery {
    return this.internal;
  }
}

export const influxql = (query: string, refId = 'A') => new InfluxQLQueryBuilder(query).refId(refId);

/** A single-quoted InfluxQL string literal. */
export const lit = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/**
 * The variable aggregated to the panel's resolution: `$__interval` grouping keeps a
 * 30-day range at about one point per pixel. Bad samples carry no value, so they drop out
 * of `mean` by themselves; uncertain ones are kept (the quality panels show them).
 */
export function seriesQuery(
  tag: string,
  opts: { chamber?: string; groupByChamber?: boolean; fn?: string } = {},
): string {
  const chamber = opts.chamber ?? `"chamber" =~ /^$chamber$/`;
  const by = opts.groupByChamber ? ', "chamber"' : '';
  return `SELECT ${opts.fn ?? 'mean("value")'} FROM "${MEASUREMENT}" WHERE ${chamber} AND "tag" = ${lit(tag)} AND $timeFilter GROUP BY time($__interval)${by} fill(null)`;
}

/** The newest value of a tag per chamber over the last `window` (stat panels). */
export function latestQuery(tag: string, chamber = `"chamber" =~ /^$chamber$/`, window = '5m'): string {
  return `SELECT last("value") FROM "${MEASUREMENT}" WHERE ${chamber} AND "tag" = ${lit(tag)} AND time > now() - ${window} GROUP BY "chamber"`;
}

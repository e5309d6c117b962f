/** Every query of a generated dashboard, with where it comes from (for tests and the bench). */
import type { InfluxQLQuery } from './influxql.ts';

export interface FoundQuery {
  dashboard: string;
  /** Panel title, `annotation: <name>` or `variable: <name>`. */
  where: string;
  panelType: string;
  refId: string;
  datasource: string;
  /** InfluxQL (influxdb) or PromQL (prometheus). */
  text: string;
  unit?: string;
  target: Record<string, unknown>;
}

interface Json {
  [k: string]: unknown;
}

export function queriesOf(dashboard: Json): FoundQuery[] {
  const title = String(dashboard.title);
  const out: FoundQuery[] = [];
  const push = (where: string, panelType: string, t: Json, unit?: string) => {
    const ds = (t.datasource as { type?: string } | undefined)?.type ?? '?';
    out.push({
      dashboard: title,
      where,
      panelType,
      refId: String(t.refId ?? ''),
      datasource: ds,
      text: String(ds === 'prometheus' ? t.expr : (t as unknown as InfluxQLQuery).query),
      unit,
      target: t,
    });
  };
  const panels = (dashboard.panels as Json[] | undefined) ?? [];
  for (const p of panels.flatMap((p) => [p, ...((p.panels as Json[] | undefined) ?? [])])) {
    const unit = ((p.fieldConfig as Json | undefined)?.defaults as Json | undefined)?.unit as string | undefined;
    for (const t of (p.targets as Json[] | undefined) ?? []) push(String(p.title), String(p.type), t, unit);
  }
  for (const a of ((dashboard.annotations as Json | undefined)?.list as Json[] | undefined) ?? []) {
    if (a.target)
      push(`annotation: ${String(a.name)}`, 'annotation', { ...(a.target as Json), datasource: a.datasource });
  }
  for (const v of ((dashboard.templating as Json | undefined)?.list as Json[] | undefined) ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : String((v.query as Json).query);
    const ds = v.datasource as { type?: string };
    out.push({
      dashboard: title,
      where: `variable: ${String(v.name)}`,
      panelType: 'variable',
      refId: '',
      datasource: ds.type ?? '?',
      text: q,
      target: v,
    });
  }
  return out;
}

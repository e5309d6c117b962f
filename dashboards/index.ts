/** Every dashboard, keyed by the file name it is generated to in dashboards/generated/. */
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { chamberDetail } from './chamber-detail.ts';
import { experimentRun } from './experiment-run.ts';
import { facilityOverview } from './facility-overview.ts';
import { gatewayOperations } from './gateway-operations.ts';

export const DASHBOARDS: Record<string, () => dashboard.DashboardBuilder> = {
  'facility-overview': facilityOverview,
  'chamber-detail': chamberDetail,
  'experiment-run': experimentRun,
  'gateway-operations': gatewayOperations,
};

/** The JSON Grafana loads: stable key order from the builders, two-space indent, final newline. */
export function renderDashboards(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, build] of Object.entries(DASHBOARDS))
    out.set(`${name}.json`, JSON.stringify(build().build(), null, 2) + '\n');
  return out;
}

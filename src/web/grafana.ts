import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../config/profiles.ts';

/** Links into the Grafana dashboards: base URL from OCTOPUS_GRAFANA_URL, uids from dashboards/generated/*.json when present. */
export class GrafanaLinks {
  readonly base: string;
  private readonly uids: { chamber: string; experiment: string };

  constructor(env: NodeJS.ProcessEnv = process.env, dir = join(PROJECT_ROOT, 'dashboards', 'generated')) {
    this.base = (env.OCTOPUS_GRAFANA_URL || 'http://localhost:3000').replace(/\/+$/, '');
    this.uids = { chamber: 'octopus-chamber', experiment: 'octopus-experiment' };
    if (!existsSync(dir)) return;
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
      try {
        const d = JSON.parse(readFileSync(join(dir, f), 'utf8')) as {
          uid?: string;
          templating?: { list?: Array<{ name?: string }> };
        };
        const vars = (d.templating?.list ?? []).map((v) => v.name);
        if (!d.uid) continue;
        if (vars.includes('run') && vars.includes('experiment')) this.uids.experiment = d.uid;
        else if (f.startsWith('chamber')) this.uids.chamber = d.uid;
      } catch {
        // unreadable dashboard: keep the default uid
      }
    }
  }

  chamber(chamber: string): string {
    return `${this.base}/d/${this.uids.chamber}?var-chamber=${encodeURIComponent(chamber)}`;
  }

  run(experiment: string, run: string, start: string, stop?: string): string {
    const to = stop ? String(Date.parse(stop)) : 'now';
    return `${this.base}/d/${this.uids.experiment}?var-experiment=${encodeURIComponent(experiment)}&var-run=${encodeURIComponent(run)}&from=${Date.parse(start)}&to=${to}`;
  }
}

import type { InfluxConfig } from '../../../config/instance-schema.ts';
import { escapeMeasurement, escapeTag } from './line-protocol.ts';

/**
 * Before a batch whose request was running when the collector was killed is sent again:
 * which of its lines the database already stored. InfluxDB 1/2/3 overwrite a point with
 * the same series and time, so there a resend is harmless and nothing is checked.
 * VictoriaMetrics stores a resent point twice (without -dedup.minScrapeInterval): when the
 * target answers VictoriaMetrics' `/api/v1/export`, the samples of the batch's time range
 * are exported once and the lines already there are left out of the resend.
 *
 * Only a line whose series and millisecond timestamp are found is left out; on any error
 * the whole batch is sent (a duplicate is better than a loss).
 */
export interface StoredCheck {
  /**
   * The lines of `body` not yet stored, and how many were left out. `sentAt`: when the
   * interrupted request started (epoch ms), if known.
   */
  unstored(body: string, sentAt?: number): Promise<{ body: string; skipped: number }>;
}

/**
 * How long VictoriaMetrics may take to make a written sample searchable: about 1 s for an
 * existing series and up to about 10 s for a new one (it registers new series in its
 * index asynchronously; measured on Debian's 1.79.5 with -search.latencyOffset=0s). The
 * export is asked only once this long has passed since the interrupted request started,
 * else a stored batch would look unstored and be sent twice.
 */
export const VICTORIA_VISIBLE_AFTER_MS = 12_000;

export function storedCheck(cfg: InfluxConfig, token: string | undefined): StoredCheck {
  const base = (cfg.url ?? '').replace(/\/$/, '');
  const headers: Record<string, string> = token && !token.includes(':') ? { authorization: `Token ${token}` } : {};
  const name = `${cfg.measurement}_value`;
  let victoria: Promise<boolean> | undefined;
  const isVictoria = () =>
    (victoria ??= fetch(
      `${base}/api/v1/export?${new URLSearchParams({ 'match[]': `{__name__="${name}",chamber="-"}`, start: '0', end: '1' })}`,
      { headers },
    )
      .then(async (r) => {
        await r.arrayBuffer();
        return r.ok;
      })
      .catch(() => {
        victoria = undefined; // unreachable now: ask again next time
        return false;
      }));
  return {
    async unstored(body, sentAt) {
      if (!(await isVictoria())) return { body, skipped: 0 };
      const wait = (sentAt ?? Date.now()) + VICTORIA_VISIBLE_AFTER_MS - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, VICTORIA_VISIBLE_AFTER_MS)));
      const lines = body.split('\n').filter(Boolean);
      let min = Infinity;
      let max = -Infinity;
      const parsed = lines.map((l) => {
        const p = splitLine(l);
        if (p) {
          min = Math.min(min, p.ts);
          max = Math.max(max, p.ts);
        }
        return p;
      });
      if (min > max) return { body, skipped: 0 };
      const res = await fetch(
        `${base}/api/v1/export?${new URLSearchParams({ 'match[]': `{__name__="${name}"}`, start: String(min / 1000), end: String(max / 1000) })}`,
        { headers },
      );
      if (!res.ok) throw new Error(`${base}/api/v1/export: HTTP ${res.status}`);
      const stored = new Set<string>();
      const prefix = escapeMeasurement(cfg.measurement);
      for (const line of (await res.text()).split('\n')) {
        if (!line) continue;
        const s = JSON.parse(line) as { metric: Record<string, string>; timestamps: number[] };
        const m = s.metric;
        const series = `${prefix},chamber=${escapeTag(m.chamber ?? '')},q=${m.q ?? ''},tag=${escapeTag(m.tag ?? '')}`;
        for (const t of s.timestamps) stored.add(`${series} ${t}`);
      }
      const keep: string[] = [];
      let skipped = 0;
      lines.forEach((l, i) => {
        const p = parsed[i];
        if (p && p.hasValue && stored.has(`${p.series} ${p.ts}`)) skipped++;
        else keep.push(l);
      });
      return { body: keep.length ? `${keep.join('\n')}\n` : '', skipped };
    },
  };
}

/** Series text (measurement and tags, as escaped in the line), whether it has a numeric `value` field, and the timestamp. */
function splitLine(line: string): { series: string; hasValue: boolean; ts: number } | undefined {
  let i = 0;
  for (; i < line.length; i++) {
    const ch = line.charCodeAt(i);
    if (ch === 92 /* \ */) i++;
    else if (ch === 32 /* space */) break;
  }
  const last = line.lastIndexOf(' ');
  if (i >= line.length || last <= i) return undefined;
  const ts = Number(line.slice(last + 1));
  if (!Number.isSafeInteger(ts)) return undefined;
  const fields = line.slice(i + 1, last);
  return { series: line.slice(0, i), hasValue: /(^|,)value=[^",]/.test(fields), ts };
}

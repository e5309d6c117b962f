/**
 * The alarms API without a live stream: routes, roles, validation, OpenAPI, and the 503
 * of a process that has no alarm engine (the collector runs elsewhere).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { AlarmsConfig } from '../../src/alarms/config.ts';
import { AlarmEngine } from '../../src/alarms/engine.ts';
import { planOf } from '../../src/alarms/plan.ts';
import { createLogger } from '../../src/core/log.ts';
import { fixture, health } from './api-fixtures.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('alarms API', () => {
  it('without an engine in the process every route answers 503 saying where alarms are', async () => {
    const f = await fixture();
    try {
      const r = await f.app.inject({
        method: 'GET',
        url: '/api/alarms',
        headers: { authorization: `Bearer ${f.tokens.viewer}` },
      });
      expect(r.statusCode).toBe(503);
      expect(r.json().error).toMatch(/collector.*MQTT/s);
      expect(
        (
          await f.app.inject({
            method: 'POST',
            url: '/api/alarms/c1.offline.chamber.1/ack',
            headers: { authorization: `Bearer ${f.tokens.operator}` },
            payload: { comment: 'x' },
          })
        ).statusCode,
      ).toBe(503);
      // Roles are checked before: a viewer gets 403, nobody 401.
      expect(
        (
          await f.app.inject({
            method: 'POST',
            url: '/api/alarms/c1.offline.chamber.1/ack',
            headers: { authorization: `Bearer ${f.tokens.viewer}` },
            payload: { comment: 'x' },
          })
        ).statusCode,
      ).toBe(403);
      expect((await f.app.inject({ method: 'GET', url: '/api/alarms' })).statusCode).toBe(401);
    } finally {
      await f.close();
    }
  });

  it('with an engine: lists, filters the history, validates ids and bodies; documented in OpenAPI', async () => {
    const f = await fixture();
    const dir = mkdtempSync(join(tmpdir(), 'octopus-api-alarms-'));
    dirs.push(dir);
    let now = 1_800_000_000_000;
    const engine = new AlarmEngine({
      config: AlarmsConfig.parse({}),
      plans: [planOf('c1', 1000, [{ name: 'alarm_active', role: 'alarm' }])],
      log: createLogger('t'),
      logFile: join(dir, 'alarms.jsonl'),
      now: () => now,
      audit: (e) => f.audit.write(e),
    });
    engine.tick();
    engine.accept({
      v: 1,
      gw: 'g',
      seq: 1,
      chamber: 'c1',
      samples: [{ tag: 'alarm_active', ts: now, value: true, q: 'good' }],
    });
    const app = await buildApp({ health, experiments: f.store, users: f.users, audit: f.audit, alarms: engine });
    try {
      const as = (role: 'viewer' | 'operator') => ({ authorization: `Bearer ${f.tokens[role]}` });
      const list = (await app.inject({ method: 'GET', url: '/api/alarms', headers: as('viewer') })).json() as {
        alarms: Array<{ id: string }>;
      };
      expect(list.alarms).toHaveLength(1);
      const id = list.alarms[0]!.id;
      expect(
        (
          await app.inject({
            method: 'POST',
            url: '/api/alarms/..%2Fetc/ack',
            headers: as('operator'),
            payload: { comment: 'x' },
          })
        ).statusCode,
      ).toBe(400);
      expect(
        (
          await app.inject({
            method: 'POST',
            url: `/api/alarms/${id}/ack`,
            headers: as('operator'),
            payload: { comment: 'x', extra: 1 },
          })
        ).statusCode,
      ).toBe(400);
      const ok = await app.inject({
        method: 'POST',
        url: `/api/alarms/${id}/ack`,
        headers: as('operator'),
        payload: { comment: 'seen' },
      });
      expect(ok.statusCode).toBe(200);
      expect(ok.json().alarm).toMatchObject({ acknowledged_by: 'api:operator-user', comment: 'seen' });
      now += 60_000;
      const h = (q: string) => app.inject({ method: 'GET', url: `/api/alarms/history${q}`, headers: as('viewer') });
      expect(((await h('')).json() as { events: unknown[] }).events).toHaveLength(2);
      expect(((await h('?chamber=c2')).json() as { events: unknown[] }).events).toHaveLength(0);
      expect(((await h('?limit=1')).json() as { events: Array<{ event: string }> }).events.map((e) => e.event)).toEqual(
        ['acknowledged'],
      );
      expect(((await h(`?since=${new Date(now).toISOString()}`)).json() as { events: unknown[] }).events).toHaveLength(
        0,
      );
      expect((await h('?limit=0')).statusCode).toBe(400);
      expect((await h('?since=yesterday')).statusCode).toBe(400);
      const spec = (await app.inject({ method: 'GET', url: '/docs/json' })).json() as {
        paths: Record<string, unknown>;
      };
      expect(Object.keys(spec.paths)).toEqual(
        expect.arrayContaining(['/api/alarms', '/api/alarms/history', '/api/alarms/{id}/ack']),
      );
    } finally {
      await app.close();
      await f.close();
    }
  });
});

/**
 * The `facility:` section: validated with clear messages, turned into ACDD global
 * attributes (geospatial ones only when a location is configured), and its licence given
 * to experiments created without one.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { facilityAttributes } from '../../src/collector/sinks/netcdf/acdd.ts';
import { FacilityConfig } from '../../src/config/facility-schema.ts';
import { Config } from '../../src/config/instance-schema.ts';
import { ArchiveRoot } from '../../src/experiments/archive-root.ts';
import { ExperimentMetadata } from '../../src/experiments/schema.ts';
import { ExperimentStore } from '../../src/experiments/store.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

const minimal = ExperimentMetadata.parse({
  id: 'min-exp',
  title: 'Minimal',
  principal_investigator: { name: 'Ada' },
  chambers: ['c1'],
});

describe('facility configuration', () => {
  it('is a top-level section with defaults, and refuses a naming authority that is not reverse-DNS or a bad e-mail', () => {
    expect(Config.parse({}).facility).toEqual({
      publisher_type: 'institution',
      creator_type: 'person',
      platform: 'LABORATORY',
      platform_vocabulary: 'GCMD Platform Keywords',
    });
    const bad = FacilityConfig.safeParse({ naming_authority: 'not a domain', publisher_email: 'nobody' });
    expect(bad.success).toBe(false);
    const messages = bad.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(messages).toContain('naming_authority: naming_authority is a reverse-DNS name such as fr.cnrs.ecotron');
    expect(messages.some((m) => m.startsWith('publisher_email:'))).toBe(true);
    expect(FacilityConfig.safeParse({ location: { latitude: 95, longitude: 0 } }).success).toBe(false);
  });

  it('becomes ACDD attributes; geospatial ones only with a location', () => {
    const f = FacilityConfig.parse({
      institution: 'Ecotron',
      naming_authority: 'org.example',
      publisher_name: 'Data service',
      publisher_url: 'https://example.org',
      acknowledgement: 'Thanks',
    });
    const a = facilityAttributes(f, minimal);
    expect(a).toMatchObject({
      naming_authority: 'org.example',
      publisher_name: 'Data service',
      publisher_type: 'institution',
      publisher_institution: 'Ecotron',
      creator_type: 'person',
      creator_institution: 'Ecotron',
      acknowledgement: 'Thanks',
      platform: 'LABORATORY',
    });
    expect(Object.keys(a).some((k) => k.startsWith('geospatial_'))).toBe(false);
    const located = facilityAttributes(
      { ...f, location: { latitude: 43.68, longitude: 3.87, altitude_m: 120 } },
      ExperimentMetadata.parse({
        ...minimal,
        principal_investigator: { name: 'Ada', orcid: '0000-0002-1825-0097', institution: 'Univ' },
      }),
    );
    expect(located).toMatchObject({
      geospatial_lat_min: 43.68,
      geospatial_lat_max: 43.68,
      geospatial_lon_min: 3.87,
      geospatial_bounds: 'POINT (43.68 3.87)',
      geospatial_bounds_crs: 'EPSG:4326',
      geospatial_vertical_min: 120,
      geospatial_vertical_positive: 'up',
      creator_url: 'https://orcid.org/0000-0002-1825-0097',
      creator_institution: 'Univ',
    });
  });

  it('gives its licence to experiments created without one; a stated licence wins', async () => {
    const base = mkdtempSync(join(tmpdir(), 'octopus-facility-'));
    dirs.push(base);
    const s = new ExperimentStore(new ArchiveRoot(join(base, 'nas'), join(base, 'local')), {
      chambers: () => ['c1'],
      variables: () => [],
      licence: 'CC0-1.0',
    });
    const a = await s.create(
      { id: 'no-licence', title: 'No licence', principal_investigator: { name: 'Ada' }, chambers: ['c1'] },
      'test',
    );
    expect(a.metadata.licence).toBe('CC0-1.0');
    expect(readFileSync(join(a.dir, 'metadata.yaml'), 'utf8')).toContain('licence: CC0-1.0');
    const b = await s.create(
      {
        id: 'own-licence',
        title: 'Own licence',
        principal_investigator: { name: 'Ada' },
        chambers: ['c1'],
        licence: 'CC-BY-SA-4.0',
      },
      'test',
    );
    expect(b.metadata.licence).toBe('CC-BY-SA-4.0');
  });
});

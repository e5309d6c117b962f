/**
 * ACDD-1.3 global attributes that come from the facility configuration (`facility:` in
 * the instance configuration) and from the experiment's metadata, for the run files and
 * the daily files. docs/experiments.md ("Global attributes") lists where each comes from.
 */
import type { FacilityConfig } from '../../../config/facility-schema.ts';
import type { ExperimentMetadata } from '../../../experiments/schema.ts';
import type { AttrInput } from '../../../netcdf/format.ts';

export function facilityAttributes(f: FacilityConfig | undefined, e: ExperimentMetadata): Record<string, AttrInput> {
  const a: Record<string, AttrInput> = {};
  const set = (k: string, v: string | number | undefined) => {
    if (v !== undefined && v !== '') a[k] = v;
  };
  const pi = e.principal_investigator;
  set('creator_type', f?.creator_type ?? 'person');
  set('creator_institution', pi.institution ?? f?.institution);
  if (pi.orcid) set('creator_url', `https://orcid.org/${pi.orcid}`);
  set('publisher_name', f?.publisher_name);
  set('publisher_email', f?.publisher_email);
  set('publisher_url', f?.publisher_url);
  if (f?.publisher_name) {
    set('publisher_type', f.publisher_type);
    set('publisher_institution', f.publisher_institution ?? f.institution);
  }
  set('naming_authority', f?.naming_authority);
  set('acknowledgement', f?.acknowledgement);
  set('program', f?.program);
  set('platform', f?.platform);
  if (f?.platform) set('platform_vocabulary', f.platform_vocabulary);
  set('instrument', f?.instrument);
  if (f?.instrument) set('instrument_vocabulary', f.instrument_vocabulary);
  set('references', f?.references);
  set('metadata_link', f?.metadata_link);
  if (e.contributors.length) {
    set('contributor_name', e.contributors.map((c) => c.name).join(', '));
    set('contributor_role', e.contributors.map(() => 'contributor').join(', '));
  }
  const loc = f?.location;
  if (loc) {
    Object.assign(a, {
      geospatial_lat_min: loc.latitude,
      geospatial_lat_max: loc.latitude,
      geospatial_lat_units: 'degrees_north',
      geospatial_lon_min: loc.longitude,
      geospatial_lon_max: loc.longitude,
      geospatial_lon_units: 'degrees_east',
      geospatial_bounds: `POINT (${loc.latitude} ${loc.longitude})`,
      geospatial_bounds_crs: 'EPSG:4326',
    });
    if (loc.altitude_m !== undefined) {
      Object.assign(a, {
        geospatial_vertical_min: loc.altitude_m,
        geospatial_vertical_max: loc.altitude_m,
        geospatial_vertical_units: 'm',
        geospatial_vertical_positive: 'up',
        geospatial_bounds_vertical_crs: 'EPSG:5829',
      });
    }
  }
  return a;
}

"""An independent CF-1.11 / ACDD-1.3 checker for the NetCDF files Octopus writes.

Independent of the TypeScript code: reads the file with netCDF4 (Debian python3-netcdf4),
the CF standard name table from its published XML (resources/cf), and checks units with
the udunits2 command-line tool (Debian udunits-bin). Covers the rules that matter for
Octopus's files:

CF-1.11
- Conventions names CF-1.11; featureType is a CF feature type, and a timeSeries file has
  one variable with cf_role = timeseries_id;
- variable names start with a letter and use letters, digits and _;
- every standard_name (with an optional modifier) is in the table;
- every numeric data variable has units (flag variables excepted: their values are
  categories), udunits2 reads them, and they convert to the standard name's canonical
  units (a time coordinate: "<unit> since <date>" and a calendar);
- coordinates, ancillary_variables and bounds name existing variables; a bounds variable
  has its coordinate's dimensions plus one;
- flag_values / flag_masks and flag_meanings have as many entries, values are unique
  and of the variable's type, meanings are single words;
- cell_methods follow the grammar "name: [name: ...] method [where t] [over t]
  [(comment)]" with CF method names, and the names are dimensions, variables or "area";
- _FillValue has the variable's type; coordinate variables are monotonic.

ACDD-1.3
- highly recommended attributes present and not empty: title, summary, keywords,
  Conventions (containing ACDD-1.3);
- recommended attributes present: errors, except the geospatial ones (a facility without
  a configured location) and creator_email / creator_url (not known when the experiment
  does not give them), which are warnings;
- date_* and time_coverage_start/end are ISO 8601, time_coverage_duration/resolution ISO
  8601 durations, cdm_data_type one of the THREDDS types.

usage: /usr/bin/python3 cf_acdd_check.py STANDARD_NAME_TABLE.xml FILE [FILE...]
prints JSON {file: {"errors": [...], "warnings": [...]}}; exit 1 when any file has errors.
"""
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import netCDF4
import numpy as np

FEATURE_TYPES = {'point', 'timeseries', 'trajectory', 'profile', 'timeseriesprofile', 'trajectoryprofile'}
CELL_METHODS = {
    'point', 'sum', 'maximum', 'maximum_absolute_value', 'median', 'mid_range', 'minimum',
    'minimum_absolute_value', 'mean', 'mean_absolute_value', 'mean_of_upper_decile', 'mode',
    'range', 'root_mean_square', 'standard_deviation', 'sum_of_squares', 'variance',
}
# CF Appendix C modifiers: the canonical units they imply (None: those of the name).
MODIFIERS = {'detection_minimum': None, 'number_of_observations': '1', 'standard_error': None, 'status_flag': ''}
ACDD_HIGHLY = ['title', 'summary', 'keywords', 'Conventions']
ACDD_RECOMMENDED = [
    'id', 'naming_authority', 'history', 'source', 'processing_level', 'comment', 'acknowledgement',
    'license', 'standard_name_vocabulary', 'date_created', 'creator_name', 'creator_email', 'creator_url',
    'institution', 'project', 'publisher_name', 'publisher_email', 'publisher_url',
    'geospatial_bounds', 'geospatial_bounds_crs', 'geospatial_bounds_vertical_crs',
    'geospatial_lat_min', 'geospatial_lat_max', 'geospatial_lon_min', 'geospatial_lon_max',
    'geospatial_vertical_min', 'geospatial_vertical_max', 'geospatial_vertical_positive',
    'time_coverage_start', 'time_coverage_end', 'time_coverage_duration', 'time_coverage_resolution',
]
NOT_KNOWABLE = {'creator_email', 'creator_url'}
CDM_TYPES = {'grid', 'image', 'point', 'radial', 'station', 'swath', 'trajectory'}
ISO_DATE = re.compile(r'^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$')
ISO_DURATION = re.compile(r'^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$')
NAME = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')
WORD = re.compile(r'^[A-Za-z0-9_.+\-@]+$')


def load_table(path):
    root = ET.parse(path).getroot()
    table = {}
    for e in root.iter('entry'):
        cu = e.findtext('canonical_units') or ''
        table[e.get('id')] = cu.strip()
    for a in root.iter('alias'):
        target = a.findtext('entry_id')
        if target in table:
            table[a.get('id')] = table[target]
    return table


_units_cache = {}


def udunits(have, want):
    """None when 1 `have` converts to `want` according to udunits2, else the reason."""
    key = (have, want)
    if key not in _units_cache:
        r = subprocess.run(['udunits2', '-H', have, '-W', want or '1'], capture_output=True, text=True)
        err = r.stderr.strip()
        ok = r.returncode == 0 and not err and '=' in r.stdout
        _units_cache[key] = None if ok else (err or r.stdout.strip() or f'exit {r.returncode}')
    return _units_cache[key]


def text(v):
    return v.decode() if isinstance(v, bytes) else v


def check_cell_methods(s, ds, var):
    """Errors of a cell_methods string (CF 7.3)."""
    errs = []
    # Comments in parentheses are taken out first; what is left is a list of "names: method [qualifiers]".
    body = re.sub(r'\([^()]*\)', ' ', s)
    if '(' in body or ')' in body:
        return [f'cell_methods "{s}": unbalanced parentheses']
    tokens = body.split()
    if not tokens:
        return [f'cell_methods "{s}" is empty']
    i = 0
    while i < len(tokens):
        names = []
        while i < len(tokens) and tokens[i].endswith(':'):
            names.append(tokens[i][:-1])
            i += 1
        if not names:
            return errs + [f'cell_methods "{s}": expected "name:" at "{tokens[i]}"']
        if i >= len(tokens):
            return errs + [f'cell_methods "{s}": no method after {names[-1]}:']
        method = tokens[i]
        i += 1
        if method not in CELL_METHODS:
            errs.append(f'cell_methods "{s}": unknown method "{method}"')
        for n in names:
            if n not in ds.dimensions and n not in ds.variables and n != 'area':
                errs.append(f'cell_methods "{s}": "{n}" is neither a dimension nor a variable of the file')
        while i < len(tokens) and tokens[i] in ('where', 'over', 'within'):
            if i + 1 >= len(tokens) or tokens[i + 1].endswith(':'):
                errs.append(f'cell_methods "{s}": "{tokens[i]}" needs a type')
            i += 2
    return errs


def check_file(path, table):
    errors, warnings = [], []
    err = errors.append
    warn = warnings.append
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        g = {k: text(ds.getncattr(k)) for k in ds.ncattrs()}
        conv = str(g.get('Conventions', ''))
        if 'CF-1.11' not in conv:
            err(f'Conventions "{conv}" does not name CF-1.11')
        if 'ACDD-1.3' not in conv:
            err(f'Conventions "{conv}" does not name ACDD-1.3')
        ft = g.get('featureType')
        if ft is not None and str(ft).lower() not in FEATURE_TYPES:
            err(f'featureType "{ft}" is not a CF feature type')
        roles = [n for n, v in ds.variables.items() if 'cf_role' in v.ncattrs()]
        if ft is not None and str(ft).lower() == 'timeseries':
            if not any(text(ds.variables[n].getncattr('cf_role')) == 'timeseries_id' for n in roles):
                err('featureType timeSeries but no variable with cf_role = timeseries_id')

        referenced_coords, referenced_bounds, referenced_anc = set(), set(), set()
        for n, v in ds.variables.items():
            a = {k: text(v.getncattr(k)) for k in v.ncattrs()}
            for attr, into in (('coordinates', referenced_coords), ('ancillary_variables', referenced_anc), ('bounds', referenced_bounds)):
                if attr in a:
                    for ref in str(a[attr]).split():
                        into.add(ref)
                        if ref not in ds.variables:
                            err(f'{n}: {attr} names "{ref}", which is not a variable of the file')
            if 'bounds' in a and a['bounds'] in ds.variables:
                b = ds.variables[a['bounds']]
                if tuple(b.dimensions[:-1]) != tuple(v.dimensions) or len(b.dimensions) != len(v.dimensions) + 1:
                    err(f'{n}: bounds variable {a["bounds"]} has dimensions {b.dimensions}, expected {v.dimensions} plus one')
                else:
                    x = np.asarray(v[:], dtype='float64')
                    bb = np.asarray(b[:], dtype='float64')
                    if x.size and not np.all((bb.min(axis=-1) <= x) & (x <= bb.max(axis=-1))):
                        err(f'{n}: values outside their bounds {a["bounds"]}')

        for n, v in ds.variables.items():
            a = {k: text(v.getncattr(k)) for k in v.ncattrs()}
            if not NAME.match(n):
                err(f'{n}: variable names start with a letter and use letters, digits and _')
            numeric = v.dtype.kind in 'iuf'
            is_coord = v.dimensions == (n,)
            is_bounds = n in referenced_bounds
            flags = 'flag_values' in a or 'flag_masks' in a
            sn = a.get('standard_name')
            canonical = None
            if sn is not None:
                parts = str(sn).split()
                base = parts[0]
                if base not in table:
                    err(f'{n}: standard_name "{base}" is not in the CF standard name table')
                elif len(parts) > 2 or (len(parts) == 2 and parts[1] not in MODIFIERS):
                    err(f'{n}: standard_name "{sn}": "{" ".join(parts[1:])}" is not a CF modifier')
                else:
                    canonical = table[base]
                    if len(parts) == 2 and MODIFIERS[parts[1]] is not None:
                        canonical = MODIFIERS[parts[1]]
            elif not is_bounds and 'long_name' not in a:
                warn(f'{n}: neither standard_name nor long_name')
            if '_FillValue' in a:
                fv = v.getncattr('_FillValue')
                if np.asarray(fv).dtype != v.dtype:
                    err(f'{n}: _FillValue of type {np.asarray(fv).dtype}, the variable is {v.dtype}')
            units = a.get('units')
            data_var = numeric and not is_coord and not is_bounds and n not in referenced_coords
            if units is None and data_var and not flags:
                err(f'{n}: numeric data variable without units (use "1" for counts and codes)')
            if units is not None:
                u = str(units)
                if ' since ' in u:
                    if not re.match(r'^\s*\w+\s+since\s+\d{1,4}-\d{1,2}-\d{1,2}', u):
                        err(f'{n}: time units "{u}" are not "<unit> since <date>"')
                    elif udunits(u.split(' since ')[0].strip(), 's'):
                        err(f'{n}: time units "{u}": {udunits(u.split(" since ")[0].strip(), "s")}')
                    if 'calendar' not in a:
                        warn(f'{n}: time coordinate without calendar (standard is assumed)')
                else:
                    problem = udunits(u, u)
                    if problem:
                        err(f'{n}: units "{u}" are not udunits2 units: {problem}')
                    elif canonical is not None:
                        problem = udunits(u, canonical)
                        if problem:
                            err(f'{n}: units "{u}" do not convert to "{canonical or "1"}", the canonical units of {sn}: {problem}')
            if flags:
                meanings = str(a.get('flag_meanings', '')).split()
                if 'flag_meanings' not in a:
                    err(f'{n}: flag_values/flag_masks without flag_meanings')
                for attr in ('flag_values', 'flag_masks'):
                    if attr in a:
                        vals = np.atleast_1d(v.getncattr(attr))
                        if len(vals) != len(meanings):
                            err(f'{n}: {len(vals)} {attr} but {len(meanings)} flag_meanings')
                        if attr == 'flag_values' and len(set(vals.tolist())) != len(vals):
                            err(f'{n}: flag_values are not unique')
                        if vals.dtype != v.dtype:
                            err(f'{n}: {attr} of type {vals.dtype}, the variable is {v.dtype}')
                bad = [m for m in meanings if not WORD.match(m)]
                if bad:
                    err(f'{n}: flag_meanings words {bad} have characters CF does not allow')
            if 'cell_methods' in a:
                for e in check_cell_methods(str(a['cell_methods']), ds, n):
                    err(f'{n}: {e}')
            if is_coord and numeric and v.size > 1:
                x = np.asarray(v[:], dtype='float64')
                d = np.diff(x)
                if not (np.all(d > 0) or np.all(d < 0)):
                    err(f'{n}: coordinate values are not strictly monotonic')

        for k in ACDD_HIGHLY:
            if not str(g.get(k, '')).strip():
                err(f'ACDD highly recommended global attribute {k} missing or empty')
        geospatial = any(k.startswith('geospatial_') for k in g)
        for k in ACDD_RECOMMENDED:
            if str(g.get(k, '')).strip():
                continue
            if k.startswith('geospatial_'):
                vertical = 'vertical' in k
                if geospatial and not vertical:
                    err(f'ACDD recommended global attribute {k} missing (the file has other geospatial attributes)')
                else:
                    warn(f'ACDD recommended global attribute {k} missing (no location configured)')
            elif k in NOT_KNOWABLE:
                warn(f'ACDD recommended global attribute {k} missing (not given by the experiment)')
            else:
                err(f'ACDD recommended global attribute {k} missing or empty')
        for k in ('date_created', 'date_modified', 'date_issued', 'date_metadata_modified', 'time_coverage_start', 'time_coverage_end'):
            if k in g and not ISO_DATE.match(str(g[k])):
                err(f'{k} "{g[k]}" is not an ISO 8601 date-time')
        for k in ('time_coverage_duration', 'time_coverage_resolution'):
            if k in g and not ISO_DURATION.match(str(g[k])):
                err(f'{k} "{g[k]}" is not an ISO 8601 duration')
        if 'cdm_data_type' in g and str(g['cdm_data_type']).lower() not in CDM_TYPES:
            err(f'cdm_data_type "{g["cdm_data_type"]}" is not a THREDDS data type')
        if 'keywords' in g and 'keywords_vocabulary' not in g:
            warn('keywords without keywords_vocabulary')
    return {'errors': errors, 'warnings': warnings}


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    table = load_table(sys.argv[1])
    out = {f: check_file(f, table) for f in sys.argv[2:]}
    print(json.dumps(out, indent=1))
    sys.exit(1 if any(r['errors'] for r in out.values()) else 0)


if __name__ == '__main__':
    main()

"""Reads a netCDF file with netCDF4 and xarray (Debian python3-netcdf4, python3-xarray)
and prints what they see as JSON, for the TypeScript tests to compare.

usage: /usr/bin/python3 netcdf_check.py FILE [VAR,VAR,...]
"""
import json
import math
import sys

import netCDF4
import numpy as np
import xarray as xr


def plain(x):
    if isinstance(x, np.ndarray):
        return [plain(v) for v in x.tolist()] if x.ndim else plain(x.item())
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if math.isnan(float(x)) else float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, bytes):
        return x.decode('utf-8')
    return x


def main():
    path = sys.argv[1]
    only = sys.argv[2].split(',') if len(sys.argv) > 2 and sys.argv[2] else None
    out = {}
    with netCDF4.Dataset(path) as ds:
        nc = {
            'format': ds.data_model,
            'dims': {k: {'size': len(d), 'unlimited': d.isunlimited()} for k, d in ds.dimensions.items()},
            'globals': {k: plain(ds.getncattr(k)) for k in ds.ncattrs()},
            'vars': {},
        }
        for name, v in ds.variables.items():
            entry = {'dtype': str(v.dtype), 'dims': list(v.dimensions),
                     'attrs': {k: plain(v.getncattr(k)) for k in v.ncattrs()}}
            if only is None or name in only:
                if v.dtype == np.dtype('S1'):
                    entry['data'] = [s for s in netCDF4.chartostring(v[:]).tolist()]
                else:
                    data = v[:]
                    # masked (fill) → None
                    entry['data'] = plain(np.ma.filled(data.astype('float64'), np.nan)) if np.ma.isMaskedArray(data) else plain(np.asarray(data))
            nc['vars'][name] = entry
        time = ds.variables.get('time')
        if time is not None:
            dates = netCDF4.num2date(time[:], time.units, getattr(time, 'calendar', 'standard'),
                                     only_use_cftime_datetimes=False, only_use_python_datetimes=True)
            nc['time_iso'] = [d.strftime('%Y-%m-%dT%H:%M:%S.%f') for d in dates]
        out['netcdf4'] = nc
    with xr.open_dataset(path) as ds:
        xa = {'globals': {k: plain(v) for k, v in ds.attrs.items()}, 'vars': {}, 'coords': list(ds.coords)}
        if 'time' in ds:
            xa['time_iso'] = [str(t)[:26] for t in np.datetime_as_string(ds['time'].values, unit='us')]
        for name in ds.data_vars:
            if only is not None and name not in only:
                continue
            v = ds[name]
            entry = {'dtype': str(v.dtype), 'dims': list(v.dims), 'attrs': {k: plain(a) for k, a in v.attrs.items()}}
            if v.dtype.kind in 'fiu':
                entry['data'] = plain(v.values.astype('float64'))
            xa['vars'][name] = entry
        out['xarray'] = xa
    print(json.dumps(out))


if __name__ == '__main__':
    main()

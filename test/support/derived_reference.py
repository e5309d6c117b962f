"""Independent reference for Octopus's derived variables and daily file.

- VPD and dew point recomputed from the run file's air temperature and relative humidity
  with the IAPWS saturation vapour pressure of Wagner & Pruss (2002, J. Phys. Chem. Ref.
  Data 31, 387: eq. 2.5, the reference the Magnus fits are made against) and the dew point
  found by bisection on it — not the Magnus form Octopus uses;
- the derived flags recomputed from the inputs' flags by the documented rule;
- the daily file opened with xarray (decode_times, bounds) and its mean/min/max/count
  compared with daily aggregates computed here with numpy from the raw file (values with
  flag good or held, UTC days).

usage: /usr/bin/python3 derived_reference.py RUN_FILE [DAILY_FILE]
prints JSON with the largest differences found.
"""
import json
import math
import re
import sys

import netCDF4
import numpy as np
import xarray as xr

TC, PC = 647.096, 22.064e6
A = [-7.85951783, 1.84408259, -11.7866497, 22.6807411, -15.9618719, 1.80122502]


def es_wagner_pruss(t_c):
    t = np.asarray(t_c, dtype='float64') + 273.15
    th = 1 - t / TC
    return PC * np.exp(TC / t * (A[0] * th + A[1] * th ** 1.5 + A[2] * th ** 3 + A[3] * th ** 3.5 + A[4] * th ** 4 + A[5] * th ** 7.5))


def dew_point(e_pa):
    lo = np.full(np.shape(e_pa), -80.0)
    hi = np.full(np.shape(e_pa), 80.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        below = es_wagner_pruss(mid) < e_pa
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return (lo + hi) / 2


RANK = {0: 0, 4: 1, 1: 2, 2: 3, 3: 4, 5: 5}


def worse(a, b):
    ra = np.vectorize(lambda x: RANK.get(int(x), 4))(a)
    rb = np.vectorize(lambda x: RANK.get(int(x), 4))(b)
    return np.where(ra >= rb, a, b)


def to_celsius(x, units):
    u = units.strip()
    if u in ('K', 'kelvin', 'kelvins'):
        return x - 273.15
    if u in ('degree_Celsius', 'degC', 'celsius', 'Celsius', 'degree_C'):
        return x
    raise ValueError(f'temperature units {u}')


def to_percent(x, units):
    return x * 100 if units.strip() == '1' else x


def derived(path):
    out = {}
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        by_sn = {}
        for n, v in ds.variables.items():
            sn = getattr(v, 'standard_name', None)
            if sn and n not in by_sn.get(sn, []):
                by_sn.setdefault(sn, []).append(n)
        if 'vapour_pressure_deficit' not in ds.variables:
            return {'present': False}
        vpd_v = ds.variables['vapour_pressure_deficit']
        src = vpd_v.getncattr('source').replace('derived from ', '').split()
        t_name, h_name = src
        t = ds.variables[t_name][:].astype('float64')
        h = ds.variables[h_name][:].astype('float64')
        tf = ds.variables[t_name].getncattr('_FillValue')
        hf = ds.variables[h_name].getncattr('_FillValue')
        tq = ds.variables[t_name + '_qc'][:].astype('int64')
        hq = ds.variables[h_name + '_qc'][:].astype('int64')
        t_c = to_celsius(t, ds.variables[t_name].units)
        rh = to_percent(h, ds.variables[h_name].units)
        has = (t != tf) & (h != hf)
        vpd = vpd_v[:].astype('float64')
        vq = ds.variables['vapour_pressure_deficit_qc'][:].astype('int64')
        dew = ds.variables['dew_point_temperature'][:].astype('float64')
        dq = ds.variables['dew_point_temperature_qc'][:].astype('int64')
        fill = vpd_v.getncattr('_FillValue')
        # Which chambers have the inputs: named in the comment ("Computed for the chambers a, b (whose ...").
        nc = t.shape[1]
        names = [s.strip() for s in netCDF4.chartostring(ds.variables['station_name'][:]).tolist()]
        m = re.search(r'Computed for the chambers (.*?) \(', vpd_v.getncattr('comment'))
        listed = [x.strip() for x in m.group(1).split(',')] if m else []
        chambers = [names.index(x) for x in listed if x in names]
        es = es_wagner_pruss(np.where(has, t_c, 20.0))
        ref_vpd = es * (1 - np.where(has, rh, 50.0) / 100) / 1000
        ref_dew = dew_point(np.clip(np.where(has, rh, 50.0), 1e-6, None) / 100 * es)
        q = worse(tq, hq)
        claims = np.isin(q, [0, 1, 4])
        expect_q = np.where(has, q, np.where(claims, 3, q))
        in_range = (t_c >= -40) & (t_c <= 50) & (rh <= 100)
        expect_q = np.where(has & ~in_range & np.isin(expect_q, [0, 4]), 1, expect_q)
        sel = np.zeros_like(has)
        sel[:, chambers] = True
        cmp = sel & has & (rh > 0)
        out = {
            'present': True,
            'inputs': [t_name, h_name],
            'chambers_with_inputs': chambers,
            'compared': int(cmp.sum()),
            'vpd_max_rel_err': float(np.max(np.abs(vpd[cmp] / ref_vpd[cmp] - 1), initial=0.0)) if cmp.any() else None,
            'vpd_max_abs_err_kpa': float(np.max(np.abs(vpd[cmp] - ref_vpd[cmp]), initial=0.0)) if cmp.any() else None,
            'dew_max_abs_err_k': float(np.max(np.abs(dew[cmp] - ref_dew[cmp]), initial=0.0)) if cmp.any() else None,
            'vpd_qc_mismatches': int(np.sum(sel & (vq != expect_q))),
            'dew_qc_mismatches': int(np.sum(sel & has & (rh > 0) & (dq != expect_q))),
            'fill_where_no_input': bool(np.all(vpd[sel & ~has] == fill)),
            'no_input_chambers_missing': bool(all(np.all(vq[:, c] == 3) for c in range(nc) if c not in chambers)),
            'qc_counts': {str(k): int(np.sum(vq[sel] == k)) for k in range(6)},
        }
    return out


def daily(run_path, daily_path):
    raw = xr.open_dataset(run_path)
    d = xr.open_dataset(daily_path)
    out = {'days': int(d.sizes['time']), 'variables': {}, 'cell_methods': {}, 'bounds': d.time.attrs.get('bounds') or d.time.encoding.get('bounds')}
    out['time_bnds_dtype'] = str(d['time_bnds'].dtype) if 'time_bnds' in d else None
    day = raw['time'].dt.floor('D')
    worst = 0.0
    count_mismatch = 0
    for name in [v[:-5] for v in d.data_vars if v.endswith('_mean')]:
        out['cell_methods'][name] = [d[f'{name}_{s}'].attrs.get('cell_methods') for s in ('mean', 'min', 'max')]
        x = raw[name]
        qc = raw[f'{name}_qc']
        good = x.where(qc.isin([0, 4]))
        g = good.groupby(day)
        ref_mean, ref_min, ref_max, ref_n = g.mean(), g.min(), g.max(), g.count()
        dims = ref_mean.dims
        for stat, ref in (('mean', ref_mean), ('min', ref_min), ('max', ref_max)):
            got = d[f'{name}_{stat}'].values
            want = ref.transpose(*dims).values
            both = ~np.isnan(want)
            if np.any(np.isnan(got) != np.isnan(want)):
                count_mismatch += int(np.sum(np.isnan(got) != np.isnan(want)))
            if both.any():
                rel = np.max(np.abs(got[both] - want[both]) / np.maximum(1e-6, np.abs(want[both])))
                worst = max(worst, float(rel))
        count_mismatch += int(np.sum(d[f'{name}_count'].values != ref_n.values))
        out['variables'][name] = {'count_total': int(d[f'{name}_count'].values.sum())}
    out['max_rel_diff'] = worst
    out['mismatches'] = count_mismatch
    out['time'] = [str(t) for t in d['time'].values]
    out['time_bnds'] = [[str(a), str(b)] for a, b in d['time_bnds'].values] if 'time_bnds' in d else None
    raw.close()
    d.close()
    return out


def main():
    res = {'derived': derived(sys.argv[1])}
    if len(sys.argv) > 2:
        res['daily'] = daily(sys.argv[1], sys.argv[2])
    print(json.dumps(res))


if __name__ == '__main__':
    main()

"""Baseline of bench/derived.ts: the same derived variables (Magnus/Alduchov-Eskridge VPD
and dew point, flags = worse of the inputs') and daily aggregates (mean/min/max/count of
values flagged good or held per UTC day) computed with numpy over the run file, read with
netCDF4. Prints its own compute time (read + compute) and the largest differences to what
Octopus wrote into the run file and the daily file (agreement is checked first).

usage: /usr/bin/python3 derived_numpy.py RUN_FILE DAILY_FILE
"""
import json
import sys
import time

import netCDF4
import numpy as np

RANK = np.array([0, 2, 3, 4, 1, 5])  # flag -> rank: good < held < uncertain < bad < missing < offline


def main():
    run_path, daily_path = sys.argv[1], sys.argv[2]
    t0 = time.perf_counter()
    with netCDF4.Dataset(run_path) as ds:
        ds.set_auto_mask(False)
        names = [n for n in ds.variables if n.endswith('_qc') and n[:-3] in ds.variables]
        data = {n[:-3]: ds.variables[n[:-3]][:] for n in names}
        qcs = {n[:-3]: ds.variables[n][:] for n in names}
        fills = {k: ds.variables[k].getncattr('_FillValue') for k in data}
        units = {k: getattr(ds.variables[k], 'units', '1') for k in data}
        tsec = ds.variables['time'][:]
    t_read = time.perf_counter() - t0
    c0 = time.perf_counter()
    t = data['air_temperature'].astype('float64')
    h = data['relative_humidity'].astype('float64')
    qt, qh = qcs['air_temperature'], qcs['relative_humidity']
    has = (data['air_temperature'] != fills['air_temperature']) & (data['relative_humidity'] != fills['relative_humidity'])
    es = 610.94 * np.exp(17.625 * t / (t + 243.04))
    vpd = np.where(has, es * (1 - h / 100) / 1000, np.nan).astype('float32')
    with np.errstate(divide='ignore', invalid='ignore'):
        g = np.log(h / 100) + 17.625 * t / (t + 243.04)
        dew = np.where(has & (h > 0), 243.04 * g / (17.625 - g), np.nan).astype('float32')
    q = np.where(RANK[qt] >= RANK[qh], qt, qh)
    day = np.floor(tsec / 86400).astype('int64')
    starts = np.flatnonzero(np.r_[True, np.diff(day) != 0])
    cols = {k: v for k, v in data.items() if units[k] not in ('1', '') and k not in ('vapour_pressure_deficit', 'dew_point_temperature')}
    cols['vapour_pressure_deficit'] = vpd
    cols['dew_point_temperature'] = dew
    qcs_all = dict(qcs)
    qcs_all['vapour_pressure_deficit'] = q
    qcs_all['dew_point_temperature'] = q
    daily = {}
    for k, x in cols.items():
        x = x.astype('float64')
        ok = np.isin(qcs_all[k], (0, 4)) & ~np.isnan(x) & (x != fills.get(k, np.nan))
        xs = np.where(ok, x, 0.0)
        n = np.add.reduceat(ok.astype('int64'), starts, axis=0)
        s = np.add.reduceat(xs, starts, axis=0)
        mn = np.minimum.reduceat(np.where(ok, x, np.inf), starts, axis=0)
        mx = np.maximum.reduceat(np.where(ok, x, -np.inf), starts, axis=0)
        with np.errstate(invalid='ignore', divide='ignore'):
            daily[k] = (np.where(n > 0, s / n, np.nan), np.where(n > 0, mn, np.nan), np.where(n > 0, mx, np.nan), n)
    t_compute = time.perf_counter() - c0
    # Agreement with what Octopus wrote.
    with netCDF4.Dataset(run_path) as ds:
        ds.set_auto_mask(False)
        got_vpd = ds.variables['vapour_pressure_deficit'][:]
        got_q = ds.variables['vapour_pressure_deficit_qc'][:]
        fill = ds.variables['vapour_pressure_deficit'].getncattr('_FillValue')
        both = has & (got_vpd != fill)
        vpd_diff = float(np.max(np.abs(got_vpd[both] - vpd[both]), initial=0.0))
        in_range = (t >= -40) & (t <= 50) & (h <= 100)
        expect_q = np.where(has, q, np.where(np.isin(q, (0, 1, 4)), 3, q))
        expect_q = np.where(has & ~in_range & np.isin(expect_q, (0, 4)), 1, expect_q)
        q_mismatch = int(np.sum(got_q != expect_q))
    worst = 0.0
    count_mismatch = 0
    with netCDF4.Dataset(daily_path) as d:
        d.set_auto_mask(False)
        for k, (mean, mn, mx, n) in daily.items():
            count_mismatch += int(np.sum(d.variables[f'{k}_count'][:] != n))
            for stat, ref in (('mean', mean), ('min', mn), ('max', mx)):
                v = d.variables[f'{k}_{stat}']
                got = v[:].astype('float64')
                got[v[:] == v.getncattr('_FillValue')] = np.nan
                m = ~np.isnan(ref)
                count_mismatch += int(np.sum(np.isnan(got) != np.isnan(ref)))
                if m.any():
                    worst = max(worst, float(np.max(np.abs(got[m] - ref[m]) / np.maximum(1e-6, np.abs(ref[m])))))
    print(json.dumps({'read_s': t_read, 'compute_s': t_compute, 'records': int(t.shape[0]), 'chambers': int(t.shape[1]),
                      'days': int(len(starts)), 'vpd_max_abs_diff': vpd_diff, 'qc_mismatches': q_mismatch,
                      'daily_max_rel_diff': worst, 'daily_mismatches': count_mismatch}))


if __name__ == '__main__':
    main()

"""Independent treatment-fidelity computation over a run file with xarray + numpy.

usage: fidelity_check.py <run.nc>   (plan as JSON on stdin:
  {"<chamber>": [{"measured": "...", "setpoint": "...", "band": b, "min_duration_s": d, "hysteresis": h}, ...]})
prints JSON: {"chambers": {"<chamber>": {"<measured>": {covered, within, slots, within_pct, coverage_pct, mean,
  rms, excursions: [[start_s, end_s, duration_s], ...]}}}, "seconds": time spent computing (not loading),
  "maxrss_mb": peak RSS of this process}

Written from the definition in docs/experiments.md ("Treatment fidelity"), vectorised:
the excursion state machine (enter above band, stay above band - hysteresis, broken by
uncovered stretches longer than max(min_duration_s, period)) is a forward fill of
enter/leave marks.
"""
import json
import resource
import sys
import time

import numpy as np
import xarray as xr

USABLE = (0, 1, 4)  # good, uncertain, held


def usable(ds, name, c):
    v = ds[name].isel(chamber=c).values.astype(np.float64)  # fill decoded to NaN by xarray
    ok = ~np.isnan(v)
    qc = name + "_qc"
    if qc in ds:
        q = ds[qc].isel(chamber=c).values.astype(np.int16)
        ok &= np.isin(q, USABLE)
    return v, ok


def judge(t, v, vok, s, sok, band, min_dur, hyst, period):
    cov = vok & sok
    d = (v - s)[cov]
    tc = t[cov]
    n = int(cov.sum())
    out = {"covered": n, "slots": int(len(t)), "within": int((np.abs(d) <= band).sum())}
    out["within_pct"] = 100.0 * out["within"] / n if n else None
    out["coverage_pct"] = 100.0 * n / len(t) if len(t) else 0.0
    out["mean"] = float(d.mean()) if n else None
    out["rms"] = float(np.sqrt((d * d).mean())) if n else None
    a = np.abs(d)
    # marks: +1 enter (beyond band), -1 leave (back within band - hysteresis), 0 keep
    mark = np.where(a > band, 1, np.where(a <= band - hyst, -1, 0)).astype(np.int8)
    gap = np.diff(tc, prepend=tc[0] if n else 0.0) - period > max(min_dur, period) + 1e-9
    # after a long uncovered stretch the state is reset (an in-between slot does not continue)
    mark = np.where(gap & (mark == 0), -1, mark)
    idx = np.where(mark != 0, np.arange(n), -1)
    np.maximum.accumulate(idx, out=idx)
    state = np.where(idx >= 0, mark[np.maximum(idx, 0)], -1) == 1
    # segments of state, split where the state changes or at a long gap
    brk = np.ones(n, dtype=bool)
    if n:
        brk[1:] = (state[1:] != state[:-1]) | gap[1:]
    starts = np.flatnonzero(brk)
    ends = np.append(starts[1:], n) - 1
    exc = []
    for a0, a1 in zip(starts, ends):
        if not state[a0]:
            continue
        dur = tc[a1] - tc[a0] + period
        if dur + 1e-9 >= min_dur:
            exc.append([float(tc[a0]), float(tc[a1]), float(dur)])
    out["excursions"] = exc
    return out


def main():
    plan = json.load(sys.stdin)
    ds = xr.open_dataset(sys.argv[1], decode_times=False)
    names = [str(x).strip() for x in ds["station_name"].values.astype(str)] if "station_name" in ds else []
    ds.load()
    t0 = time.perf_counter()
    t = ds["time"].values.astype(np.float64)
    period = round(float(t[1] - t[0]), 6) if len(t) > 1 else 1.0
    res = {}
    for chamber, vars_ in plan.items():
        c = names.index(chamber)
        res[chamber] = {}
        for p in vars_:
            v, vok = usable(ds, p["measured"], c)
            s, sok = usable(ds, p["setpoint"], c)
            res[chamber][p["measured"]] = judge(t, v, vok, s, sok, p["band"], p["min_duration_s"], p["hysteresis"], period)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"chambers": res, "seconds": time.perf_counter() - t0, "maxrss_mb": rss}))


if __name__ == "__main__":
    main()

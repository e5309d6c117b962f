// Octopus web page: plot, zip progress, live view and alarm banners. Plain browser JavaScript, no dependencies.
(() => {
  'use strict';
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? '';
  const el = (tag, attrs = {}, text) => {
    const e = document.createElementNS(attrs.svg ? 'http://www.w3.org/2000/svg' : 'http://www.w3.org/1999/xhtml', tag);
    for (const [k, v] of Object.entries(attrs)) if (k !== 'svg') e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const COLORS = ['#0b5cad', '#c0392b', '#1e7b34', '#8e44ad', '#a15c00', '#16a085'];

  /** SVG points of a series; a lone point becomes a short tick so that a one-record run still shows. */
  function polylinePoints(pts, X, Y) {
    const xy = pts.map((p) => [X(Date.parse(p.t)), Y(p.mean)]);
    if (xy.length === 1) {
      const [x, y] = xy[0];
      xy.splice(0, 1, [x - 4, y], [x + 4, y]);
    }
    return xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
  }

  /**
   * An empty time plot (800×300) fitted to the times and values given: axes, the value
   * range at the left (to `digits` significant digits), the first and last time below.
   * Returns the SVG, the scales and the value format for what the caller draws on it.
   */
  function timePlot(label, ts, ys, digits) {
    const W = 800,
      H = 300,
      L = 60,
      B = 30;
    let [t0, t1, y0, y1] = [Math.min(...ts), Math.max(...ts), Math.min(...ys), Math.max(...ys)];
    if (t1 === t0) t1 = t0 + 1;
    if (y1 === y0) {
      y0 -= 1;
      y1 += 1;
    }
    const X = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - 10),
      Y = (y) => 10 + (1 - (y - y0) / (y1 - y0)) * (H - B - 10);
    const fmt = (y) => Number(y.toPrecision(digits)).toString();
    const minute = (t) => new Date(t).toISOString().slice(0, 16).replace('T', ' ');
    const svg = el('svg', { svg: 1, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
    svg.append(
      el('line', { svg: 1, x1: L, y1: H - B, x2: W - 10, y2: H - B, stroke: '#888' }),
      el('line', { svg: 1, x1: L, y1: 10, x2: L, y2: H - B, stroke: '#888' }),
      el('text', { svg: 1, x: 4, y: 16, 'font-size': 12 }, fmt(y1)),
      el('text', { svg: 1, x: 4, y: H - B, 'font-size': 12 }, fmt(y0)),
      el('text', { svg: 1, x: L, y: H - 8, 'font-size': 12 }, minute(t0)),
      el('text', { svg: 1, x: W - 10, y: H - 8, 'font-size': 12, 'text-anchor': 'end' }, minute(t1)),
    );
    return { svg, X, Y, fmt, L, W };
  }

  /** One chamber's series (its colour by position i) and its label in the legend column. */
  function drawSeries(svg, c, pts, i, X, Y, W) {
    if (!pts.length) return;
    const stroke = COLORS[i % COLORS.length];
    svg.append(
      el('polyline', {
        svg: 1,
        class: 'series',
        'data-chamber': c,
        fill: 'none',
        stroke,
        'stroke-width': 1.5,
        points: polylinePoints(pts, X, Y),
      }),
    );
    svg.append(el('text', { svg: 1, x: W - 80, y: 20 + 14 * i, 'font-size': 12, fill: stroke }, c));
  }

  // ---- quick plot (from the API's decimated preview) ----
  const plotForm = document.getElementById('plot-form');
  if (plotForm) {
    const fig = document.getElementById('plot');
    const draw = async () => {
      const id = plotForm.dataset.experiment;
      const run = document.getElementById('plot-run').value;
      const v = document.getElementById('plot-var').value;
      fig.setAttribute('aria-busy', 'true');
      const r = await fetch(
        `/api/experiments/${encodeURIComponent(id)}/runs/${encodeURIComponent(run)}/preview?var=${encodeURIComponent(v)}&points=400`,
      );
      fig.replaceChildren();
      fig.removeAttribute('aria-busy');
      if (!r.ok) {
        fig.append(
          el('p', { class: 'alert', role: 'alert' }, (await r.json().catch(() => ({}))).error ?? `error ${r.status}`),
        );
        return;
      }
      const p = await r.json();
      const series = Object.entries(p.chambers).map(([c, pts]) => [c, pts.filter((x) => x.mean !== null)]);
      const all = series.flatMap(([, pts]) => pts);
      if (!all.length) {
        fig.append(el('p', {}, 'No data in this run yet.'));
        return;
      }
      const { svg, X, Y, W } = timePlot(
        `${p.var} over time`,
        all.map((x) => Date.parse(x.t)),
        all.map((x) => x.mean),
        4,
      );
      series.forEach(([c, pts], i) => drawSeries(svg, c, pts, i, X, Y, W));
      fig.append(
        svg,
        el(
          'figcaption',
          {},
          `${p.long_name ?? p.var}${p.units ? ` (${p.units})` : ''}: ${p.records} records, mean of ${p.bucket_records} per point`,
        ),
      );
    };
    plotForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      draw();
    });
  }

  // ---- treatment fidelity: value − setpoint over time, with the tolerance band ----
  const devForm = document.getElementById('dev-form');
  if (devForm) {
    const fig = document.getElementById('dev-plot');
    const drawDeviation = async () => {
      const v = document.getElementById('dev-var').value;
      fig.setAttribute('aria-busy', 'true');
      const r = await fetch(
        `/api/experiments/${encodeURIComponent(devForm.dataset.experiment)}/runs/${encodeURIComponent(devForm.dataset.run)}/fidelity/deviation?var=${encodeURIComponent(v)}&points=400`,
      );
      fig.replaceChildren();
      fig.removeAttribute('aria-busy');
      if (!r.ok) {
        fig.append(
          el('p', { class: 'alert', role: 'alert' }, (await r.json().catch(() => ({}))).error ?? `error ${r.status}`),
        );
        return;
      }
      const p = await r.json();
      const series = Object.entries(p.chambers).map(([c, x]) => [c, x.band, x.buckets.filter((b) => b.mean !== null)]);
      const all = series.flatMap(([, , pts]) => pts);
      if (!all.length) {
        fig.append(el('p', {}, 'No covered slot (value and setpoint both usable) in this run yet.'));
        return;
      }
      const bands = [...new Set(series.map(([, band]) => band))];
      const { svg, X, Y, fmt, L, W } = timePlot(
        `deviation of ${p.var} from its setpoint over time`,
        all.map((x) => Date.parse(x.t)),
        all.flatMap((x) => [x.min, x.max]).concat(bands.flatMap((b) => [b * 1.2, -b * 1.2])),
        3,
      );
      svg.append(el('line', { svg: 1, class: 'zero', x1: L, y1: Y(0), x2: W - 10, y2: Y(0), stroke: '#bbb' }));
      for (const b of bands)
        for (const y of [b, -b])
          svg.append(
            el('line', {
              svg: 1,
              class: 'band',
              x1: L,
              y1: Y(y),
              x2: W - 10,
              y2: Y(y),
              stroke: '#b00020',
              'stroke-dasharray': '6 4',
            }),
          );
      for (const b of bands)
        svg.append(el('text', { svg: 1, x: 4, y: Y(b) + 4, 'font-size': 11, fill: '#b00020' }, `+${fmt(b)}`));
      series.forEach(([c, , pts], i) => drawSeries(svg, c, pts, i, X, Y, W));
      fig.append(
        svg,
        el(
          'figcaption',
          {},
          `${p.var} − setpoint${p.units ? ` (${p.units})` : ''}: ${p.records} records, mean of ${p.bucket_records} per point; dashed: ± tolerance band`,
        ),
      );
    };
    devForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      drawDeviation();
    });
    drawDeviation();
  }

  // ---- zip bundle with progress ----
  const bundleBtn = document.getElementById('bundle-start');
  if (bundleBtn) {
    const bar = document.getElementById('bundle-progress'),
      status = document.getElementById('bundle-status'),
      link = document.getElementById('bundle-link');
    bundleBtn.addEventListener('click', async () => {
      bundleBtn.disabled = true;
      link.hidden = true;
      bar.hidden = false;
      bar.value = 0;
      status.textContent = 'Starting…';
      const r = await fetch(`/api/experiments/${encodeURIComponent(bundleBtn.dataset.experiment)}/bundles`, {
        method: 'POST',
        headers: { 'x-csrf-token': csrf },
      });
      const j = await r.json();
      if (!r.ok) {
        status.textContent = j.error ?? `error ${r.status}`;
        bundleBtn.disabled = false;
        return;
      }
      const poll = async () => {
        const s = await (await fetch(j.status_url)).json();
        bar.value = s.progress ?? 0;
        status.textContent =
          s.state === 'done'
            ? `Ready: 100 % (${s.size} bytes, until ${s.expires})`
            : s.state === 'failed'
              ? `Failed: ${s.error}`
              : `${s.progress} %`;
        if (s.state === 'done') {
          link.href = s.download;
          link.hidden = false;
          bundleBtn.disabled = false;
        } else if (s.state === 'failed') bundleBtn.disabled = false;
        else setTimeout(poll, 300);
      };
      poll();
    });
  }

  // ---- alarms (live banner and alarm page) ----
  const utc = (ms) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
  const who = (by) => String(by ?? '').replace(/^(api|mqtt|web):/, '');
  const alarmText = (a) => {
    const parts = [
      el('strong', { class: 'alarm-class' }, a.class.replace('_', ' ')),
      a.tag ? ' ' : '',
      a.tag ? el('code', {}, a.tag) : '',
      ` — ${a.message} `,
      el('span', { class: 'alarm-since' }, `since ${utc(a.since)}`),
      ' · ',
      el('span', { class: 'alarm-state' }, a.state),
    ];
    if (a.state === 'acknowledged')
      parts.push(
        el(
          'span',
          { class: 'alarm-acked' },
          ` by ${who(a.acknowledged_by)}${a.acknowledged_at ? ` at ${utc(a.acknowledged_at)}` : ''}${a.comment ? `: “${a.comment}”` : ''}`,
        ),
      );
    return parts;
  };
  const acknowledge = async (form, id, comment) => {
    const out = form.querySelector('.ack-result');
    out.className = 'ack-result';
    if (!comment) {
      out.classList.add('error');
      out.textContent = 'Write a comment first.';
      form.elements.comment.focus();
      return;
    }
    out.textContent = 'Sending…';
    form.querySelector('button').disabled = true;
    try {
      const res = await fetch(`/api/alarms/${encodeURIComponent(id)}/ack`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
        body: JSON.stringify({ comment }),
      });
      const r = await res.json().catch(() => ({}));
      if (res.ok) {
        out.classList.add('ok');
        out.textContent = 'Acknowledged.';
        return;
      }
      out.classList.add('error');
      out.textContent = `Refused: ${r.error ?? res.status}`;
    } catch (err) {
      out.classList.add('error');
      out.textContent = `Not sent: ${err.message}`;
    }
    form.querySelector('button').disabled = false;
  };

  // ---- live facility view (server-sent events) ----
  const live = document.getElementById('live');
  if (live) {
    const state = document.getElementById('live-state');
    const STALE_MS = 30_000;
    const render = (c) => {
      let card = live.querySelector(`[data-chamber="${CSS.escape(c.chamber)}"]`);
      if (!card) {
        document.getElementById('live-empty')?.remove();
        card = el('section', {
          class: 'card chamber',
          'data-chamber': c.chamber,
          'aria-label': `Chamber ${c.chamber}`,
        });
        live.append(card);
      }
      // Ages are measured on the server's clock (skew fixed when the event arrived) and
      // re-rendered every few seconds, so a chamber that stops sending turns stale.
      c.skew ??= Date.now() - c.now;
      last.set(c.chamber, c);
      const skew = c.skew;
      const rows = Object.entries(c.tags)
        .filter(([t]) => !t.endsWith('_setpoint'))
        .sort(([a], [b]) => a.localeCompare(b));
      const alarms = Object.entries(c.tags).filter(([t, x]) => /alarm|door_open/.test(t) && x.value && x.value !== 0);
      let body = card.querySelector(':scope > .live-body');
      if (!body) {
        // Heading, alarm banner and values: the banner is kept across re-renders, so an
        // operator typing an acknowledgement comment keeps the text and the focus.
        body = el('div', { class: 'live-body' });
        card.replaceChildren(
          el('h2', {}, c.chamber),
          el('div', {
            class: 'alarm-banner',
            'data-chamber': c.chamber,
            role: 'region',
            'aria-label': `Alarms of ${c.chamber}`,
            'aria-live': 'polite',
            hidden: '',
          }),
          body,
        );
      }
      renderBanner(card.querySelector(':scope > .alarm-banner'), c.chamber, c.alarms ?? []);
      const meta = el('p');
      const st = c.status?.state ?? 'unknown';
      meta.append(
        el('span', { class: `state-${st}` }, st),
        ' · ',
        c.running
          ? el('a', { href: `/experiments/${c.running.experiment}` }, `${c.running.experiment} ${c.running.run}`)
          : 'no run',
        ' · ',
        el('a', { href: c.grafana, rel: 'external' }, 'Grafana'),
      );
      // The PLC's own alarm and door tags as read now (the banner above shows the alarm engine's alarms).
      const al = el(
        'p',
        { class: alarms.length ? 'alarm plc-alarms' : 'plc-alarms' },
        alarms.length
          ? `PLC alarm tags: ${alarms.map(([t, x]) => `${t}=${x.value}`).join(', ')}`
          : 'PLC alarm tags: none active',
      );
      const table = el('table'),
        head = el('tr');
      for (const t of ['Tag', 'Value', 'Setpoint', 'Quality', 'Age']) head.append(el('th', { scope: 'col' }, t));
      const tb = el('tbody');
      table.append(el('thead'), tb);
      table.firstChild.append(head);
      for (const [tag, x] of rows) {
        const sp = c.tags[`${tag}_setpoint`];
        const age = Math.max(0, Math.round((Date.now() - skew - x.ts) / 1000));
        const tr = el('tr', { 'data-tag': tag });
        const v = typeof x.value === 'number' ? Number(x.value.toPrecision(6)).toString() : String(x.value);
        tr.append(
          el('td', {}, tag),
          el('td', { class: 'value' }, v),
          el('td', {}, sp ? String(typeof sp.value === 'number' ? Number(sp.value.toPrecision(6)) : sp.value) : ''),
          el('td', { class: `q-${x.q}`, title: x.reason ?? '' }, x.q),
          el(
            'td',
            { class: age * 1000 > STALE_MS ? 'stale' : '' },
            age * 1000 > STALE_MS ? `stale ${age} s` : `${age} s`,
          ),
        );
        tb.append(tr);
      }
      const wrap = el('div', { class: 'scroll' });
      wrap.append(table);
      body.replaceChildren(meta, al, wrap);
      renderSummary();
    };
    const canAck = live.dataset.canAck === 'true';
    const summary = document.getElementById('alarm-summary');
    const renderSummary = () => {
      if (!summary) return;
      const all = [...last.values()].flatMap((x) => x.alarms ?? []);
      const open = all.filter((a) => a.state === 'raised').length;
      summary.className = `alarm-summary${all.length ? ' has-alarms' : ''}`;
      summary.replaceChildren(
        el('a', { href: '/alarms' }, 'Alarms'),
        all.length
          ? `: ${all.length} active (${open} not acknowledged) in ${new Set(all.map((a) => a.chamber)).size} chamber(s)`
          : ': none active',
      );
    };
    let ackSeq = 0;
    const renderBanner = (banner, chamber, alarms) => {
      // Keyed by alarm id and updated in place: the text follows each event, an open
      // acknowledgement form stays as it is until its alarm is acknowledged or cleared.
      const keep = new Set();
      for (const a of alarms) {
        keep.add(a.id);
        let item = [...banner.children].find((x) => x.dataset.alarm === a.id);
        if (!item) {
          item = el('div', { 'data-alarm': a.id, 'data-class': a.class, 'data-tag': a.tag ?? '' });
          item.append(el('p', { class: 'alarm-text' }));
          banner.prepend(item);
        }
        item.className = `alarm-item sev-${a.severity} st-${a.state}`;
        item.dataset.state = a.state;
        item.querySelector('.alarm-text').replaceChildren(...alarmText(a));
        const form = item.querySelector('form.alarm-ack');
        if (canAck && a.state === 'raised') {
          if (!form) item.append(ackForm(chamber, a));
        } else form?.remove();
      }
      for (const item of [...banner.children]) if (!keep.has(item.dataset.alarm)) item.remove();
      banner.hidden = alarms.length === 0;
    };
    const ackForm = (chamber, a) => {
      const n = ++ackSeq;
      const f = el('form', {
        class: 'alarm-ack',
        'data-alarm': a.id,
        'aria-label': `Acknowledge ${a.class} alarm${a.tag ? ` ${a.tag}` : ''} of ${chamber}`,
      });
      const input = el('input', {
        id: `ack-comment-${n}`,
        name: 'comment',
        required: '',
        maxlength: '2000',
        autocomplete: 'off',
      });
      f.append(
        el('label', { for: `ack-comment-${n}` }, 'Comment'),
        input,
        el('button', { type: 'submit' }, 'Acknowledge'),
        el('span', { class: 'ack-result', role: 'status' }),
      );
      f.addEventListener('submit', (ev) => {
        ev.preventDefault();
        acknowledge(f, a.id, input.value.trim());
      });
      return f;
    };
    const last = new Map();
    setInterval(() => {
      for (const c of last.values()) render(c);
    }, 5000);
    const es = new EventSource('/api/live');
    es.addEventListener('open', () => {
      state.textContent = 'live';
    });
    es.addEventListener('error', () => {
      state.textContent = 'reconnecting…';
    });
    es.addEventListener('chamber', (ev) => render(JSON.parse(ev.data)));
  }

  // ---- alarm page: follows the alarm state (server-sent events) and redraws its lists ----
  const alarmsActive = document.getElementById('alarms-active');
  if (alarmsActive) {
    const note = document.getElementById('alarms-refresh');
    const sigs = new Map();
    let busy = false,
      again = false;
    const typing = () =>
      [...document.querySelectorAll('form.alarm-ack input[name="comment"]')].some(
        (i) => i.value || i === document.activeElement,
      );
    const refresh = async () => {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        // An operator writing a comment keeps the form; the lists are redrawn once it is sent or emptied.
        if (typing()) {
          note.className = '';
          note.textContent = 'The alarms changed: reload the page to see the new state.';
          return;
        }
        const r = await fetch(location.href, { headers: { accept: 'text/html' } });
        if (!r.ok) return;
        const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
        for (const id of ['alarms-active', 'alarms-history']) {
          const fresh = doc.getElementById(id);
          if (fresh) document.getElementById(id)?.replaceWith(document.importNode(fresh, true));
        }
        note.className = 'sr-only';
        note.textContent = 'Alarm lists updated.';
      } finally {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      }
    };
    const es = new EventSource('/api/live');
    es.addEventListener('chamber', (ev) => {
      const c = JSON.parse(ev.data);
      const sig = JSON.stringify((c.alarms ?? []).map((a) => [a.id, a.state]));
      let old = sigs.get(c.chamber);
      sigs.set(c.chamber, sig);
      if (old === undefined) {
        // First event of the chamber: compare with what the page was rendered with.
        const filter = document.getElementById('f-chamber')?.value;
        if (filter && filter !== c.chamber) return;
        const rows = [...document.querySelectorAll('#alarms-active tr[data-alarm]')].filter(
          (tr) => tr.cells[0]?.textContent === c.chamber,
        );
        old = JSON.stringify(rows.map((tr) => [tr.dataset.alarm, tr.dataset.state]));
      }
      if (old !== sig) refresh();
    });
  }

  // ---- setpoint control (operators; the server renders the forms only for them) ----
  for (const form of document.querySelectorAll('form.setpoint')) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const out = form.querySelector('.setpoint-result');
      const chamber = form.dataset.chamber;
      const sel = form.elements.tag;
      const tag = sel.value;
      const type = sel.selectedOptions[0]?.dataset.type ?? '';
      const raw = form.elements.value.value.trim();
      // Numbers and booleans travel as JSON numbers and booleans; the gateway validates range and type.
      let value = raw;
      if (type === 'bool' || type === 'boolean')
        value = raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
      else if (type !== 'string' && raw !== '' && Number.isFinite(Number(raw))) value = Number(raw);
      const id = `web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
      out.className = 'setpoint-result';
      out.textContent = 'Sending…';
      try {
        const res = await fetch(`/api/chambers/${encodeURIComponent(chamber)}/setpoints/${encodeURIComponent(tag)}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-csrf-token': document.querySelector('meta[name="csrf-token"]')?.content ?? '',
          },
          body: JSON.stringify({ value, id }),
        });
        const r = await res.json().catch(() => ({}));
        if (res.ok && r.status === 'accepted') {
          out.classList.add('ok');
          out.textContent = `Accepted: ${tag} = ${JSON.stringify(r.value)}`;
        } else {
          out.classList.add('error');
          out.textContent = `Refused: ${r.reason ?? r.error ?? res.status}`;
        }
      } catch (err) {
        out.classList.add('error');
        out.textContent = `Not sent: ${err.message}`;
      }
    });
  }
})();

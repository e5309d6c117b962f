import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from '../../auth/audit.ts';
import { atLeast, type Role } from '../../auth/roles.ts';
import type { UserStore } from '../../auth/users.ts';
import { citation } from '../../experiments/documents.ts';
import { WriteFailedError } from '../../core/write-faults.ts';
import { ExperimentError, type Experiment, type ExperimentStore } from '../../experiments/store.ts';
import type { GrafanaLinks } from '../grafana.ts';
import { html, type Html } from '../html.ts';
import { csrfField, errorSummary, field, page, type FieldErrors } from '../layout.ts';
import { Instant, toMs } from '../../api/api-schemas.ts';
import { csrfOk, sessionOf, type Session } from '../session.ts';
import { runReportsSection, type RunReportSources } from '../run-reports.ts';

export interface WebPageOptions extends RunReportSources {
  store: ExperimentStore;
  users: UserStore;
  audit: AuditLog;
  grafana: GrafanaLinks;
}
type Form = Record<string, string | string[]>;
const one = (f: Form, k: string): string => {
  const v = f[k];
  return (Array.isArray(v) ? v[0] : v)?.trim() ?? '';
};
const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
const ISO_DATE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?Z?)?$/;

export function formParser(app: Parameters<FastifyPluginAsync>[0]): void {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    const out: Form = {};
    for (const [k, v] of new URLSearchParams(body as string)) {
      const old = out[k];
      out[k] = old === undefined ? v : Array.isArray(old) ? [...old, v] : [old, v];
    }
    done(null, out);
  });
}

/** The session, or a redirect to sign-in (undefined) / a 403 page when the role is too weak. */
export function need(req: FastifyRequest, reply: FastifyReply, users: UserStore, min: Role): Session | undefined {
  const s = sessionOf(req, users);
  if (!s) {
    void reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303);
    return undefined;
  }
  if (!atLeast(s.who.role, min)) {
    void reply
      .code(403)
      .type('text/html')
      .send(
        page(
          'Not allowed',
          s,
          html`<p class="alert" role="alert">This needs the ${min} role or higher; you are ${s.who.role}. Ask an admin.</p>`,
        ),
      );
    return undefined;
  }
  return s;
}

/** POST forms: session + CSRF token, else 403. */
export function needPost(req: FastifyRequest, reply: FastifyReply, users: UserStore, min: Role): Session | undefined {
  const s = need(req, reply, users, min);
  if (s && !csrfOk(s.token, one((req.body ?? {}) as Form, '_csrf'))) {
    void reply
      .code(403)
      .type('text/html')
      .send(
        page(
          'Form expired',
          s,
          html`<p class="alert" role="alert">The form's security token is missing or stale; go back, reload the page and try again.</p>`,
        ),
      );
    return undefined;
  }
  return s;
}

/** Catalogue, experiment pages and forms (server-rendered HTML); sign-in is in signin.ts. */
export const webPageRoutes: FastifyPluginAsync<WebPageOptions> = async (app, o) => {
  formParser(app);
  const send = (reply: FastifyReply, body: string, code = 200) =>
    reply.code(code).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(body);

  app.get('/', async (req, reply) => reply.redirect(sessionOf(req, o.users) ? '/experiments' : '/login', 303));

  // ---- catalogue -----------------------------------------------------------------
  app.get('/experiments', async (req, reply) => {
    const s = need(req, reply, o.users, 'viewer');
    if (!s) return reply;
    const q = req.query as Record<string, string | undefined>;
    const v = {
      text: q.text ?? '',
      chamber: q.chamber ?? '',
      variable: q.variable ?? '',
      pi: q.pi ?? '',
      from: q.from ?? '',
      to: q.to ?? '',
    };
    const errors: FieldErrors = {};
    if (v.from && (!ISO_DATE.test(v.from) || Number.isNaN(Date.parse(v.from))))
      errors.from = 'Use a date like 2025-03-01.';
    if (v.to && (!ISO_DATE.test(v.to) || Number.isNaN(Date.parse(v.to)))) errors.to = 'Use a date like 2025-03-31.';
    if (!errors.from && !errors.to && v.from && v.to && Date.parse(v.from) > Date.parse(v.to))
      errors.to = 'The end date is before the start date.';
    const found = Object.keys(errors).length
      ? []
      : o.store.list({
          text: v.text || undefined,
          chamber: v.chamber || undefined,
          variable: v.variable || undefined,
          pi: v.pi || undefined,
          from: v.from ? new Date(v.from) : undefined,
          to: v.to ? new Date(`${v.to}${v.to.length === 10 ? 'T23:59:59Z' : ''}`) : undefined,
        });
    const body = html`
      <form method="get" action="/experiments" class="card search" role="search" novalidate>
        ${errorSummary(errors, Object.keys(errors).length ? 'Please correct the search fields marked below.' : undefined)}
        <div class="grid">
        ${field('text', 'Text', { value: v.text, errors, type: 'search' })}
        ${field('chamber', 'Chamber', { value: v.chamber, errors })}
        ${field('variable', 'Variable', { value: v.variable, errors })}
        ${field('pi', 'Principal investigator', { value: v.pi, errors })}
        ${field('from', 'From (date)', { value: v.from, errors, type: 'date' })}
        ${field('to', 'To (date)', { value: v.to, errors, type: 'date' })}
        </div><button type="submit">Search</button>
      </form>
      <p role="status">${found.length} experiment${found.length === 1 ? '' : 's'}</p>
      <ul class="results">${found.map(
        (e) => html`<li class="card"><h2><a href="/experiments/${e.metadata.id}">${e.metadata.title}</a></h2>
        <p><code>${e.metadata.id}</code> · PI ${e.metadata.principal_investigator.name} · chambers ${e.metadata.chambers.join(', ')} · ${e.runs.length} run(s)${e.runs.some((r) => r.status === 'running') ? html` · <strong class="badge">running</strong>` : ''}</p>
        ${e.metadata.description ? html`<p>${e.metadata.description}</p>` : ''}</li>`,
      )}</ul>`;
    return send(reply, page('Experiments', s, body), Object.keys(errors).length ? 400 : 200);
  });

  // ---- new experiment -------------------------------------------------------------
  const newPage = (s: Session, errors: FieldErrors = {}, v: Record<string, string> = {}, general?: string) =>
    page(
      'New experiment',
      s,
      html`
    ${errorSummary(errors, general)}
    <form method="post" action="/experiments/new" novalidate class="card">${csrfField(s)}
      ${field('id', 'Identifier', { value: v.id, errors, hint: 'slug: 3–64 lower-case letters, digits and -', required: true })}
      ${field('title', 'Title', { value: v.title, errors, required: true })}
      ${field('pi_name', 'Principal investigator', { value: v.pi_name, errors, required: true })}
      ${field('pi_email', 'PI e-mail', { value: v.pi_email, errors, type: 'email' })}
      ${field('chambers', 'Chambers', { value: v.chambers, errors, hint: 'comma-separated, e.g. c1, c2', required: true })}
      ${field('project', 'Project', { value: v.project, errors })}
      ${field('keywords', 'Keywords', { value: v.keywords, errors, hint: 'comma-separated' })}
      ${field('variables', 'Variables archived', { value: v.variables, errors, hint: 'comma-separated tag names; empty = all' })}
      ${field('sampling_period_s', 'Sampling period (s)', { value: v.sampling_period_s ?? '1', errors, type: 'number' })}
      <div class="field${errors.description ? ' invalid' : ''}"><label for="f-description">Description</label>
        <textarea id="f-description" name="description" rows="4"${errors.description ? html` aria-invalid="true" aria-describedby="f-description-error"` : ''}>${v.description ?? ''}</textarea>
        ${errors.description ? html`<p class="error" id="f-description-error">${errors.description}</p>` : ''}</div>
      <button type="submit">Create</button></form>`,
    );
  app.get('/experiments/new', async (req, reply) => {
    const s = need(req, reply, o.users, 'operator');
    if (!s) return reply;
    return send(reply, newPage(s));
  });
  app.post('/experiments/new', async (req, reply) => {
    const s = needPost(req, reply, o.users, 'operator');
    if (!s) return reply;
    const f = (req.body ?? {}) as Form;
    const v = Object.fromEntries(
      [
        'id',
        'title',
        'pi_name',
        'pi_email',
        'chambers',
        'project',
        'keywords',
        'variables',
        'sampling_period_s',
        'description',
      ].map((k) => [k, one(f, k)]),
    );
    const errors: FieldErrors = {};
    const period = v.sampling_period_s ? Number(v.sampling_period_s) : 1;
    if (v.sampling_period_s && !Number.isFinite(period)) errors.sampling_period_s = 'Enter a number of seconds.';
    const input = {
      id: v.id,
      title: v.title,
      description: v.description,
      project: v.project,
      principal_investigator: { name: v.pi_name, ...(v.pi_email ? { email: v.pi_email } : {}) },
      chambers: list(v.chambers!),
      keywords: list(v.keywords!),
      variables: list(v.variables!),
      sampling_period_s: period,
    };
    if (!Object.keys(errors).length) {
      try {
        const e = await o.store.create(input, `web:${s.who.user}`);
        o.audit.write({ who: `web:${s.who.user}`, action: 'experiment_create', what: e.metadata.id });
        return reply.redirect(`/experiments/${e.metadata.id}`, 303);
      } catch (e) {
        if (!(e instanceof ExperimentError)) throw e;
        if (!e.issues.length) errors[e.status === 409 ? 'id' : 'chambers'] = e.message;
        for (const i of e.issues) {
          const path = i.path.replace(/^experiment[.:]?/, '');
          const key = path.startsWith('principal_investigator.email')
            ? 'pi_email'
            : path.startsWith('principal_investigator')
              ? 'pi_name'
              : ([
                  'id',
                  'title',
                  'chambers',
                  'project',
                  'keywords',
                  'variables',
                  'sampling_period_s',
                  'description',
                ].find((k) => path.startsWith(k)) ?? 'id');
          errors[key] ??=
            `${i.message}${i.got !== undefined && path !== key ? ` (${path}: ${JSON.stringify(i.got)})` : ''}`;
        }
      }
    }
    return send(reply, newPage(s, errors, v), 400);
  });

  // ---- one experiment ---------------------------------------------------------------
  const experimentPage = (
    s: Session,
    e: Experiment,
    errors: FieldErrors = {},
    subsetRun?: string,
    message?: string,
    reports?: Html,
  ) => {
    const m = e.metadata;
    const vars = o.store.variables(m);
    const op = atLeast(s.who.role, 'operator');
    const researcher = atLeast(s.who.role, 'researcher');
    const readme = existsSync(join(e.dir, 'README.md')) ? readFileSync(join(e.dir, 'README.md'), 'utf8') : '';
    const running = e.runs.find((r) => r.status === 'running');
    return page(
      m.title,
      s,
      html`
      ${message ? html`<p class="alert" role="alert">${message}</p>` : ''}
      <section aria-labelledby="meta-h" class="card"><h2 id="meta-h">Metadata</h2><dl class="meta">
        <dt>Identifier</dt><dd><code>${m.id}</code></dd>
        <dt>Principal investigator</dt><dd>${m.principal_investigator.name}${m.principal_investigator.institution ? `, ${m.principal_investigator.institution}` : ''}</dd>
        ${m.project ? html`<dt>Project</dt><dd>${m.project}</dd>` : ''}
        <dt>Chambers</dt><dd>${m.chambers.map((c, i) => html`${i ? ', ' : ''}<a href="${o.grafana.chamber(c)}" rel="external">${c}</a>`)}</dd>
        <dt>Licence</dt><dd>${m.licence}</dd>
        ${m.keywords.length ? html`<dt>Keywords</dt><dd>${m.keywords.join(', ')}</dd>` : ''}
        <dt>Sampling</dt><dd>every ${m.sampling_period_s} s</dd>
        ${m.description ? html`<dt>Description</dt><dd>${m.description}</dd>` : ''}
      </dl></section>
      ${
        m.treatments.length
          ? html`<section aria-labelledby="tr-h" class="card"><h2 id="tr-h">Treatments</h2><table><thead><tr><th scope="col">Chamber</th><th scope="col">Treatment</th><th scope="col">Setpoints</th></tr></thead><tbody>
        ${m.treatments.map(
          (t) =>
            html`<tr><td>${t.chamber}</td><td>${t.name}${t.description ? html`<br><small>${t.description}</small>` : ''}</td><td>${Object.entries(
              t.setpoints,
            )
              .map(([k, x]) => `${k} = ${x}`)
              .join(', ')}</td></tr>`,
        )}</tbody></table></section>`
          : ''
      }
      <section aria-labelledby="runs-h" class="card"><h2 id="runs-h">Runs</h2>
        ${
          e.runs.length
            ? html`<div class="scroll"><table><thead><tr><th scope="col">Run</th><th scope="col">Status</th><th scope="col">Start</th><th scope="col">Stop</th><th scope="col">Data</th></tr></thead><tbody>
        ${e.runs.map(
          (r) => html`<tr><td>${r.id}</td><td>${r.status}</td><td>${r.start}</td><td>${r.stop ?? '—'}</td><td>
          ${researcher ? html`<a href="/api/experiments/${m.id}/runs/${r.id}/data.nc" download class="dl-nc" data-run="${r.id}">NetCDF</a> · ` : ''}
          ${researcher && r.status === 'stopped' ? html`<a href="/api/experiments/${m.id}/runs/${r.id}/daily.nc" download class="dl-daily" data-run="${r.id}">Daily</a> · ` : ''}
          <a href="${o.grafana.run(m.id, r.id, r.start, r.stop)}" rel="external">Grafana</a> · <a href="/experiments/${m.id}?run=${r.id}#reports-h" class="run-reports">Reports</a>
          ${op && r.status === 'running' ? html`<form method="post" action="/experiments/${m.id}/runs/${r.id}/stop" class="inline">${csrfField(s)}<button type="submit">Stop ${r.id}</button></form>` : ''}
        </td></tr>`,
        )}</tbody></table></div>`
            : html`<p>No runs yet.</p>`
        }
        ${
          op
            ? running
              ? ''
              : html`<form method="post" action="/experiments/${m.id}/runs" class="card" novalidate>${csrfField(s)}${field('note', 'Note for the new run', { errors })}<button type="submit" id="start-run">Start a run</button></form>`
            : html`<p><small>Operators start and stop runs.</small></p>`
        }
      </section>
      ${
        researcher && e.runs.length
          ? html`<section aria-labelledby="sub-h" class="card"><h2 id="sub-h">Download a subset</h2>
        <form method="get" action="/experiments/${m.id}/subset" novalidate>
          ${errorSummary(subsetRun ? errors : undefined)}
          <div class="field"><label for="f-run">Run</label><select id="f-run" name="run">${e.runs.map((r) => html`<option${r.id === subsetRun ? html` selected` : ''}>${r.id}</option>`)}</select></div>
          <fieldset class="field${errors.vars ? ' invalid' : ''}"${errors.vars ? html` aria-describedby="f-vars-error"` : ''}><legend>Variables (none = all)</legend>
            ${vars.map((x) => html`<label class="check"><input type="checkbox" name="vars" value="${x.name}"> ${x.name}</label>`)}
            ${errors.vars ? html`<p class="error" id="f-vars-error">${errors.vars}</p>` : ''}</fieldset>
          ${field('from', 'From', { errors, hint: 'UTC, e.g. 2025-03-01T00:00:00Z or 2025-03-01; empty = start of the run' })}
          ${field('to', 'To', { errors, hint: 'empty = end of the run' })}
          <fieldset class="field"><legend>Format</legend><label class="check"><input type="radio" name="format" value="nc" checked> NetCDF</label><label class="check"><input type="radio" name="format" value="csv"> CSV</label></fieldset>
          <button type="submit">Download subset</button></form></section>
        <section aria-labelledby="zip-h" class="card"><h2 id="zip-h">Whole experiment (zip)</h2>
          <p>Prepared in the background; the link appears when ready and expires after a while.</p>
          <button type="button" id="bundle-start" data-experiment="${m.id}">Prepare zip</button>
          <progress id="bundle-progress" max="100" value="0" hidden aria-label="zip preparation"></progress> <span id="bundle-status" role="status" aria-live="polite"></span>
          <a id="bundle-link" hidden download>Download zip</a></section>`
          : ''
      }
      <section aria-labelledby="vars-h" class="card"><h2 id="vars-h">Variables</h2><div class="scroll"><table><thead><tr><th scope="col">Name</th><th scope="col">Units</th><th scope="col">Standard name</th><th scope="col">Description</th></tr></thead><tbody>
        ${vars.map((x) => html`<tr><td><code>${x.name}</code></td><td>${x.unit ?? ''}</td><td>${x.standard_name ?? ''}</td><td>${x.description ?? ''}</td></tr>`)}</tbody></table></div></section>
      ${
        e.runs.length
          ? html`<section aria-labelledby="plot-h" class="card"><h2 id="plot-h">Quick plot</h2>
        <form id="plot-form" data-experiment="${m.id}" class="grid">
          <div class="field"><label for="plot-run">Run</label><select id="plot-run">${[...e.runs].reverse().map((r) => html`<option>${r.id}</option>`)}</select></div>
          <div class="field"><label for="plot-var">Variable</label><select id="plot-var">${vars.map((x) => html`<option value="${x.name}">${x.name}${x.unit ? ` (${x.unit})` : ''}</option>`)}</select></div>
          <button type="submit">Plot</button></form>
        <figure id="plot" aria-live="polite"><figcaption>Choose a variable.</figcaption></figure></section>`
          : ''
      }
      ${reports ?? ''}
      <section aria-labelledby="cite-h" class="card"><h2 id="cite-h">Citation</h2><p id="citation">${citation(m, new Date(m.created ?? Date.now()).getUTCFullYear())}</p></section>
      ${readme ? html`<section aria-labelledby="readme-h" class="card"><h2 id="readme-h">README</h2><pre class="readme">${readme}</pre></section>` : ''}`,
    );
  };

  app.get('/experiments/:id', async (req, reply) => {
    const s = need(req, reply, o.users, 'viewer');
    if (!s) return reply;
    const id = (req.params as { id: string }).id;
    let e: Experiment;
    try {
      e = o.store.get(id);
    } catch (err) {
      if (err instanceof ExperimentError)
        return send(
          reply,
          page('Not found', s, html`<p class="alert" role="alert">${err.message}</p>`),
          err.status === 400 ? 404 : err.status,
        );
      throw err;
    }
    // Run reports (fidelity, completeness) of the chosen run, default the latest.
    const q = req.query as Record<string, string | string[] | undefined>;
    const want = String([q.run].flat()[0] ?? '');
    const run = e.runs.find((r) => r.id === want) ?? e.runs.at(-1);
    const reports = await runReportsSection(e, run, {
      runFile: o.runFile,
      tolerances: o.tolerances,
      compute: [q.compute].flat()[0] === '1',
    });
    return send(reply, experimentPage(s, e, {}, undefined, undefined, reports));
  });

  app.get('/experiments/:id/subset', async (req, reply) => {
    const s = need(req, reply, o.users, 'researcher');
    if (!s) return reply;
    const id = (req.params as { id: string }).id;
    const e = o.store.get(id);
    const q = req.query as Record<string, string | string[] | undefined>;
    const run = String([q.run].flat()[0] ?? '');
    const vars = [q.vars ?? []].flat().filter(Boolean);
    const from = String([q.from].flat()[0] ?? '').trim();
    const to = String([q.to].flat()[0] ?? '').trim();
    const errors: FieldErrors = {};
    const known = o.store.variables(e.metadata).map((x) => x.name);
    const bad = vars.filter((x) => !known.includes(x));
    if (bad.length) errors.vars = `Unknown variable(s): ${bad.join(', ')}.`;
    if (from && !Instant.safeParse(from).success)
      errors.from = 'Use a UTC time like 2025-03-01T00:00:00Z (or a date, 2025-03-01).';
    if (to && !Instant.safeParse(to).success)
      errors.to = 'Use a UTC time like 2025-03-02T00:00:00Z (or a date, 2025-03-02).';
    if (!errors.from && !errors.to && from && to && toMs(from)! > toMs(to)!) errors.to = 'The end is before the start.';
    const format = String([q.format].flat()[0] ?? 'nc');
    if (format !== 'nc' && format !== 'csv') errors.format = 'Choose NetCDF or CSV.';
    if (!e.runs.some((r) => r.id === run)) errors.run = `No run "${run}".`;
    if (Object.keys(errors).length)
      return send(reply, experimentPage(s, e, errors, run || e.runs[0]?.id, errors.run), 400);
    const qs = new URLSearchParams({
      ...(vars.length ? { vars: vars.join(',') } : {}),
      ...(from ? { from } : {}),
      ...(to ? { to } : {}),
    });
    return reply.redirect(
      `/api/experiments/${id}/runs/${run}/${format === 'csv' ? 'data.csv' : 'subset.nc'}${qs.size ? `?${qs}` : ''}`,
      303,
    );
  });

  const runAction = async (req: FastifyRequest, reply: FastifyReply, act: (s: Session, id: string) => void) => {
    const s = needPost(req, reply, o.users, 'operator');
    if (!s) return reply;
    const id = (req.params as { id: string }).id;
    try {
      // A run start/stop that cannot be audited is refused (503, the page says why).
      o.audit.ensureWritable(`run ${req.url.endsWith('/stop') ? 'stop' : 'start'} of ${id}`);
      act(s, id);
    } catch (err) {
      if (!(err instanceof ExperimentError) && !(err instanceof WriteFailedError)) throw err;
      return send(
        reply,
        experimentPage(s, o.store.get(id), {}, undefined, err.message),
        err instanceof WriteFailedError ? 503 : err.status,
      );
    }
    return reply.redirect(`/experiments/${id}`, 303);
  };
  app.post('/experiments/:id/runs', async (req, reply) =>
    runAction(req, reply, (s, id) => {
      const note = one((req.body ?? {}) as Form, 'note');
      if (note.length > 500) throw new ExperimentError(400, 'The note is longer than 500 characters.');
      const run = o.store.startRun(id, `web:${s.who.user}`, note || undefined);
      o.audit.record({
        who: `web:${s.who.user}`,
        action: 'run_start',
        what: `${id}/${run.id}`,
        detail: { chambers: run.chambers },
      });
    }),
  );
  app.post('/experiments/:id/runs/:run/stop', async (req, reply) =>
    runAction(req, reply, (s, id) => {
      const runId = (req.params as { run: string }).run;
      const run = o.store.stopRun(id, runId, `web:${s.who.user}`);
      o.audit.record({ who: `web:${s.who.user}`, action: 'run_stop', what: `${id}/${run.id}` });
    }),
  );
};

export type { Html };

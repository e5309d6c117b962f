import { atLeast } from '../auth/roles.ts';
import { html, type Html } from './html.ts';
import type { Session } from './session.ts';

export type FieldErrors = Record<string, string>;

export function page(title: string, s: Session | undefined, body: Html, o: { script?: boolean } = {}): string {
  const role = s?.who.role;
  const nav = s
    ? html`<nav aria-label="Main"><ul>
        <li><a href="/experiments">Experiments</a></li>
        <li><a href="/live">Live</a></li>
        <li><a href="/alarms">Alarms</a></li>
        ${role && atLeast(role, 'operator') ? html`<li><a href="/experiments/new">New experiment</a></li>` : ''}
        ${role && atLeast(role, 'admin') ? html`<li><a href="/admin">Admin</a></li>` : ''}
      </ul>
      <form method="post" action="/logout" class="inline"><input type="hidden" name="_csrf" value="${s.csrf}"><span class="who">${s.who.user} (${s.who.role})</span> <button type="submit">Sign out</button></form></nav>`
    : html`<nav aria-label="Main"><ul><li><a href="/login">Sign in</a></li><li><a href="/register">Register</a></li></ul></nav>`;
  return `<!doctype html>${
    html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Octopus</title><link rel="stylesheet" href="/static/app.css">${s ? html`<meta name="csrf-token" content="${s.csrf}">` : ''}</head>
<body><a class="skip" href="#main">Skip to content</a><header><a class="brand" href="/">Octopus</a>${nav}</header>
<main id="main"><h1>${title}</h1>${body}</main>
<footer><a href="/docs">API documentation</a></footer>${o.script !== false ? html`<script src="/static/app.js" defer></script>` : ''}</body></html>`
      .text
  }`;
}

/** A labelled input with its error (aria-describedby, aria-invalid). */
export function field(
  name: string,
  label: string,
  o: {
    value?: string;
    type?: string;
    errors?: FieldErrors;
    required?: boolean;
    hint?: string;
    autocomplete?: string;
    list?: string;
  },
): Html {
  const err = o.errors?.[name];
  const id = `f-${name}`;
  const desc = [o.hint ? `${id}-hint` : '', err ? `${id}-error` : ''].filter(Boolean).join(' ');
  return html`<div class="field${err ? ' invalid' : ''}"><label for="${id}">${label}</label>
    ${o.hint ? html`<small id="${id}-hint">${o.hint}</small>` : ''}
    <input id="${id}" name="${name}" type="${o.type ?? 'text'}" value="${o.value ?? ''}"${o.required ? html` required` : ''}${o.autocomplete ? html` autocomplete="${o.autocomplete}"` : ''}${o.list ? html` list="${o.list}"` : ''}${desc ? html` aria-describedby="${desc}"` : ''}${err ? html` aria-invalid="true"` : ''}>
    ${err ? html`<p class="error" id="${id}-error">${err}</p>` : ''}</div>`;
}

export const errorSummary = (errors: FieldErrors | undefined, general?: string): Html =>
  errors && Object.keys(errors).length
    ? html`<div class="alert" role="alert"><p>${general ?? 'Please correct the fields marked below; nothing was saved.'}</p></div>`
    : general
      ? html`<div class="alert" role="alert"><p>${general}</p></div>`
      : html``;

export const csrfField = (s: Session): Html => html`<input type="hidden" name="_csrf" value="${s.csrf}">`;

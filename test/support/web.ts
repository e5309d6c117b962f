/** Web-page form helpers for inject-based tests: the pre-session cookie + CSRF field of the sign-in forms, and sign-in. */
import type { FastifyInstance } from 'fastify';

export const form = (o: Record<string, string | string[]>): string => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) for (const x of [v].flat()) p.append(k, x);
  return p.toString();
};

/** `name=value` of every Set-Cookie of a response. */
export const setCookies = (r: { headers: Record<string, unknown> }): string[] =>
  [r.headers['set-cookie']]
    .flat()
    .filter((x): x is string => typeof x === 'string')
    .map((c) => c.split(';')[0]!);

export const csrfIn = (body: string): string =>
  (/name="_csrf" value="([^"]+)"/.exec(body) ?? /name="csrf-token" content="([^"]+)"/.exec(body))![1]!;

/** Opens a sign-in/registration/set-up form: its pre-session cookie and CSRF field. */
export async function openForm(
  app: FastifyInstance,
  url: string,
  headers: Record<string, string> = {},
): Promise<{ cookie: string; csrf: string }> {
  const r = await app.inject({ url, headers });
  const cookie = setCookies(r).find((c) => c.startsWith('octopus_presession=')) ?? headers.cookie ?? '';
  return { cookie, csrf: csrfIn(r.body) };
}

/** POSTs a sign-in form (opening it first for the pre-session CSRF token). */
export async function postForm(
  app: FastifyInstance,
  url: string,
  fields: Record<string, string>,
  o: { formUrl?: string; headers?: Record<string, string> } = {},
) {
  const f = await openForm(app, o.formUrl ?? url, o.headers);
  return app.inject({
    method: 'POST',
    url,
    headers: { ...o.headers, cookie: f.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: form({ _csrf: f.csrf, ...fields }),
  });
}

/** Signs in with a password; the session cookie and the page's CSRF token. */
export async function webSignIn(
  app: FastifyInstance,
  user: string,
  password: string,
): Promise<{ cookie: string; csrf: string }> {
  const r = await postForm(app, '/login', { username: user, password, next: '/experiments' });
  if (r.statusCode !== 303) throw new Error(`sign-in of ${user}: ${r.statusCode} ${r.body.slice(0, 300)}`);
  const cookie = setCookies(r).find((c) => c.startsWith('octopus_session='))!;
  const page = await app.inject({ url: '/experiments', headers: { cookie } });
  return { cookie, csrf: csrfIn(page.body) };
}

/** Every form of "leave this site" we know of; each must fall back to `/`. */
export const HOSTILE_NEXT = [
  '/\\evil.example',
  '/%5Cevil.example',
  '/%5cevil.example',
  '\\\\evil.example',
  '/\\/evil.example',
  '/\t/evil.example',
  '/%09/evil.example',
  '/\n/evil.example',
  '/%0A/evil.example',
  '/\r\n/evil.example',
  '/%0d%0a/evil.example',
  '//evil.example',
  '///evil.example',
  '/%2F%2Fevil.example',
  '/%2f/evil.example',
  '%2F%2Fevil.example',
  '/%252F%252Fevil.example',
  '/%25252F%25252Fevil.example',
  '/%2525252F%2525252Fevil.example',
  '/%252525255Cevil.example',
  'https://evil.example',
  'http:/evil.example',
  'HTTPS://evil.example/x',
  ' /\\evil.example',
  'evil.example',
  'javascript:alert(1)',
  'JaVaScRiPt:alert(1)',
  'javascript%3Aalert(1)',
  '/%00/evil.example',
  '\u0000//evil.example',
  'data:text/html,x',
  '',
];

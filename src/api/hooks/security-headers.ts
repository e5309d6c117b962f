import type { FastifyInstance } from 'fastify';

/**
 * The pages' policy: everything from this origin only, no inline script or style, no
 * framing, forms post only here. The page's behaviour is all in /static/app.js.
 */
export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The API documentation (/docs, Swagger UI) sets inline styles from its script, so it
 * alone may use inline styles; scripts still come only from this origin.
 */
export const DOCS_CSP = PAGE_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");

const COMMON: Record<string, string> = {
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
};

/**
 * Security headers on every response, in one place. Set on the raw response at
 * `onRequest`, so they are also on errors, 404s and hijacked streams (server-sent
 * events); a route may still override one with `reply.header`.
 */
export function installSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onRequest', (req, reply, done) => {
    const raw = reply.raw;
    for (const [k, v] of Object.entries(COMMON)) raw.setHeader(k, v);
    const path = req.url.split('?')[0]!;
    raw.setHeader('content-security-policy', path === '/docs' || path.startsWith('/docs/') ? DOCS_CSP : PAGE_CSP);
    // Over TLS (directly, or via a trusted proxy that says so): browsers stay on https.
    if (req.protocol === 'https') raw.setHeader('strict-transport-security', 'max-age=15552000');
    done();
  });
}

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';

const DIR = fileURLToPath(new URL('../../web/static/', import.meta.url));
const FILES: Record<string, string> = {
  'app.css': 'text/css; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
};

/** The page's own CSS and script (nothing is fetched from elsewhere). */
export const webStaticRoutes: FastifyPluginAsync = async (app) => {
  const cache = new Map<string, Buffer>();
  app.get('/static/:file', async (req, reply) => {
    const file = (req.params as { file: string }).file;
    const type = FILES[file];
    if (!type) return reply.code(404).send({ error: `no static file "${file}"` });
    let body = cache.get(file);
    if (!body) {
      body = readFileSync(DIR + file);
      if (process.env.NODE_ENV === 'production') cache.set(file, body);
    }
    return reply.type(type).header('cache-control', 'no-cache').send(body);
  });
};

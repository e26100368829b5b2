// The console: a fastify app on its own listener (CONSOLE_PORT), never beside the public webhook.
// Server-rendered HTML (src/console/html.ts escapes every value), a little JavaScript from
// src/console/assets/ and nothing inline or from elsewhere: the Content-Security-Policy says so.
// Auth, sessions and CSRF: src/console/auth.ts. The pages: src/console/routes/.
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import helmet from '@fastify/helmet';
import fastify, { type FastifyInstance } from 'fastify';
import { registerAuth } from './auth.ts';
import type { ConsoleDeps } from './context.ts';
import { html } from './html.ts';
import { PAGE_MODULES } from './routes/index.ts';

const ASSETS_DIR = join(import.meta.dirname, 'assets');
const CONTENT_TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

// Read once at start-up: the set of files is fixed, and a name not in it is a 404 (no path from
// the request ever reaches the file system).
function loadAssets(): Map<string, { body: Buffer; type: string }> {
  const assets = new Map<string, { body: Buffer; type: string }>();
  for (const name of readdirSync(ASSETS_DIR)) {
    const type = CONTENT_TYPES[extname(name)];
    if (type) assets.set(name, { body: readFileSync(join(ASSETS_DIR, name)), type });
  }
  return assets;
}

function simplePage(title: string, message: string): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title} · mailer console</title>
<link rel="stylesheet" href="/assets/console.css"></head>
<body class="login"><main><div class="card"><h1>${title}</h1><p>${message}</p>
<p><a href="/campaigns">Campaigns</a></p></div></main></body></html>`.text;
}

export function createConsoleApp(deps: ConsoleDeps): FastifyInstance {
  // X-Forwarded-For is believed from a proxy on this host only (the console binds to 127.0.0.1 by
  // default): behind one, every client would otherwise share its address, and the per-address
  // login limit with it.
  const app = fastify({ logger: false, bodyLimit: 256 * 1024, trustProxy: 'loopback' });
  const https = deps.config.publicUrl.startsWith('https:');
  app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        frameAncestors: ["'none'"],
        formAction: ["'self'"],
        // Only over https: on plain http it would send the page's own requests to https.
        ...(https ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    hsts: https ? { maxAge: 15_552_000, includeSubDomains: false } : false,
    referrerPolicy: { policy: 'same-origin' },
    frameguard: { action: 'deny' },
  });
  app.register(cookie);
  app.register(formbody);
  app.decorateRequest('user', undefined);
  app.decorateRequest('csrfToken', undefined);

  app.register(async (scope) => {
    const assets = loadAssets();
    scope.get<{ Params: { name: string } }>(
      '/assets/:name',
      { config: { public: true } },
      async (request, reply) => {
        const asset = assets.get(request.params.name);
        if (!asset) return reply.code(404).type('text/plain').send('no such asset\n');
        return reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body);
      },
    );
    // Browsers ask for it on every page; there is none, and a 404 would fill their consoles.
    scope.get('/favicon.ico', { config: { public: true } }, async (_request, reply) =>
      reply.code(204).send(),
    );
    registerAuth(scope, deps);
    scope.get('/', async (_request, reply) => reply.redirect('/campaigns', 303));
    for (const module of PAGE_MODULES) module.register(scope, deps);
  });

  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).type('text/html; charset=utf-8').send(simplePage('Not found', 'No such page.')),
  );
  app.setErrorHandler((error, request, reply) => {
    const status = (error as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500)
      deps.logger.error({ err: error, url: request.url }, 'console: request failed');
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .send(
        simplePage(
          status >= 500 ? 'Something went wrong' : 'Bad request',
          status >= 500
            ? 'The error is in the server log.'
            : error instanceof Error
              ? error.message
              : String(error),
        ),
      );
  });
  return app;
}

/** Listens on CONSOLE_HOST:CONSOLE_PORT; returns the URL and a close function. */
export async function openConsoleListener(
  deps: ConsoleDeps,
): Promise<{ url: string; close: () => Promise<void> } | undefined> {
  const { port, host } = deps.config.console;
  if (port === undefined) return undefined;
  const app = createConsoleApp(deps);
  const address = await app.listen({ port, host });
  deps.logger.info({ url: address }, 'console listening');
  return { url: address, close: () => app.close() };
}

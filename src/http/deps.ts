import type pg from 'pg';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { FetchCertificate, FetchLike } from '../sns/certificate.ts';

// Everything the HTTP server uses, passed in (tests inject the clock and both outbound fetches).
export interface HttpDeps {
  pool: pg.Pool;
  config: Config;
  logger: Logger;
  /** Milliseconds clock for SNS timestamp freshness; defaults to Date.now. */
  now?: () => number;
  /** Downloads SNS signing certificates; defaults to HTTPS (URLs already vetted as SNS hosts). */
  fetchCertificate?: FetchCertificate;
  /** Visits SubscribeURLs to confirm subscriptions; defaults to globalThis.fetch. */
  fetch?: FetchLike;
}

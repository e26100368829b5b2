import type { SESv2Client } from '@aws-sdk/client-sesv2';
import type pg from 'pg';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { TemplateRenderer } from '../ses/render.ts';

// Everything a task may use, passed in by the runner (no module singletons).
export interface TaskDeps {
  pool: pg.Pool;
  config: Config;
  logger: Logger;
  ses: SESv2Client;
  render: TemplateRenderer;
  metrics: Metrics;
  // Sends per second for global pacing; undefined or 0 means unpaced.
  sendRate(): number | undefined;
}

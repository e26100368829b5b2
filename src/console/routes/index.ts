// The console's page modules, registered by src/console/app.ts in this order. Each exports
// `register(app, deps)`; add one line per module.
import type { FastifyInstance } from 'fastify';
import type { ConsoleDeps } from '../context.ts';
import * as audit from './audit.ts';
import * as campaign from './campaign.ts';
import * as campaigns from './campaigns.ts';
import * as customers from './customers.ts';
import * as jobs from './jobs.ts';
import * as suppressions from './suppressions.ts';
import * as templates from './templates.ts';

export interface PageModule {
  register(app: FastifyInstance, deps: ConsoleDeps): void;
}

export const PAGE_MODULES: PageModule[] = [
  campaigns,
  audit,
  campaign,
  customers,
  suppressions,
  jobs,
  templates,
];

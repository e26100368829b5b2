// Can this account send a campaign? Asked before any recipient is touched, by `mailer ses check`
// and at worker start-up: the account (GetAccount), the From identity, the configuration set and
// its event publishing, and each active SES template. Nothing here exits or prints: the result
// is the problem lines (fatal ones marked) and what was found.
import {
  GetAccountCommand,
  type GetAccountCommandOutput,
  type SESv2Client,
} from '@aws-sdk/client-sesv2';
import type pg from 'pg';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { type ConfigurationSetFacts, checkConfigurationSet } from './preflight-events.ts';
import {
  checkFromIdentity,
  describeError,
  type Finding,
  type FromFacts,
} from './preflight-identity.ts';
import { checkSesTemplate } from './template-check.ts';

export interface AccountFacts {
  sendingEnabled: boolean;
  productionAccessEnabled: boolean;
  enforcementStatus: string | undefined;
  maxSendRate: number | undefined;
  max24HourSend: number | undefined;
  sentLast24Hours: number | undefined;
}

export interface SesCheckFacts {
  account: AccountFacts | undefined;
  from: FromFacts;
  configurationSet: ConfigurationSetFacts | undefined;
  /** The active `ses`-provider templates that were checked. */
  templates: string[];
}

export interface SesCheckResult {
  /** Every problem, one line each: account, From, configuration set, then templates. */
  problems: string[];
  /** The problems that mean SES cannot send any message at all (a subset of `problems`). */
  fatal: string[];
  facts: SesCheckFacts;
}

export interface SesCheckDependencies {
  client: SESv2Client;
  config: Pick<Config, 'ses' | 'sns'>;
  pool: Pick<pg.Pool, 'query'>;
}

async function checkAccount(
  client: SESv2Client,
): Promise<{ findings: Finding[]; facts: AccountFacts | undefined }> {
  let answer: GetAccountCommandOutput;
  try {
    answer = await client.send(new GetAccountCommand({}));
  } catch (error) {
    return {
      findings: [{ line: `GetAccount failed: ${describeError(error)}`, fatal: true }],
      facts: undefined,
    };
  }
  const facts: AccountFacts = {
    sendingEnabled: answer.SendingEnabled === true,
    productionAccessEnabled: answer.ProductionAccessEnabled === true,
    enforcementStatus: answer.EnforcementStatus,
    maxSendRate: answer.SendQuota?.MaxSendRate,
    max24HourSend: answer.SendQuota?.Max24HourSend,
    sentLast24Hours: answer.SendQuota?.SentLast24Hours,
  };
  const findings: Finding[] = [];
  if (!facts.sendingEnabled) {
    findings.push({
      line: 'sending is disabled for this account (SendingEnabled false): SES refuses every message',
      fatal: true,
    });
  }
  if (facts.enforcementStatus === 'SHUTDOWN') {
    findings.push({ line: 'account is shut down (EnforcementStatus SHUTDOWN)', fatal: true });
  } else if (facts.enforcementStatus === 'PROBATION') {
    findings.push({
      line: 'account is on probation (EnforcementStatus PROBATION): SES is reviewing its bounce and complaint rates',
      fatal: false,
    });
  }
  if (!facts.productionAccessEnabled) {
    findings.push({
      line:
        'account is in the SES sandbox: it sends only to verified addresses and the mailbox ' +
        `simulator, at most ${facts.max24HourSend ?? '?'} messages per 24 hours; request ` +
        'production access in the SES console',
      fatal: false,
    });
  }
  return { findings, facts };
}

async function checkTemplates(
  client: SESv2Client,
  pool: Pick<pg.Pool, 'query'>,
): Promise<{ findings: Finding[]; names: string[] }> {
  const { rows } = await pool.query<{ name: string }>(
    `select distinct provider_template_name as name from public.templates
      where is_active and provider = 'ses' order by 1`,
  );
  const names = rows.map((row) => row.name);
  const lines = await Promise.all(names.map((name) => checkSesTemplate(client, name)));
  return { findings: lines.flat().map((line) => ({ line, fatal: false })), names };
}

export async function checkSesAccount(deps: SesCheckDependencies): Promise<SesCheckResult> {
  const { client, config, pool } = deps;
  const [account, from, events, templates] = await Promise.all([
    checkAccount(client),
    checkFromIdentity(client, config.ses.from),
    checkConfigurationSet(client, config.ses.configurationSet, config.sns.topicArns),
    checkTemplates(client, pool),
  ]);
  const findings = [
    ...account.findings,
    ...from.findings,
    ...events.findings,
    ...templates.findings,
  ];
  return {
    problems: findings.map((finding) => finding.line),
    fatal: findings.filter((finding) => finding.fatal).map((finding) => finding.line),
    facts: {
      account: account.facts,
      from: from.facts,
      configurationSet: events.facts,
      templates: templates.names,
    },
  };
}

/**
 * For worker start-up: logs each problem (fatal ones as errors, the rest as warnings) and
 * returns false when SES cannot send at all, so the caller stops before taking a job.
 */
export async function checkSesAtStartup(
  deps: SesCheckDependencies & { logger: Logger },
): Promise<boolean> {
  const result = await checkSesAccount(deps);
  for (const problem of result.problems) {
    if (result.fatal.includes(problem)) deps.logger.error({ problem }, 'SES check: cannot send');
    else deps.logger.warn({ problem }, 'SES check');
  }
  return result.fatal.length === 0;
}

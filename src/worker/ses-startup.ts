// The SES connection of a process that sends (`mailer worker`, `mailer start`): connect, and for
// real SES run the same check as `mailer ses check` before the first job is taken. A problem that
// stops every send (GetAccount refused, sending disabled, an unverified From, a missing
// configuration set) stops the process with exit 2; the others are logged as warnings. A local
// SES is not checked: it proves nothing about an account.
import type pg from 'pg';
import { type Config, ConfigError } from '../config.ts';
import type { Logger } from '../logger.ts';
import { connectSes } from '../ses/connect.ts';
import { checkSesAtStartup } from '../ses/preflight.ts';

export async function connectSesForSending(config: Config, logger: Logger, pool: pg.Pool) {
  const ses = await connectSes(config, logger);
  if (ses.target.kind !== 'aws') return ses;
  if (!(await checkSesAtStartup({ client: ses.client, config, pool, logger }))) {
    await ses.close();
    throw new ConfigError(
      'SES cannot send for this account (the SES check lines above say why); fix it, then ' +
        'start again (`mailer ses check` runs the same check)',
    );
  }
  return ses;
}

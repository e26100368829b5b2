import { type Command, InvalidArgumentError } from 'commander';
import { UsageError } from '../context.ts';

function webhookUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`expected an http(s) URL, got ${value}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`expected an http(s) URL, got ${value}`);
  }
  return url.href;
}

export function registerSesLocal(program: Command): void {
  program
    .command('ses-local')
    .description(
      'Run the local SES-compatible endpoint (for the demo, tests and benchmarks; nothing is ' +
        'delivered). LOCAL_SES_PORT (4579), LOCAL_SES_HOST, LOCAL_SES_MAX_SEND_RATE. Admin API ' +
        'under /_local/ (messages, stats, faults, rate, account)',
    )
    .option(
      '--events-webhook <url>',
      "publish the mailbox simulator's events (Send, Delivery, Bounce, Complaint) for every " +
        'accepted message to this URL as signed SNS notifications, e.g. ' +
        'http://127.0.0.1:3000/webhooks/ses of a `mailer serve` run with ' +
        'SNS_TOPIC_ARNS=arn:aws:sns:us-east-1:000000000000:mailer-local-ses-events and ' +
        'SNS_TRUST_LOCAL_CERT=true',
      webhookUrl,
    )
    .action(async (flags: { eventsWebhook?: string }) => {
      const [{ runLocalSes, parseLocalSesEnv }, { createLogger }] = await Promise.all([
        import('../../ses-local/main.ts'),
        import('../../logger.ts'),
      ]);
      try {
        parseLocalSesEnv(process.env);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      await runLocalSes(process.env, createLogger({ level: process.env.LOG_LEVEL ?? 'info' }), {
        eventsWebhook: flags.eventsWebhook,
      });
    });
}

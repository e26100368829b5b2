import {
  CreateEmailTemplateCommand,
  type EmailTemplateContent,
  SESv2Client,
  type SESv2ClientConfig,
  SendEmailCommand,
  type Template,
} from '@aws-sdk/client-sesv2';
import type { ExecutionContext } from 'ava';
import type { Db } from '../../src/db/pool.ts';
import { buildSendEmailInput, type OutgoingEmail } from '../../src/ses/message.ts';
import type { SentMessage } from '../../src/ses-local/model.ts';
import { type LocalSes, type LocalSesOptions, startLocalSes } from '../../src/ses-local/server.ts';
import { createTemplate } from '../helpers/factories.ts';
import { forFile } from '../helpers/for-file.ts';

/** The real SDK client against a local endpoint; one attempt, so SDK retries never hide an error. */
export function createSesClient(url: string, overrides: SESv2ClientConfig = {}): SESv2Client {
  return new SESv2Client({
    endpoint: url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
    ...overrides,
  });
}

/**
 * Creates the SES template `name` through `client`, or through a client of its own for the
 * endpoint at `client` when that is a URL.
 */
export async function createSesTemplate(
  client: SESv2Client | string,
  name: string,
  content: EmailTemplateContent,
): Promise<void> {
  const sender = typeof client === 'string' ? createSesClient(client) : client;
  try {
    await sender.send(
      new CreateEmailTemplateCommand({ TemplateName: name, TemplateContent: content }),
    );
  } finally {
    if (sender !== client) sender.destroy();
  }
}

/**
 * Week `week`'s template as an SES template: `name` created in the local SES at `sesUrl` with
 * `content`, and the templates row that names it.
 */
export async function createSesWeekTemplate(
  db: Db,
  sesUrl: string,
  week: number,
  name: string,
  content: EmailTemplateContent,
): Promise<void> {
  await createSesTemplate(sesUrl, name, content);
  await createTemplate(db, { week_of_month: week, provider: 'ses', provider_template_name: name });
}

/**
 * This test file's local SES, started before its tests and closed after them, as databaseForFile
 * does for the database. Call it at the top of the file; it can be used from the file's own
 * before hooks on.
 */
export function localSesForFile(options: LocalSesOptions = {}): LocalSes {
  const started = forFile(
    'SES',
    () => startLocalSes(options),
    (ses) => ses.close(),
  );
  return {
    get url() {
      return started().url;
    },
    get port() {
      return started().port;
    },
    sent: () => started().sent(),
    clear: () => started().clear(),
    setFaults: (faults) => started().setFaults(faults),
    setMaxSendRate: (rate) => started().setMaxSendRate(rate),
    sendCallCount: () => started().sendCallCount(),
    close: () => started().close(),
  };
}

/** A fresh local SES and client per test, both closed when the test ends. */
export async function startForTest(
  t: ExecutionContext,
  options: LocalSesOptions = {},
): Promise<{ ses: LocalSes; client: SESv2Client }> {
  const ses = await startLocalSes(options);
  const client = createSesClient(ses.url);
  t.teardown(async () => {
    client.destroy();
    await ses.close();
  });
  return { ses, client };
}

/** A settable clock for the rate windows, so rate tests never sleep. */
export function manualClock(start = 1_700_000_000_000): {
  now: () => number;
  advance: (ms: number) => void;
} {
  let current = start;
  return {
    now: () => current,
    advance: (ms) => {
      current += ms;
    },
  };
}

export const simpleEmail = (to: string[] = ['reader@example.com']) => ({
  FromEmailAddress: 'news@example.com',
  Destination: { ToAddresses: to },
  Content: {
    Simple: {
      Subject: { Data: 'Weekly news' },
      Body: { Text: { Data: 'Hello' }, Html: { Data: '<p>Hello</p>' } },
    },
  },
});

/** A SendEmail input of the stored template that `template` names, with its data. */
export const templateEmail = (template: Template, to: string[] = ['reader@example.com']) => ({
  FromEmailAddress: 'news@example.com',
  Destination: { ToAddresses: to },
  Content: { Template: template },
});

/** Raw HTTP against the local endpoint, for requests the SDK would never send. */
export async function rawRequest(
  url: string,
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; errorType: string | null; json: unknown }> {
  const response = await fetch(`${url}${path}`, {
    method,
    body,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
  });
  const text = await response.text();
  return {
    status: response.status,
    errorType: response.headers.get('x-amzn-errortype'),
    json: text.length > 0 ? JSON.parse(text) : undefined,
  };
}

/** The unsubscribe URL in sendToReader's messages. */
export const READER_UNSUBSCRIBE_URL =
  'https://mail.example.com/unsubscribe/00000000-0000-4000-8000-000000000000';

/**
 * Sends one campaign message with `content` to reader@example.com, built by buildSendEmailInput,
 * through `client` to the local SES `ses`; returns the message as SES recorded it, if it did.
 */
export async function sendToReader(
  client: SESv2Client,
  ses: LocalSes,
  content: OutgoingEmail['content'],
): Promise<SentMessage | undefined> {
  const { MessageId } = await client.send(
    new SendEmailCommand(
      buildSendEmailInput({
        from: 'Mailer <mailer@example.com>',
        to: 'reader@example.com',
        campaignId: '00000000-0000-4000-8000-000000000001',
        customerId: '00000000-0000-4000-8000-000000000002',
        unsubscribeUrl: READER_UNSUBSCRIBE_URL,
        configurationSet: undefined,
        content,
      }),
    ),
  );
  return ses.sent().find((m) => m.messageId === MessageId);
}

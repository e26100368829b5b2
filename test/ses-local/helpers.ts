import { SESv2Client, type SESv2ClientConfig } from '@aws-sdk/client-sesv2';
import type { ExecutionContext } from 'ava';
import { type LocalSes, type LocalSesOptions, startLocalSes } from '../../src/ses-local/server.ts';

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

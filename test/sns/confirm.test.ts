import test from 'ava';
import type { FetchLike } from '../../src/sns/certificate.ts';
import { confirmSubscription, SnsConfirmationError } from '../../src/sns/confirm.ts';
import type { SnsSubscriptionConfirmation } from '../../src/sns/message.ts';
import { confirmationFields, sign } from './helpers.ts';

const SUBSCRIPTION_ARN = 'arn:aws:sns:eu-west-1:123456789012:mailer-ses-events:8a21d249';
const CONFIRMED = `<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <ConfirmSubscriptionResult><SubscriptionArn>${SUBSCRIPTION_ARN}</SubscriptionArn></ConfirmSubscriptionResult>
</ConfirmSubscriptionResponse>`;

function recordingFetch(response: () => Response = () => new Response(CONFIRMED)) {
  const requests: Array<{ url: string; init: RequestInit }> = [];
  const fetch: FetchLike = async (url, init) => {
    requests.push({ url: url.href, init });
    return response();
  };
  return { fetch, requests };
}

function confirmation(SubscribeURL?: string): SnsSubscriptionConfirmation {
  return sign(confirmationFields('SubscriptionConfirmation', SubscribeURL ? { SubscribeURL } : {}));
}

test('visits an SNS SubscribeURL exactly once and returns the subscription ARN', async (t) => {
  const envelope = confirmation();
  const { fetch, requests } = recordingFetch();
  t.deepEqual(await confirmSubscription(envelope, { fetch }), {
    subscriptionArn: SUBSCRIPTION_ARN,
  });
  t.deepEqual(
    requests.map((request) => request.url),
    [new URL(envelope.SubscribeURL).href],
  );
  t.is(requests[0]?.init.redirect, 'error');
  t.true(requests[0]?.init.signal instanceof AbortSignal);
});

const foreignSubscribeUrls = [
  'https://evil.com/?Action=ConfirmSubscription&Token=1',
  'https://sns.eu-west-1.amazonaws.com.evil.com/?Action=ConfirmSubscription&Token=1',
  'http://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=1',
  'https://sns.eu-west-1.amazonaws.com:8080/?Action=ConfirmSubscription&Token=1',
  'https://admin@sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=1',
  'https://sns.s3.amazonaws.com/?Action=ConfirmSubscription&Token=1',
  'https://169.254.169.254/latest/meta-data/',
  'file:///etc/passwd',
];

for (const url of foreignSubscribeUrls) {
  test(`never requests the foreign SubscribeURL ${url}`, async (t) => {
    const { fetch, requests } = recordingFetch();
    const error = await t.throwsAsync(confirmSubscription(confirmation(url), { fetch }), {
      instanceOf: SnsConfirmationError,
    });
    t.is(error?.reason, 'bad_subscribe_url');
    t.deepEqual(requests, []);
  });
}

test('refuses an envelope that is not a SubscriptionConfirmation without any request', async (t) => {
  const unsubscribe = sign(confirmationFields('UnsubscribeConfirmation'));
  const { fetch, requests } = recordingFetch();
  const error = await t.throwsAsync(
    confirmSubscription(unsubscribe as unknown as SnsSubscriptionConfirmation, { fetch }),
    { instanceOf: SnsConfirmationError },
  );
  t.is(error?.reason, 'not_a_subscription_confirmation');
  t.deepEqual(requests, []);
});

test('reports a non-2xx answer from SNS as a failed request', async (t) => {
  const { fetch } = recordingFetch(() => new Response('<Error/>', { status: 403 }));
  const error = await t.throwsAsync(confirmSubscription(confirmation(), { fetch }), {
    instanceOf: SnsConfirmationError,
  });
  t.is(error?.reason, 'request_failed');
});

test('reports a network failure as a failed request', async (t) => {
  const fetch: FetchLike = async () => {
    throw new TypeError('fetch failed');
  };
  const error = await t.throwsAsync(confirmSubscription(confirmation(), { fetch }), {
    instanceOf: SnsConfirmationError,
  });
  t.is(error?.reason, 'request_failed');
});

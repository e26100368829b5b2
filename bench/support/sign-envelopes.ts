// Signs SNS Notification envelopes the way the local SES endpoint's event publisher does (the
// project's signSnsEnvelope and committed local key), spread over worker threads: an RSA-2048
// signature costs ~0.6 ms here, and the events benchmark needs tens of thousands.
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { LOCAL_TOPIC_ARN } from '../../src/ses-local/event-publisher.ts';
import type { SnsSignedFields } from '../../src/sns/message.ts';

/** One signed Notification body (JSON text, as SNS POSTs it) per SES event, in order. */
export async function signedNotifications(events: Record<string, unknown>[]): Promise<string[]> {
  const now = new Date().toISOString();
  const fields = events.map(
    (event): SnsSignedFields => ({
      Type: 'Notification',
      MessageId: randomUUID(),
      TopicArn: LOCAL_TOPIC_ARN,
      Message: JSON.stringify(event),
      Timestamp: now,
      UnsubscribeURL: `https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${LOCAL_TOPIC_ARN}:bench`,
    }),
  );
  const threads = Math.max(1, availableParallelism());
  const share = Math.ceil(fields.length / threads);
  const parts = await Promise.all(
    Array.from(
      { length: threads },
      (_, i) =>
        new Promise<string[]>((resolve, reject) => {
          const worker = new Worker(new URL('./sign-worker.ts', import.meta.url), {
            workerData: fields.slice(i * share, (i + 1) * share),
          });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
  return parts.flat();
}

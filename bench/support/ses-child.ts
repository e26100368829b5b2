// Child side of ses-process.ts: the project's local SES endpoint, no latency, no rate limit.
import { startLocalSes } from '../../src/ses-local/server.ts';

const acceptedAt: number[] = [];
const perAddress = new Map<string, number>();
const ses = await startLocalSes({
  onSend: (message) => {
    acceptedAt.push(message.acceptedAt);
    for (const to of message.to) perAddress.set(to, (perAddress.get(to) ?? 0) + 1);
  },
});

process.on('message', (m: { type: string; faults?: object }) => {
  if (m.type === 'summary') {
    let duplicates = 0;
    for (const n of perAddress.values()) if (n > 1) duplicates++;
    process.send?.({
      calls: ses.sendCallCount(),
      accepted: acceptedAt.length,
      acceptedAt,
      duplicates,
      distinctRecipients: perAddress.size,
    });
  } else if (m.type === 'clear') {
    ses.clear();
    acceptedAt.length = 0;
    perAddress.clear();
    process.send?.({});
  } else if (m.type === 'faults') {
    ses.setFaults(m.faults ?? {});
    process.send?.({});
  }
});
process.on('SIGTERM', () => {
  ses.close().then(() => process.exit(0));
});
process.send?.({ url: ses.url });

// Whether SES lets this account send from MAIL_FROM: an address may be used as From when the
// address itself or its domain is an identity verified for sending (VerifiedForSendingStatus).
import {
  GetEmailIdentityCommand,
  NotFoundException,
  type SESv2Client,
} from '@aws-sdk/client-sesv2';

/** One problem line; fatal when SES certainly cannot send any message of a campaign. */
export interface Finding {
  line: string;
  fatal: boolean;
}

export interface FromFacts {
  address: string;
  /** The identity that makes the From sendable (the address or its domain), when one does. */
  verifiedBy?: string;
}

export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** The bare address of `Name <addr@domain>` or `addr@domain`; undefined when there is none. */
export function fromAddress(from: string): string | undefined {
  const address = (/<([^<>]*)>\s*$/.exec(from)?.[1] ?? from).trim();
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1 || /\s/.test(address)) return undefined;
  return address;
}

type Lookup =
  | { kind: 'verified' }
  | { kind: 'unverified'; status: string }
  | { kind: 'missing' }
  | { kind: 'failed'; error: string };

async function lookUp(client: SESv2Client, identity: string): Promise<Lookup> {
  try {
    const answer = await client.send(new GetEmailIdentityCommand({ EmailIdentity: identity }));
    if (answer.VerifiedForSendingStatus) return { kind: 'verified' };
    return { kind: 'unverified', status: answer.VerificationStatus ?? 'not verified' };
  } catch (error) {
    if (error instanceof NotFoundException) return { kind: 'missing' };
    return { kind: 'failed', error: describeError(error) };
  }
}

export async function checkFromIdentity(
  client: SESv2Client,
  from: string,
): Promise<{ findings: Finding[]; facts: FromFacts }> {
  const address = fromAddress(from);
  if (!address) {
    return {
      findings: [{ line: `MAIL_FROM ${from} has no email address`, fatal: true }],
      facts: { address: from },
    };
  }
  const domain = address.slice(address.lastIndexOf('@') + 1);
  const candidates = [address, domain];
  const answers = await Promise.all(candidates.map((identity) => lookUp(client, identity)));
  const verifiedBy = candidates.find((_, i) => answers[i]?.kind === 'verified');
  if (verifiedBy) return { findings: [], facts: { address, verifiedBy } };

  const findings: Finding[] = [];
  const pending: string[] = [];
  candidates.forEach((identity, i) => {
    const answer = answers[i];
    if (answer?.kind === 'failed') {
      findings.push({ line: `GetEmailIdentity ${identity} failed: ${answer.error}`, fatal: false });
    } else if (answer?.kind === 'unverified') {
      pending.push(`identity ${identity} is ${answer.status}`);
    }
  });
  // Only when SES answered for both identities is the From known to be refused.
  if (findings.length === 0) {
    const why =
      pending.length > 0
        ? pending.join(', ')
        : `neither the address nor its domain ${domain} is an SES identity`;
    findings.push({
      line: `From address ${address} is not verified for sending: ${why}`,
      fatal: true,
    });
  }
  return { findings, facts: { address } };
}

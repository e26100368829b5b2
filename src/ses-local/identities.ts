// The verified identities (email addresses and domains) of one local SES instance. An identity
// created here is verified at once: there is no mailbox to click a link in, no DNS to hold DKIM
// records.
//
// Permissive until the first CreateEmailIdentity: a local SES that nobody set up treats every
// identity as verified (GetEmailIdentity answers SUCCESS for any name, SendEmail accepts any
// From), so the tests, benchmarks and tools that never create one keep working. From the first
// CreateEmailIdentity on it is strict like SES, for good (deleting every identity does not make
// it permissive again): GetEmailIdentity answers NotFound for other names, and SendEmail refuses
// a From whose address and domain are both unverified, and in the sandbox every recipient that
// is not verified (the mailbox simulator excepted).
import { z } from 'zod';
import { alreadyExists, messageRejected, notFound, type SesApiError } from './errors.ts';
import { bareAddress } from './raw-mime.ts';

/** The region named in SES's "not verified" message; the local endpoint plays us-east-1. */
export const LOCAL_REGION = 'US-EAST-1';
const SIMULATOR_DOMAIN = 'simulator.amazonses.com';

const identityName = z
  .string()
  .min(1)
  .max(320)
  .regex(/^([^@\s]+@)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/, 'an email address or a domain');

export const createIdentitySchema = z.object({
  EmailIdentity: identityName,
  ConfigurationSetName: z.string().optional(),
});

interface StoredIdentity {
  name: string;
  configurationSetName: string | undefined;
}

const identityType = (name: string) => (name.includes('@') ? 'EMAIL_ADDRESS' : 'DOMAIN');

function describe(name: string, configurationSetName?: string): Record<string, unknown> {
  const domain = identityType(name) === 'DOMAIN';
  return {
    IdentityType: identityType(name),
    FeedbackForwardingStatus: true,
    VerifiedForSendingStatus: true,
    VerificationStatus: 'SUCCESS',
    DkimAttributes: {
      SigningEnabled: domain,
      Status: domain ? 'SUCCESS' : 'NOT_STARTED',
      SigningAttributesOrigin: 'AWS_SES',
      Tokens: [],
    },
    MailFromAttributes: { BehaviorOnMxFailure: 'USE_DEFAULT_VALUE' },
    Policies: {},
    Tags: [],
    ...(configurationSetName ? { ConfigurationSetName: configurationSetName } : {}),
  };
}

/** SES's answer to a SendEmail naming unverified identities. */
export function identitiesNotVerified(identities: string[]): SesApiError {
  return messageRejected(
    'Email address is not verified. The following identities failed the check in region ' +
      `${LOCAL_REGION}: ${identities.join(', ')}`,
  );
}

export class IdentityStore {
  // Keys are lowercased: domains are case-insensitive, and so are addresses in practice.
  #identities = new Map<string, StoredIdentity>();
  #strict = false;

  /** True once any identity was created: from then on only created identities are verified. */
  get strict(): boolean {
    return this.#strict;
  }

  create(request: z.infer<typeof createIdentitySchema>): Record<string, unknown> {
    const key = request.EmailIdentity.toLowerCase();
    if (this.#identities.has(key)) {
      throw alreadyExists(`Email identity ${request.EmailIdentity} already exists.`);
    }
    this.#identities.set(key, {
      name: request.EmailIdentity,
      configurationSetName: request.ConfigurationSetName,
    });
    this.#strict = true;
    const { IdentityType, VerifiedForSendingStatus, DkimAttributes } = describe(key);
    return { IdentityType, VerifiedForSendingStatus, DkimAttributes };
  }

  get(name: string): Record<string, unknown> {
    if (!this.#strict) return describe(name);
    const identity = this.#identities.get(name.toLowerCase());
    if (!identity) throw notFound(`Email identity ${name} does not exist.`);
    return describe(identity.name, identity.configurationSetName);
  }

  delete(name: string): void {
    if (!this.#identities.delete(name.toLowerCase())) {
      throw notFound(`Email identity ${name} does not exist.`);
    }
  }

  /** An address may be used when it or its domain is a verified identity. */
  isVerifiedAddress(address: string): boolean {
    if (!this.#strict) return true;
    const bare = bareAddress(address).toLowerCase();
    const domain = bare.slice(bare.lastIndexOf('@') + 1);
    return this.#identities.has(bare) || this.#identities.has(domain);
  }

  /** The identities SendEmail would refuse: an unverified From, and in the sandbox recipients. */
  unverified(from: string, recipients: string[], sandbox: boolean): string[] {
    if (!this.#strict) return [];
    const failed = this.isVerifiedAddress(from) ? [] : [bareAddress(from)];
    if (!sandbox) return failed;
    for (const recipient of recipients) {
      const bare = bareAddress(recipient);
      const simulator = bare.toLowerCase().endsWith(`@${SIMULATOR_DOMAIN}`);
      if (!simulator && !this.isVerifiedAddress(bare)) failed.push(bare);
    }
    return failed;
  }
}

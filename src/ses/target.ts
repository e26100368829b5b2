// Which SES a process talks to, decided from configuration alone (no network), so that every
// command answers the same way: the worker, the CLI's generation, the templates command.
//   in-process: SES_ENDPOINT=local, the local SES started inside this process (an explicit opt-in;
//               nothing leaves the machine).
//   local:      an endpoint URL on a loopback host (`mailer ses-local`, the tests): requests are
//               signed with placeholder credentials, which the local SES does not check.
//   aws:        anything else, the SDK's default endpoint included: credentials and region from
//               the AWS SDK's own chains, never a placeholder.
import type { Config } from '../config.ts';

export type SesTarget =
  | { kind: 'in-process' }
  | { kind: 'local'; url: string; source: string }
  | { kind: 'aws'; url: string | undefined; source: string };

export function sesTarget(config: Config): SesTarget {
  const { endpoint, sdkEndpoint } = config.ses;
  if (endpoint === 'local') return { kind: 'in-process' };
  const url = endpoint ?? sdkEndpoint;
  const source = endpoint
    ? 'SES_ENDPOINT'
    : sdkEndpoint
      ? 'AWS_ENDPOINT_URL_SESV2 or AWS_ENDPOINT_URL'
      : 'the AWS SDK default';
  if (url !== undefined && isLoopbackUrl(url)) return { kind: 'local', url, source };
  return { kind: 'aws', url, source };
}

export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return false;
  }
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ||
    host === '[::1]'
  );
}

/**
 * Unsubscribe links are written into recipients' rows at generation. A PUBLIC_URL on a loopback
 * host in mail that leaves this machine is a link no recipient can open (and an unsubscribe that
 * cannot work): refused, with the line that says what to set.
 */
export function publicUrlProblem(config: Config): string | undefined {
  if (sesTarget(config).kind !== 'aws' || !isLoopbackUrl(config.publicUrl)) return undefined;
  return (
    `PUBLIC_URL is ${config.publicUrl}, but this campaign would be sent through real SES: ` +
    'set PUBLIC_URL to the public https address of `mailer serve` (unsubscribe links point ' +
    'there), or SES_ENDPOINT for this command too when the workers send through a local SES'
  );
}

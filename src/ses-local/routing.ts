import { setTimeout as sleep } from 'node:timers/promises';

/** A request whose body has already been read, as route handlers see it. */
export interface ApiRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: Buffer;
  /** The SigV4 access key id of the Authorization header, if any (the local SES checks none). */
  accessKeyId?: string;
  /** Aborted when the server closes, so held responses do not keep it open. */
  signal: AbortSignal;
}

export interface ApiReply {
  status: number;
  body: unknown;
}

export const ok = (body: unknown): ApiReply => ({ status: 200, body });

export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (ms > 0) await sleep(ms, undefined, { signal });
}

// Where mailer changes the AWS SDK's own SESv2 client, all in one place, because each change
// leans on SDK internals (middleware names and steps) that an SDK upgrade may move:
// - tuneSendingStack removes per-request steps a sending worker does not need, replaces the retry
//   step by a pass-through (one attempt per call: whether to retry is ours to decide), and adds
//   the write gate (writeWhen: a paced send waits for its slot there). It throws when a
//   middleware it removes is missing, so an upgrade that renames one fails the tests
//   (test/ses/sdk-stack.test.ts) instead of silently costing CPU.
// - cacheSigner keeps the request signer the SDK builds for every request: one per auth scheme.
// - Sha256 is the hash the SDK signs requests with (SigV4: SHA-256 and HMAC-SHA-256), made
//   cheaper for a client that signs thousands of requests a second. The SDK's own class hands
//   node:crypto the HMAC key as bytes on every request, and node:crypto turns bytes into a key
//   object each time: ~28 us per HMAC here, against ~5 us with a key object made once. The
//   signing key the SDK derives is one cached Uint8Array per day, region and service, so its key
//   object is kept in a WeakMap keyed by that array and goes when the SDK drops the key.

import {
  createHash,
  createHmac,
  createSecretKey,
  type Hash,
  type Hmac,
  type KeyObject,
} from 'node:crypto';
import type { SESv2Client } from '@aws-sdk/client-sesv2';

type SourceData = string | ArrayBuffer | ArrayBufferView;

const keyObjects = new WeakMap<object, KeyObject>();

function bytes(data: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (ArrayBuffer.isView(data))
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

function hmacKey(secret: SourceData): string | KeyObject {
  if (typeof secret === 'string') return secret; // node:crypto is fast with strings already
  let key = keyObjects.get(secret);
  if (!key) {
    key = createSecretKey(bytes(secret));
    keyObjects.set(secret, key);
  }
  return key;
}

export class Sha256 {
  private readonly secret: SourceData | undefined;
  private hash: Hash | Hmac;

  constructor(secret?: SourceData) {
    this.secret = secret;
    this.hash = this.create();
  }

  private create(): Hash | Hmac {
    // Like the SDK's class: no secret, or an empty string, means a plain hash.
    return this.secret ? createHmac('sha256', hmacKey(this.secret)) : createHash('sha256');
  }

  update(data: SourceData, encoding?: 'utf8' | 'ascii' | 'latin1'): void {
    if (typeof data === 'string') this.hash.update(data, encoding ?? 'utf8');
    else this.hash.update(bytes(data));
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.hash.digest());
  }

  reset(): void {
    this.hash = this.create();
  }
}

// Per-request steps of the SDK's default stack that a sending worker does not need: the
// User-Agent header, Lambda's trace-id propagation, and a logger middleware with no logger.
// Together ~8% of the client's CPU per SendEmail (bench/ses-client.ts).
export const UNNEEDED_MIDDLEWARE = [
  'getUserAgentMiddleware',
  'recursionDetectionMiddleware',
  'loggerMiddleware',
] as const;

// Replaced by a pass-through of the same name: the signing step is positioned relative to it.
export const RETRY_MIDDLEWARE = 'retryMiddleware';

/**
 * Decides when a prepared request (serialised and signed) is written: the SDK's last step awaits
 * wait(), and the request is written as soon as it resolves. A rejection drops the request
 * unwritten: nothing reaches SES.
 */
export interface WriteGate {
  wait(): Promise<void>;
}

const gates = new WeakMap<object, WriteGate>();

/** Thrown by a gate that drops its request: nothing was written. */
export class NotWrittenError extends Error {
  override name = 'NotWrittenError';
}

/**
 * The request made from this command input is written only when `gate` lets it. (The client
 * caches its middleware stack, so per-call data reaches the stack keyed by the command's input.)
 */
export function writeWhen<T extends object>(input: T, gate: WriteGate): T {
  gates.set(input, gate);
  return input;
}

/**
 * Keeps the signer the SDK makes for each request, one per auth scheme (SES: SigV4, one region
 * and service). The SDK builds a new SignatureV4 for every request from a copy of the whole client
 * configuration: 30-40 us of the client's ~290 us of CPU per SendEmail here (the project's client
 * with and without it, interleaved rounds as in bench/ses-client.ts). A kept signer loses nothing:
 * it reads the credentials through the client's provider on every signature, so rotated
 * credentials are used as before (test/ses/client.test.ts), and it holds no per-request state.
 */
function cacheSigner(client: SESv2Client): void {
  const config = client.config;
  const makeSigner = config.signer;
  const signers = new Map<string, ReturnType<typeof makeSigner>>();
  config.signer = (scheme) => {
    const key = `${scheme?.name}/${scheme?.signingName}/${scheme?.signingRegion}`;
    let signer = signers.get(key);
    if (!signer) {
      signer = makeSigner(scheme);
      // A failed build is not kept: the next request tries again.
      signer.catch(() => signers.delete(key));
      signers.set(key, signer);
    }
    return signer;
  };
}

export function tuneSendingStack(client: SESv2Client): void {
  cacheSigner(client);
  const stack = client.middlewareStack;
  for (const name of [...UNNEEDED_MIDDLEWARE, RETRY_MIDDLEWARE]) {
    if (!stack.remove(name)) {
      throw new Error(`SESv2 client: no middleware named ${name} (did an SDK upgrade rename it?)`);
    }
  }
  // With one attempt per call the SDK's retry step only adds work to every call (a retry token, a
  // UUID invocation-id header, error bookkeeping). Errors reach the caller as the deserializer or
  // the HTTP handler threw them, with $metadata.httpStatusCode (src/ses/errors.ts).
  stack.add((next) => next, { step: 'finalizeRequest', priority: 'high', name: RETRY_MIDDLEWARE });
  // The last step before the request is written (after serialising and signing): a paced send
  // waits here for its slot, so that at the slot only the write is left.
  stack.add(
    (next) => async (args) => {
      await gates.get(args.input as object)?.wait();
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'mailerWriteGate' },
  );
}

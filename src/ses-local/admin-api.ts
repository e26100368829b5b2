// The `/_local/` admin API, so tests, the demo and benchmarks in other processes can read what
// was sent and steer faults and limits over HTTP.
import { z } from 'zod';
import { validationError } from './errors.ts';
import { faultsSchema } from './faults.ts';
import { parseJsonObject } from './http-io.ts';
import type { SentMessage } from './model.ts';
import { bareAddress } from './raw-mime.ts';
import { type ApiReply, type ApiRequest, ok } from './routing.ts';
import type { LocalSesState } from './state.ts';

const rateSchema = z.strictObject({ maxSendRate: z.number().nonnegative().nullable() });
// productionAccessEnabled false: the account is in the SES sandbox (see identities.ts).
const accountSchema = z.strictObject({ productionAccessEnabled: z.boolean() });

function parseBody<T>(schema: z.ZodType<T>, request: ApiRequest): T {
  const parsed = schema.safeParse(parseJsonObject(request.body));
  if (!parsed.success) throw validationError(parsed.error);
  return parsed.data;
}

/** Messages with `address` among To, Cc or Bcc, compared like mailbox addresses: case-insensitively. */
export function messagesTo(messages: SentMessage[], address: string): SentMessage[] {
  const wanted = bareAddress(address).toLowerCase();
  const matches = (candidate: string) => bareAddress(candidate).toLowerCase() === wanted;
  return messages.filter(
    (message) => message.to.some(matches) || message.cc.some(matches) || message.bcc.some(matches),
  );
}

/** Answers an admin call, or returns undefined when no admin route matches. */
export function handleAdminApi(state: LocalSesState, request: ApiRequest): ApiReply | undefined {
  const route = `${request.method} ${request.path}`;
  switch (route) {
    case 'GET /_local/messages': {
      const to = request.query.get('to');
      return ok(to === null ? state.messages : messagesTo(state.messages, to));
    }
    case 'DELETE /_local/messages': {
      const cleared = state.messages.length;
      state.clear();
      return ok({ cleared });
    }
    case 'GET /_local/stats':
      return ok(state.stats());
    case 'PUT /_local/faults': {
      const faults = parseBody(faultsSchema, request);
      state.faults.set(faults);
      return ok(faults);
    }
    case 'PUT /_local/rate': {
      const { maxSendRate } = parseBody(rateSchema, request);
      state.maxSendRate = maxSendRate || undefined;
      return ok({ maxSendRate: state.maxSendRate ?? null });
    }
    case 'PUT /_local/account': {
      const { productionAccessEnabled } = parseBody(accountSchema, request);
      state.productionAccessEnabled = productionAccessEnabled;
      return ok({ productionAccessEnabled });
    }
    default:
      return undefined;
  }
}

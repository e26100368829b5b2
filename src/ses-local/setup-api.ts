// The SESv2 operations that set an account up, at the SDK's REST paths: email identities
// (Create/Get/DeleteEmailIdentity), configuration sets (Create/Get/DeleteConfigurationSet) and
// their event destinations (Create/Get(s)/Update/DeleteConfigurationSetEventDestination). Enough
// for `mailer ses check` to be tested, and for a test or an operator to set the endpoint up with
// the real SDK or the aws CLI.
import type { z } from 'zod';
import {
  createConfigurationSetSchema,
  createEventDestinationSchema,
  updateEventDestinationSchema,
} from './configuration-sets.ts';
import { badRequest, validationError } from './errors.ts';
import { parseJsonObject } from './http-io.ts';
import { createIdentitySchema } from './identities.ts';
import { type ApiReply, type ApiRequest, ok } from './routing.ts';
import type { LocalSesState } from './state.ts';

type Operation = (state: LocalSesState) => ApiReply;

const IDENTITIES = '/v2/email/identities';
const SETS = '/v2/email/configuration-sets';
const IDENTITY_PATH = /^\/v2\/email\/identities\/([^/]+)$/;
const SET_PATH = /^\/v2\/email\/configuration-sets\/([^/]+)$/;
const DESTINATIONS_PATH = /^\/v2\/email\/configuration-sets\/([^/]+)\/event-destinations$/;
const DESTINATION_PATH = /^\/v2\/email\/configuration-sets\/([^/]+)\/event-destinations\/([^/]+)$/;

function label(encoded: string | undefined): string {
  try {
    return decodeURIComponent(encoded ?? '');
  } catch {
    throw badRequest('A path parameter is not a valid URI component.');
  }
}

/** An operation whose SES answer is an empty object. */
function done(action: () => void): ApiReply {
  action();
  return ok({});
}

function body<T>(schema: z.ZodType<T>, request: ApiRequest): T {
  const parsed = schema.safeParse(parseJsonObject(request.body));
  if (!parsed.success) throw validationError(parsed.error);
  return parsed.data;
}

function identityOperation(request: ApiRequest): Operation | undefined {
  const { method, path } = request;
  if (method === 'POST' && path === IDENTITIES) {
    return (state) => ok(state.identities.create(body(createIdentitySchema, request)));
  }
  const match = IDENTITY_PATH.exec(path);
  if (!match) return undefined;
  const name = label(match[1]);
  if (method === 'GET') return (state) => ok(state.identities.get(name));
  if (method === 'DELETE') return (state) => done(() => state.identities.delete(name));
  return undefined;
}

function configurationSetOperation(request: ApiRequest): Operation | undefined {
  const { method, path } = request;
  if (method === 'POST' && path === SETS) {
    return (state) =>
      done(() => state.configurationSets.create(body(createConfigurationSetSchema, request)));
  }
  const set = SET_PATH.exec(path);
  if (set) {
    const name = label(set[1]);
    if (method === 'GET') return (state) => ok(state.configurationSets.get(name));
    if (method === 'DELETE') return (state) => done(() => state.configurationSets.delete(name));
    return undefined;
  }
  const destinations = DESTINATIONS_PATH.exec(path);
  if (destinations) {
    const setName = label(destinations[1]);
    if (method === 'GET') {
      return (state) => ok({ EventDestinations: state.configurationSets.destinations(setName) });
    }
    if (method === 'POST') {
      return (state) =>
        done(() =>
          state.configurationSets.createDestination(
            setName,
            body(createEventDestinationSchema, request),
          ),
        );
    }
    return undefined;
  }
  const destination = DESTINATION_PATH.exec(path);
  if (!destination) return undefined;
  const [setName, name] = [label(destination[1]), label(destination[2])];
  if (method === 'PUT') {
    return (state) =>
      done(() => {
        const { EventDestination } = body(updateEventDestinationSchema, request);
        state.configurationSets.updateDestination(setName, name, EventDestination);
      });
  }
  if (method === 'DELETE') {
    return (state) => done(() => state.configurationSets.deleteDestination(setName, name));
  }
  return undefined;
}

/** The setup operation at this method and path, or undefined when none lives there. */
export function setupOperation(request: ApiRequest): Operation | undefined {
  return identityOperation(request) ?? configurationSetOperation(request);
}

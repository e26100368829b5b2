// The configuration sets of one local SES instance and their event destinations, stored as the
// SESv2 API describes them. Nothing is published from here: the demo and the tests publish
// events with event-publisher.ts; these records are what `mailer ses check` reads back.
import { z } from 'zod';
import { alreadyExists, notFound } from './errors.ts';

const resourceName = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'only ASCII letters, digits, _ and -, at most 64 characters');

export const EVENT_TYPES = [
  'SEND',
  'REJECT',
  'BOUNCE',
  'COMPLAINT',
  'DELIVERY',
  'OPEN',
  'CLICK',
  'RENDERING_FAILURE',
  'DELIVERY_DELAY',
  'SUBSCRIPTION',
] as const;

const DESTINATION_KINDS = [
  'SnsDestination',
  'CloudWatchDestination',
  'KinesisFirehoseDestination',
  'EventBridgeDestination',
  'PinpointDestination',
] as const;

const other = z.looseObject({}).optional();

// SES refuses a definition without exactly one destination; Enabled is false unless given.
export const eventDestinationSchema = z
  .object({
    Enabled: z.boolean().default(false),
    MatchingEventTypes: z.array(z.enum(EVENT_TYPES)).min(1),
    SnsDestination: z
      .object({ TopicArn: z.string().regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$/) })
      .optional(),
    CloudWatchDestination: other,
    KinesisFirehoseDestination: other,
    EventBridgeDestination: other,
    PinpointDestination: other,
  })
  .refine((d) => DESTINATION_KINDS.filter((kind) => d[kind] !== undefined).length === 1, {
    message: 'exactly one destination (SnsDestination, CloudWatchDestination, ...) is required',
  });

export const createConfigurationSetSchema = z.looseObject({ ConfigurationSetName: resourceName });

export const createEventDestinationSchema = z.object({
  EventDestinationName: resourceName,
  EventDestination: eventDestinationSchema,
});

export const updateEventDestinationSchema = z.object({ EventDestination: eventDestinationSchema });

type Definition = z.infer<typeof eventDestinationSchema>;

interface StoredSet {
  /** The creation request's other members (TrackingOptions, SendingOptions, Tags, ...). */
  options: Record<string, unknown>;
  destinations: Map<string, Definition>;
}

export class ConfigurationSetStore {
  #sets = new Map<string, StoredSet>();

  create(request: z.infer<typeof createConfigurationSetSchema>): void {
    const { ConfigurationSetName: name, ...options } = request;
    if (this.#sets.has(name)) throw alreadyExists(`Configuration set ${name} already exists.`);
    this.#sets.set(name, { options, destinations: new Map() });
  }

  has(name: string): boolean {
    return this.#sets.has(name);
  }

  get(name: string): Record<string, unknown> {
    return { ConfigurationSetName: name, ...this.#set(name).options };
  }

  delete(name: string): void {
    this.#set(name);
    this.#sets.delete(name);
  }

  createDestination(setName: string, request: z.infer<typeof createEventDestinationSchema>): void {
    const { destinations } = this.#set(setName);
    if (destinations.has(request.EventDestinationName)) {
      throw alreadyExists(
        `Event destination ${request.EventDestinationName} already exists in ${setName}.`,
      );
    }
    destinations.set(request.EventDestinationName, request.EventDestination);
  }

  updateDestination(setName: string, name: string, definition: Definition): void {
    this.#destination(setName, name);
    this.#set(setName).destinations.set(name, definition);
  }

  deleteDestination(setName: string, name: string): void {
    this.#destination(setName, name);
    this.#set(setName).destinations.delete(name);
  }

  /** GetConfigurationSetEventDestinations' answer: each destination with its Name. */
  destinations(setName: string): Array<Record<string, unknown>> {
    return [...this.#set(setName).destinations].map(([Name, definition]) => ({
      Name,
      ...definition,
    }));
  }

  #set(name: string): StoredSet {
    const set = this.#sets.get(name);
    if (!set) throw notFound(`Configuration set ${name} does not exist.`);
    return set;
  }

  #destination(setName: string, name: string): Definition {
    const definition = this.#set(setName).destinations.get(name);
    if (!definition) {
      throw notFound(`Event destination ${name} does not exist in ${setName}.`);
    }
    return definition;
  }
}

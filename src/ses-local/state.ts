import type { Logger } from 'pino';
import { ConfigurationSetStore } from './configuration-sets.ts';
import { FaultState } from './faults.ts';
import { IdentityStore } from './identities.ts';
import type { SentMessage } from './model.ts';
import { SlidingWindowCounter } from './sliding-window.ts';
import { TemplateStore } from './templates.ts';

export interface StateDependencies {
  maxSendRate?: number;
  max24HourSend?: number;
  clock: () => number;
  random: () => number;
  onSend?: (message: SentMessage) => void;
  logger?: Logger;
}

/** Everything one local SES instance remembers; handlers receive it instead of sharing globals. */
export class LocalSesState {
  readonly messages: SentMessage[] = [];
  readonly templates = new TemplateStore();
  readonly identities = new IdentityStore();
  readonly configurationSets = new ConfigurationSetStore();
  // false: the account is in the SES sandbox (admin API PUT /_local/account). GetAccount says so,
  // and once identities exist SendEmail refuses recipients that are not verified (identities.ts).
  productionAccessEnabled = true;
  readonly faults: FaultState;
  /** Accepted sends of the last second, for the sending-rate limit. */
  readonly lastSecond = new SlidingWindowCounter(1000);
  /** Accepted sends of the last 24 hours, for the daily quota and GetAccount. */
  readonly lastDay = new SlidingWindowCounter(24 * 60 * 60 * 1000);
  maxSendRate: number | undefined;
  readonly max24HourSend: number | undefined;
  readonly clock: () => number;
  readonly onSend: ((message: SentMessage) => void) | undefined;
  readonly logger: Logger | undefined;
  calls = 0;
  rejected = 0;

  constructor(deps: StateDependencies) {
    this.faults = new FaultState(deps.random);
    this.maxSendRate = deps.maxSendRate || undefined;
    this.max24HourSend = deps.max24HourSend || undefined;
    this.clock = deps.clock;
    this.onSend = deps.onSend;
    this.logger = deps.logger;
  }

  /** Forgets messages, counters and rate history; templates, setup, faults and limits stay. */
  clear(): void {
    this.messages.length = 0;
    this.lastSecond.clear();
    this.lastDay.clear();
    this.calls = 0;
    this.rejected = 0;
  }

  stats(): { accepted: number; calls: number; rejected: number } {
    return { accepted: this.messages.length, calls: this.calls, rejected: this.rejected };
  }
}

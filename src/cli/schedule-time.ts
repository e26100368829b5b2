// The time of `mailer campaign queue ID --at "2026-12-14 09:00 Europe/Berlin"`: a wall-clock time
// and the IANA time zone it is meant in (or UTC, or an offset such as +01:00), turned into an
// instant with Intl alone. A zone is required: a bare time would silently mean the server's zone.
// A wall time that does not exist in the zone (skipped by a daylight-saving change) or exists
// twice (repeated by one) is refused, naming the instants it could be, rather than guessed.

const PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?\s*(Z|[+-]\d{2}:?\d{2}|[A-Za-z][A-Za-z0-9_+\-/]*)$/;

export class ScheduleTimeError extends Error {}

interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(zone, f);
  }
  return f;
}

function wallAt(instant: number, zone: string): Wall {
  const parts = Object.fromEntries(
    formatter(zone)
      .formatToParts(new Date(instant))
      .map((p) => [p.type, Number(p.value)]),
  );
  return {
    year: parts.year ?? 0,
    month: parts.month ?? 0,
    day: parts.day ?? 0,
    hour: parts.hour ?? 0,
    minute: parts.minute ?? 0,
    second: parts.second ?? 0,
  };
}

const asUtc = (w: Wall) => Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);

/** The zone's offset from UTC at an instant, in milliseconds. */
function offsetAt(instant: number, zone: string): number {
  return asUtc(wallAt(instant - (instant % 1000), zone)) - (instant - (instant % 1000));
}

function canonicalZone(zone: string): string {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    throw new ScheduleTimeError(
      `unknown time zone ${zone}: give an IANA name such as Europe/Berlin, UTC, or an offset such as +01:00`,
    );
  }
}

/** The instants at which `zone`'s clocks show `wall`: none in a gap, two in an overlap. */
function instantsOf(wall: Wall, zone: string): number[] {
  const local = asUtc(wall);
  const offsets = new Set<number>();
  for (let hours = -48; hours <= 48; hours += 3) {
    offsets.add(offsetAt(local + hours * 3_600_000, zone));
  }
  const found = new Set<number>();
  for (const offset of offsets) {
    const candidate = local - offset;
    if (asUtc(wallAt(candidate, zone)) === local) found.add(candidate);
  }
  return [...found].sort((a, b) => a - b);
}

function parseOffset(text: string): number {
  if (text === 'Z') return 0;
  const match = /^([+-])(\d{2}):?(\d{2})$/.exec(text);
  if (!match) throw new ScheduleTimeError(`bad offset ${text}`);
  const minutes = Number(match[2]) * 60 + Number(match[3]);
  if (Number(match[2]) > 23 || Number(match[3]) > 59) {
    throw new ScheduleTimeError(`bad offset ${text}`);
  }
  return (match[1] === '-' ? -1 : 1) * minutes * 60_000;
}

function formatOffset(ms: number): string {
  const minutes = Math.abs(ms) / 60_000;
  const hh = String(Math.floor(minutes / 60)).padStart(2, '0');
  const mm = String(minutes % 60).padStart(2, '0');
  return `${ms < 0 ? '-' : '+'}${hh}:${mm}`;
}

/**
 * The instant "YYYY-MM-DD HH:MM[:SS] ZONE" names. `now` is for the past check: a time not after
 * it is refused.
 */
export function parseScheduleTime(text: string, now: number = Date.now()): Date {
  const match = PATTERN.exec(text.trim());
  if (!match) {
    throw new ScheduleTimeError(
      `--at ${JSON.stringify(text)}: expected "YYYY-MM-DD HH:MM ZONE", e.g. ` +
        '"2026-12-14 09:00 Europe/Berlin" (an IANA zone, UTC, or an offset such as +01:00)',
    );
  }
  const [, y, mo, d, h, mi, s, zoneText = ''] = match;
  const wall: Wall = {
    year: Number(y),
    month: Number(mo),
    day: Number(d),
    hour: Number(h),
    minute: Number(mi),
    second: Number(s ?? 0),
  };
  const check = new Date(asUtc(wall));
  if (
    wall.hour > 23 ||
    wall.minute > 59 ||
    wall.second > 59 ||
    check.getUTCFullYear() !== wall.year ||
    check.getUTCMonth() !== wall.month - 1 ||
    check.getUTCDate() !== wall.day
  ) {
    throw new ScheduleTimeError(`--at ${JSON.stringify(text)}: not a calendar date and time`);
  }
  let instant: number;
  if (/^(Z|[+-]\d)/.test(zoneText)) {
    instant = asUtc(wall) - parseOffset(zoneText);
  } else {
    const zone = canonicalZone(zoneText);
    const instants = instantsOf(wall, zone);
    const shown = instants.map((i) => new Date(i).toISOString()).join(' or ');
    if (instants.length === 0) {
      throw new ScheduleTimeError(
        `--at ${JSON.stringify(text)}: that time does not exist in ${zone} (the clocks skip it ` +
          'for daylight saving time); give a time outside the gap',
      );
    }
    if (instants.length > 1) {
      const wallText = text.trim().split(/\s+/).slice(0, 2).join(' ');
      const options = instants.map((i) => `"${wallText} ${formatOffset(asUtc(wall) - i)}"`);
      throw new ScheduleTimeError(
        `--at ${JSON.stringify(text)}: that time happens twice in ${zone} (the clocks go back), ` +
          `${shown}; give an offset instead: ${options.join(' or ')}`,
      );
    }
    instant = instants[0] as number;
  }
  if (instant <= now) {
    throw new ScheduleTimeError(
      `--at ${JSON.stringify(text)} is ${new Date(instant).toISOString()}, which is in the past`,
    );
  }
  return new Date(instant);
}

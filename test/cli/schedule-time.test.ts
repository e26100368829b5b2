// The --at time of `campaign queue`: a wall time in an IANA zone, turned into an instant with
// Intl; daylight-saving gaps and overlaps, unknown zones, bad dates and past times are refused.
import test from 'ava';
import { parseScheduleTime, ScheduleTimeError } from '../../src/cli/schedule-time.ts';

const NOW = Date.UTC(2026, 0, 1);
const at = (text: string) => parseScheduleTime(text, NOW).toISOString();
const refusal = (t: import('ava').ExecutionContext, text: string) =>
  t.throws(() => parseScheduleTime(text, NOW), { instanceOf: ScheduleTimeError })?.message ?? '';

test('reads a wall time in an IANA zone, in winter and in summer', (t) => {
  t.is(at('2026-12-14 09:00 Europe/Berlin'), '2026-12-14T08:00:00.000Z');
  t.is(at('2026-07-14 09:00 Europe/Berlin'), '2026-07-14T07:00:00.000Z');
  t.is(at('2026-12-14 09:00 Asia/Kolkata'), '2026-12-14T03:30:00.000Z');
  t.is(at('2026-12-14 09:00:30 America/New_York'), '2026-12-14T14:00:30.000Z');
});

test('reads UTC and explicit offsets', (t) => {
  t.is(at('2026-12-14 09:00 UTC'), '2026-12-14T09:00:00.000Z');
  t.is(at('2026-12-14T09:00Z'), '2026-12-14T09:00:00.000Z');
  t.is(at('2026-12-14 09:00 +05:30'), '2026-12-14T03:30:00.000Z');
  t.is(at('2026-12-14 09:00 -0800'), '2026-12-14T17:00:00.000Z');
});

test('refuses a time the clocks skip and names both instants of a repeated one', (t) => {
  t.regex(refusal(t, '2026-03-29 02:30 Europe/Berlin'), /does not exist in Europe\/Berlin/);
  const twice = refusal(t, '2026-10-25 02:30 Europe/Berlin');
  t.regex(twice, /happens twice/);
  t.regex(twice, /2026-10-25T00:30:00.000Z or 2026-10-25T01:30:00.000Z/);
  t.regex(twice, /"2026-10-25 02:30 \+02:00" or "2026-10-25 02:30 \+01:00"/);
});

test('refuses a missing or unknown zone, a date that does not exist and a past time', (t) => {
  t.regex(refusal(t, '2026-12-14 09:00'), /expected "YYYY-MM-DD HH:MM ZONE"/);
  t.regex(refusal(t, '2026-12-14 09:00 Europe/Atlantis'), /unknown time zone Europe\/Atlantis/);
  t.regex(refusal(t, '2026-02-30 09:00 UTC'), /not a calendar date/);
  t.regex(refusal(t, '2026-12-14 24:00 UTC'), /not a calendar date/);
  t.regex(refusal(t, 'next monday'), /expected/);
  t.regex(refusal(t, '2025-12-31 23:59 UTC'), /in the past/);
});

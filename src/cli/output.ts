// Shared by the operator commands (customers, templates, campaign, suppress, jobs, doubt): a pool
// per invocation, argument parsers that fail as bad usage (exit 2), plain tables for people and
// JSON for scripts, and SQL errors an operator can act on turned into one line and exit 1.
import { userInfo } from 'node:os';
import { InvalidArgumentError } from 'commander';
import type pg from 'pg';
import { createPool } from '../db/pool.ts';
import { type CliContext, createContext, UsageError } from './context.ts';

export type Cell = string | number | boolean | Date | null | undefined;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// application_name shows in pg_stat_activity and in operator_actions: which client, which OS user.
function applicationName(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (some containers): keep 'unknown'
  }
  return `mailer-cli:${user}`.slice(0, 63);
}

export async function withDatabase<T>(
  action: (pool: pg.Pool, ctx: CliContext) => Promise<T>,
): Promise<T> {
  const ctx = createContext();
  const pool = createPool(await ctx.databaseUrl(), ctx.logger, {
    max: 2,
    applicationName: applicationName(),
  });
  try {
    return await action(pool, ctx);
  } finally {
    await pool.end();
  }
}

export function uuidArgument(what: string): (value: string) => string {
  return (value) => {
    if (!UUID.test(value)) throw new InvalidArgumentError(`${what} must be a UUID, got ${value}`);
    return value.toLowerCase();
  };
}

export function intArgument(what: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(
        `${what} must be a whole number ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `${min}-${max}`}, got ${value}`,
      );
    }
    return n;
  };
}

export function dateArgument(value: string): string {
  const parsed = new Date(`${value}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(parsed.getTime())) {
    throw new InvalidArgumentError(`expected a date as YYYY-MM-DD, got ${value}`);
  }
  if (parsed.toISOString().slice(0, 10) !== value) {
    throw new InvalidArgumentError(`${value} is not a calendar date`);
  }
  return value;
}

export function formatTime(value: Date | string | null | undefined): string {
  if (value === null || value === undefined) return '-';
  const date = value instanceof Date ? value : new Date(value);
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

export function formatAge(from: Date | null | undefined, now = Date.now()): string {
  if (!from) return '-';
  const seconds = Math.max(0, Math.round((now - from.getTime()) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}

export function percent(rate: number | string | null | undefined, digits = 2): string {
  if (rate === null || rate === undefined) return '-';
  return `${(Number(rate) * 100).toFixed(digits)}%`;
}

function cellText(cell: Cell): string {
  if (cell === null || cell === undefined || cell === '') return '-';
  if (cell instanceof Date) return formatTime(cell);
  if (typeof cell === 'boolean') return cell ? 'yes' : 'no';
  return String(cell).replace(/\s+/g, ' ');
}

// Columns padded to their widest cell; numbers right-aligned so counts line up.
export function table(headers: string[], rows: Cell[][]): string {
  const text = rows.map((row) => row.map(cellText));
  const numeric = headers.map((_, i) =>
    rows.every((row) => row[i] === null || row[i] === undefined || typeof row[i] === 'number'),
  );
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...text.map(line)].join('\n')}\n`;
}

// "key  value" lines, for one record.
export function fields(rows: Array<[string, Cell]>): string {
  const width = Math.max(0, ...rows.map(([key]) => key.length));
  return rows.map(([key, value]) => `  ${key.padEnd(width)}  ${cellText(value)}\n`).join('');
}

export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

// SQLSTATEs our operator functions raise on purpose: the message is for the operator, exit 1.
const OPERATOR_ERRORS = new Set(['P0002', '23514', '22023', '55P03', '23505']);

export function operatorError(error: unknown): string | undefined {
  const e = error as { code?: unknown; message?: unknown; hint?: unknown };
  if (typeof e.code !== 'string' || !OPERATOR_ERRORS.has(e.code)) return undefined;
  return `${String(e.message)}${typeof e.hint === 'string' ? ` (hint: ${e.hint})` : ''}`;
}

export function fail(message: string): void {
  process.stderr.write(`mailer: ${message}\n`);
  process.exitCode = 1;
}

// Runs a database action; an expected operator error becomes one line on stderr and exit 1, or
// exit 2 when the function said the input itself is wrong (invalid_parameter_value).
export async function orFail<T>(action: () => Promise<T>): Promise<T | undefined> {
  try {
    return await action();
  } catch (error) {
    const message = operatorError(error);
    if (message === undefined) throw error;
    if ((error as { code?: unknown }).code === '22023') throw new UsageError(message);
    fail(message);
    return undefined;
  }
}

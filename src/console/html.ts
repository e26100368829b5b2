// HTML for the console, escaped by construction: every value interpolated into an `html` template
// is escaped (customer names and template data come from CSVs and strangers), unless it is itself
// the result of `html` (already safe) or wrapped in `trusted` by code that built it safely.
// Server-rendered pages only: no inline script or style anywhere (the Content-Security-Policy
// forbids them); behaviour lives in the files under src/console/assets/.

import { escapeHtml } from '../html-escape.ts';

const SAFE = Symbol('safe html');

export interface Html {
  readonly [SAFE]: true;
  readonly text: string;
}

function isHtml(value: unknown): value is Html {
  return typeof value === 'object' && value !== null && SAFE in value;
}

/** Markup that code built safely (never from input). */
export function trusted(text: string): Html {
  return { [SAFE]: true, text };
}

type Value = Html | string | number | bigint | boolean | null | undefined | Date | Value[];

function render(value: Value): string {
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  if (isHtml(value)) return value.text;
  if (value instanceof Date) return escapeHtml(value.toISOString());
  return escapeHtml(String(value));
}

/** html`<p>${name}</p>`: the values are escaped; arrays are joined; null, undefined, false vanish. */
export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let text = strings[0] ?? '';
  for (let i = 0; i < values.length; i++)
    text += render(values[i] as Value) + (strings[i + 1] ?? '');
  return trusted(text);
}

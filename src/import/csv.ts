// The streaming pieces of `mailer customers import`: bytes -> text with one line ending -> CSV
// records -> COPY text rows. Each is a stream with backpressure, so a file of any size goes through
// in constant memory.

import { Transform, type TransformCallback } from 'node:stream';
import { TextDecoder } from 'node:util';

// The file's bytes as text. Without a named encoding a file is UTF-8, unless it starts with a
// UTF-16 byte order mark (Excel's "Unicode Text" export): then UTF-16 of that byte order. Any
// label the WHATWG Encoding Standard knows can be named (windows-1252, iso-8859-15, shift_jis...).
// Bytes that are not valid in the encoding become U+FFFD, and stagingRow rejects their line: a
// Windows-1252 "Müller" read as UTF-8 is reported, never imported as "M\uFFFDller".
export class EncodingError extends Error {}

export function textDecoder(label: string): TextDecoder {
  try {
    return new TextDecoder(label);
  } catch {
    throw new EncodingError(
      `unknown encoding "${label}"; name one of the WHATWG Encoding Standard, such as ` +
        'utf-8, utf-16le, windows-1252, iso-8859-15',
    );
  }
}

function sniffEncoding(head: Buffer): string {
  if (head[0] === 0xff && head[1] === 0xfe) return 'utf-16le';
  if (head[0] === 0xfe && head[1] === 0xff) return 'utf-16be';
  return 'utf-8';
}

// csv-parse counts a CRLF inside a quoted field as two lines; with every CR, CRLF and LF turned
// into LF first, its line numbers are the ones an editor shows. A CR at the end of a chunk waits
// for the next chunk (it may be the first half of a CRLF).
export function normalizeLineEndings(encoding?: string): Transform {
  let decoder = encoding === undefined ? undefined : textDecoder(encoding);
  let head = Buffer.alloc(0); // the first bytes, until there are enough to sniff a BOM
  let pendingCr = false;
  const convert = (text: string): string => {
    let input = text;
    if (pendingCr) {
      input = `\r${input}`;
      pendingCr = false;
    }
    if (input.endsWith('\r')) {
      pendingCr = true;
      input = input.slice(0, -1);
    }
    return input.replace(/\r\n?/g, '\n');
  };
  const decode = (chunk: Buffer, end: boolean): string => {
    if (!decoder) {
      head = Buffer.concat([head, chunk]);
      if (head.length < 2 && !end) return '';
      decoder = textDecoder(sniffEncoding(head));
      chunk = head;
    }
    return decoder.decode(chunk, { stream: !end });
  };
  return new Transform({
    decodeStrings: true,
    readableObjectMode: false,
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      const text = convert(decode(chunk, false));
      callback(null, text === '' ? undefined : text);
    },
    flush(callback: TransformCallback) {
      let rest = decode(Buffer.alloc(0), true);
      if (pendingCr) {
        rest = `\r${rest}`;
        pendingCr = false;
      }
      rest = rest.replace(/\r\n?/g, '\n');
      callback(null, rest === '' ? undefined : rest);
    },
  });
}

// How the customer CSV is read: a header row, RFC 4180 quoting (quotes inside an unquoted field are
// kept as text), any field count (checked per row, so a bad row is reported, not fatal), blank
// lines ignored. A record longer than maxRecordChars is a quote left open swallowing the file.
export const MAX_RECORD_CHARS = 1_000_000;
export const csvOptions = {
  bom: true,
  info: true,
  relax_column_count: true,
  relax_quotes: true,
  skip_empty_lines: true,
  skip_records_with_error: true,
  max_record_size: MAX_RECORD_CHARS,
} as const;

const COPY_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

// One field in COPY's text format: \N for null, backslash escapes for the four special characters.
export function copyField(value: string | null | undefined): string {
  if (value === null || value === undefined) return '\\N';
  return value.replace(/[\\\n\r\t]/g, (c) => COPY_ESCAPES[c] ?? c);
}

export function copyRow(fields: Array<string | number | null | undefined>): string {
  return `${fields.map((f) => (typeof f === 'number' ? String(f) : copyField(f))).join('\t')}\n`;
}

export const CUSTOMER_COLUMNS = ['email', 'name', 'company', 'country', 'is_active'] as const;
export type CustomerColumn = (typeof CUSTOMER_COLUMNS)[number];
const REQUIRED: readonly CustomerColumn[] = ['email', 'name', 'company', 'country'];

export interface HeaderMap {
  width: number;
  index: Record<CustomerColumn, number | undefined>;
}

export class HeaderError extends Error {}

// The header row names the columns, in any order and case; is_active is optional.
export function readHeader(fields: string[]): HeaderMap {
  const names = fields.map((f) =>
    f
      .replace(/^\uFEFF/, '')
      .trim()
      .toLowerCase(),
  );
  const index = {} as Record<CustomerColumn, number | undefined>;
  const unknown: string[] = [];
  names.forEach((name, i) => {
    if (!(CUSTOMER_COLUMNS as readonly string[]).includes(name)) {
      unknown.push(name === '' ? `(empty, column ${i + 1})` : name);
      return;
    }
    const column = name as CustomerColumn;
    if (index[column] !== undefined) throw new HeaderError(`column ${name} appears twice`);
    index[column] = i;
  });
  const missing = REQUIRED.filter((c) => index[c] === undefined);
  if (missing.length > 0 || unknown.length > 0) {
    const problems = [
      ...(missing.length ? [`missing ${missing.join(', ')}`] : []),
      ...(unknown.length ? [`unknown ${unknown.join(', ')}`] : []),
    ];
    throw new HeaderError(
      `the first line must be a header naming the columns ${CUSTOMER_COLUMNS.join(',')} ` +
        `(is_active optional, any order): ${problems.join('; ')}`,
    );
  }
  return { width: names.length, index };
}

// A record's first line: csv-parse reports the line a record ends on; a quoted field with line
// breaks started that many lines earlier.
export function startLine(endLine: number, fields: string[]): number {
  let breaks = 0;
  for (const field of fields) {
    for (let i = field.indexOf('\n'); i !== -1; i = field.indexOf('\n', i + 1)) breaks++;
  }
  return endLine - breaks;
}

const NOT_IN_ENCODING =
  "has bytes that are not valid in the file's encoding (read as U+FFFD); save the file as " +
  'UTF-8, or name its encoding with --encoding';

// The staging row for one data record: what the file said, plus the problems only the client can
// see (wrong field count, a NUL character PostgreSQL text cannot hold). Email checks are SQL's.
export function stagingRow(line: number, fields: string[], header: HeaderMap): string {
  const pick = (column: CustomerColumn): string | null => {
    const i = header.index[column];
    return i === undefined ? null : (fields[i] ?? '');
  };
  if (fields.some((f) => f.includes('\0'))) {
    return copyRow([line, null, null, null, null, null, 'contains a NUL character']);
  }
  if (fields.some((f) => f.includes('\uFFFD'))) {
    return copyRow([line, null, null, null, null, null, NOT_IN_ENCODING]);
  }
  const problem =
    fields.length === header.width ? null : `expected ${header.width} fields, got ${fields.length}`;
  return copyRow([
    line,
    pick('email'),
    pick('name'),
    pick('company'),
    pick('country'),
    pick('is_active'),
    problem,
  ]);
}

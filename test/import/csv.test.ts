// The streaming pieces of the customer import, without a database.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fc, testProp } from '@fast-check/ava';
import test from 'ava';
import { type Info, parse } from 'csv-parse';
import {
  copyField,
  csvOptions,
  EncodingError,
  HeaderError,
  normalizeLineEndings,
  readHeader,
  stagingRow,
  startLine,
} from '../../src/import/csv.ts';

async function collect(chunks: Buffer[], encoding?: string): Promise<string> {
  let out = '';
  await pipeline(
    Readable.from(chunks),
    normalizeLineEndings(encoding),
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out += chunk.toString('utf8');
        callback();
      },
    }),
  );
  return out;
}

// Cuts bytes at arbitrary points: through a CRLF, inside a multi-byte character.
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(from, p));
    from = p;
  }
  chunks.push(bytes.subarray(from));
  return chunks.filter((c) => c.length > 0);
}

const text = fc.string({ unit: fc.constantFrom('a', ',', '"', '\r', '\n', 'é', '€', '😀', ' ') });

testProp(
  'line endings become LF however the bytes are chunked',
  [text, fc.array(fc.nat(), { maxLength: 8 })],
  async (t, input, cuts) => {
    const out = await collect(split(Buffer.from(input, 'utf8'), cuts));
    t.is(out, input.replace(/\r\n?/g, '\n'));
  },
);

const field = fc.string({ unit: fc.constantFrom('x', ',', '"', '\r\n', '\n', ' ', 'ü') });

function csvLine(fields: string[]): string {
  return fields.map((f) => (/[",\r\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join(',');
}

testProp(
  'records and their first line numbers survive quoting, CRLF and a BOM',
  [fc.array(fc.array(field, { minLength: 2, maxLength: 2 }), { minLength: 1, maxLength: 12 })],
  async (t, records) => {
    // A leading "k" keeps every record non-empty, so no line is a skipped blank line.
    const rows = records.map(([a, b]) => [`k${a}`, b ?? '']);
    const csv = `\uFEFF${['h1,h2', ...rows.map(csvLine)].join('\r\n')}\r\n`;
    const expectedStarts: number[] = [];
    let line = 2;
    for (const row of rows) {
      expectedStarts.push(line);
      line += (csvLine(row).match(/\r\n|\r|\n/g) ?? []).length + 1;
    }
    const parsed: Array<{ record: string[]; start: number }> = [];
    await pipeline(
      Readable.from([Buffer.from(csv, 'utf8')]),
      normalizeLineEndings(),
      parse(csvOptions),
      new Writable({
        objectMode: true,
        write(item: { record: string[]; info: Info }, _encoding, callback) {
          parsed.push({ record: item.record, start: startLine(item.info.lines, item.record) });
          callback();
        },
      }),
    );
    t.deepEqual(parsed[0]?.record, ['h1', 'h2']);
    t.deepEqual(
      parsed.slice(1).map((p) => p.record),
      rows.map((r) => r.map((f) => f.replace(/\r\n/g, '\n'))),
    );
    t.deepEqual(
      parsed.slice(1).map((p) => p.start),
      expectedStarts,
    );
  },
);

test('COPY fields escape backslashes, tabs and line breaks; null is \\N', (t) => {
  t.is(copyField('a\\b\tc\nd\re'), 'a\\\\b\\tc\\nd\\re');
  t.is(copyField(null), '\\N');
  t.is(copyField(''), '');
});

test('the header names columns in any order and case; is_active is optional', (t) => {
  const header = readHeader(['\uFEFFCountry', ' EMAIL ', 'name', 'Company']);
  t.deepEqual(header.index, {
    country: 0,
    email: 1,
    name: 2,
    company: 3,
  } as typeof header.index);
  t.is(
    stagingRow(7, ['NL', 'a@b.com', 'Ann', 'Acme'], header),
    '7\ta@b.com\tAnn\tAcme\tNL\t\\N\t\\N\n',
  );
  t.throws(() => readHeader(['email', 'name', 'company']), {
    instanceOf: HeaderError,
    message: /missing country/,
  });
  t.throws(() => readHeader(['email', 'name', 'company', 'country', 'phone']), {
    message: /unknown phone/,
  });
  t.throws(() => readHeader(['email', 'Email', 'name', 'company', 'country']), {
    message: /email appears twice/,
  });
});

test('a row with the wrong field count or a NUL character is staged with its problem', (t) => {
  const header = readHeader(['email', 'name', 'company', 'country', 'is_active']);
  t.is(
    stagingRow(3, ['a@b.com', 'Ann'], header),
    '3\ta@b.com\tAnn\t\t\t\texpected 5 fields, got 2\n',
  );
  t.is(
    stagingRow(4, ['a@b.com', 'A\0n', '', '', ''], header),
    '4\t\\N\t\\N\t\\N\t\\N\t\\N\tcontains a NUL character\n',
  );
});

const latin = fc.string({
  unit: fc.constantFrom('a', 'ü', 'é', 'ß', '£', 'Ø', ',', '"', '\r\n', '\n'),
});

testProp(
  'reads a named 8-bit encoding, and UTF-16 of either byte order by its BOM, however chunked',
  [latin, fc.array(fc.nat(), { maxLength: 8 })],
  async (t, input, cuts) => {
    const expected = input.replace(/\r\n?/g, '\n');
    // WHATWG's "latin1" is windows-1252, which agrees with ISO-8859-1 on these characters.
    t.is(await collect(split(Buffer.from(input, 'latin1'), cuts), 'latin1'), expected);
    const le = Buffer.from(`\uFEFF${input}`, 'utf16le');
    t.is(await collect(split(le, cuts)), expected);
    const be = Buffer.from(le).swap16();
    t.is(await collect(split(be, cuts)), expected);
  },
);

test('bytes that are not UTF-8 stage their line as a problem, never as mangled text', async (t) => {
  const header = readHeader(['email', 'name', 'company', 'country']);
  const windows1252 = Buffer.from('mueller@example.com,M\xfcller,K\xf6ln GmbH,DE\n', 'latin1');
  const [line] = (await collect([windows1252])).split('\n');
  t.is(line, 'mueller@example.com,M\uFFFDller,K\uFFFDln GmbH,DE');
  t.regex(
    stagingRow(2, (line ?? '').split(','), header),
    /^2\t\\N\t\\N\t\\N\t\\N\t\\N\thas bytes that are not valid in the file's encoding .*--encoding\n$/,
  );
  t.is(
    (await collect([windows1252], 'windows-1252')).split('\n')[0],
    'mueller@example.com,Müller,Köln GmbH,DE',
  );
});

test('an encoding nobody knows is refused by name', (t) => {
  t.throws(() => normalizeLineEndings('klingon-8'), {
    instanceOf: EncodingError,
    message: /unknown encoding "klingon-8"/,
  });
});

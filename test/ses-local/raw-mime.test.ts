import test from 'ava';
import {
  bareAddress,
  decodeEncodedWords,
  headerValue,
  parseMimeHeaders,
  splitAddressList,
} from '../../src/ses-local/raw-mime.ts';

test('joins folded header lines and stops at the blank line before the body', (t) => {
  const headers = parseMimeHeaders('Subject: one\r\n two\r\nX-A: b\r\n\r\nNot-A-Header: body\r\n');
  t.deepEqual(headers, [
    { name: 'Subject', value: 'one two' },
    { name: 'X-A', value: 'b' },
  ]);
  t.is(headerValue(headers, 'subject'), 'one two');
});

test('splits address lists only on commas outside quotes and angle brackets', (t) => {
  t.deepEqual(splitAddressList('"Doe, Jane" <jane@x.com>, bob@y.com ,<odd,@z.com>'), [
    '"Doe, Jane" <jane@x.com>',
    'bob@y.com',
    '<odd,@z.com>',
  ]);
  t.is(bareAddress('"Doe, Jane" <jane@x.com>'), 'jane@x.com');
  t.is(bareAddress(' bob@y.com '), 'bob@y.com');
});

test('decodes base64 and quoted-printable encoded words, joining adjacent ones', (t) => {
  t.is(decodeEncodedWords('=?UTF-8?B?SMOp?= =?UTF-8?Q?llo_w=C3=B6rld?= !'), 'Héllo wörld !');
  t.is(decodeEncodedWords('=?x-unknown?Q?a?='), '=?x-unknown?Q?a?=');
});

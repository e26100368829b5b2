// TestRenderEmailTemplate answers with the complete MIME message SES would send (RenderedTemplate).
// The local SES builds it from the parts SendEmail would render: a Subject header (RFC 2047 when
// it is not ASCII) and the text and HTML parts, multipart/alternative when there are both, each
// 7bit when it is plain ASCII with short lines, else base64.
import { createMessageId } from './message-id.ts';

const ASCII_SHORT_LINES = /^[\x20-\x7e\t\r\n]*$/;

function encodedWord(value: string): string {
  if (/^[\x20-\x7e]*$/.test(value)) return value;
  return `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

function part(type: 'text/plain' | 'text/html', body: string): string {
  const plain = ASCII_SHORT_LINES.test(body) && body.split(/\r?\n/).every((l) => l.length <= 998);
  const encoded = plain
    ? body.replace(/\r?\n/g, '\r\n')
    : (Buffer.from(body, 'utf8')
        .toString('base64')
        .match(/.{1,76}/g)
        ?.join('\r\n') ?? '');
  return (
    `Content-Type: ${type}; charset=UTF-8\r\n` +
    `Content-Transfer-Encoding: ${plain ? '7bit' : 'base64'}\r\n\r\n${encoded}`
  );
}

export function renderedMime(
  rendered: { subject: string; text?: string; html?: string },
  now: number,
): string {
  const head =
    `Date: ${new Date(now).toUTCString().replace('GMT', '+0000')}\r\n` +
    `Message-ID: <${createMessageId(now)}@email.amazonses.com>\r\n` +
    `Subject: ${encodedWord(rendered.subject.replace(/[\r\n]+/g, ' '))}\r\n` +
    'MIME-Version: 1.0\r\n';
  const parts = [
    ...(rendered.text !== undefined ? [part('text/plain', rendered.text)] : []),
    ...(rendered.html !== undefined ? [part('text/html', rendered.html)] : []),
  ];
  if (parts.length === 1) return `${head}${parts[0]}\r\n`;
  const boundary = `----=_Part_${now.toString(16)}`;
  return (
    `${head}Content-Type: multipart/alternative; boundary="${boundary}"\r\n\r\n` +
    parts.map((p) => `--${boundary}\r\n${p}\r\n`).join('') +
    `--${boundary}--\r\n`
  );
}

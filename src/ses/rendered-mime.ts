// Reads the MIME message that SES's TestRenderEmailTemplate answers with (RenderedTemplate) back
// into a subject and its text and HTML bodies, for `mailer templates preview`. Enough MIME for
// what SES renders: folded headers, RFC 2047 encoded words, multipart (nested too), and the
// 7bit, 8bit, quoted-printable and base64 transfer encodings with their charset.

export interface RenderedParts {
  subject: string;
  text: string | undefined;
  html: string | undefined;
}

interface Entity {
  headers: Map<string, string>;
  body: string;
}

function splitEntity(source: string): Entity {
  const match = /\r?\n\r?\n/.exec(source);
  const block = match ? source.slice(0, match.index) : source;
  const body = match ? source.slice(match.index + match[0].length) : '';
  const headers = new Map<string, string>();
  let last: string | undefined;
  for (const line of block.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && last) {
      headers.set(last, `${headers.get(last)} ${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim().toLowerCase();
    headers.set(last, line.slice(colon + 1).trim());
  }
  return { headers, body };
}

function parameter(header: string, name: string): string | undefined {
  const match = new RegExp(`;\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, 'i').exec(header);
  return match?.[1] ?? match?.[2];
}

function decodeText(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset).decode(bytes);
  } catch {
    return bytes.toString('utf8');
  }
}

function quotedPrintable(text: string): Buffer {
  const soft = text.replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < soft.length; i++) {
    const hex = soft.slice(i + 1, i + 3);
    if (soft[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(soft[i] ?? '', 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

export function decodeEncodedWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_, charset: string, kind: string, text) => {
      const bytes =
        kind.toUpperCase() === 'B'
          ? Buffer.from(text, 'base64')
          : quotedPrintable(String(text).replace(/_/g, ' '));
      return decodeText(bytes, charset);
    });
}

function decodeBody(entity: Entity): string {
  const type = entity.headers.get('content-type') ?? 'text/plain';
  const charset = parameter(type, 'charset') ?? 'utf-8';
  const encoding = (entity.headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  const text =
    encoding === 'base64'
      ? decodeText(Buffer.from(entity.body.replace(/\s+/g, ''), 'base64'), charset)
      : encoding === 'quoted-printable'
        ? decodeText(quotedPrintable(entity.body), charset)
        : entity.body;
  return text.replace(/\r\n/g, '\n');
}

function collect(entity: Entity, found: { text?: string; html?: string }): void {
  const type = (entity.headers.get('content-type') ?? 'text/plain').toLowerCase();
  if (type.startsWith('multipart/')) {
    const boundary = parameter(entity.headers.get('content-type') ?? '', 'boundary');
    if (!boundary) return;
    const delimiter = `--${boundary}`;
    const sections = entity.body.split(delimiter).slice(1);
    for (const section of sections) {
      if (section.startsWith('--')) break; // the closing delimiter
      // The line break before a delimiter belongs to it, not to the part.
      collect(splitEntity(section.replace(/^[ \t]*\r?\n/, '').replace(/\r?\n$/, '')), found);
    }
    return;
  }
  if (type.startsWith('text/html')) found.html ??= decodeBody(entity);
  else if (type.startsWith('text/plain')) found.text ??= decodeBody(entity);
}

export function parseRenderedTemplate(mime: string): RenderedParts {
  const message = splitEntity(mime);
  const found: { text?: string; html?: string } = {};
  collect(message, found);
  return {
    subject: decodeEncodedWords(message.headers.get('subject') ?? ''),
    text: found.text?.replace(/\n$/, ''),
    html: found.html?.replace(/\n$/, ''),
  };
}

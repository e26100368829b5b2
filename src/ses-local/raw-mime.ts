// Just enough MIME to read a Content.Raw message back: the header block (with folded lines
// joined), address lists, and RFC 2047 encoded words in the subject. Bodies stay in `raw`.

export interface MimeHeader {
  name: string;
  value: string;
}

export function parseMimeHeaders(raw: string): MimeHeader[] {
  const end = raw.search(/\r?\n\r?\n/);
  const block = end === -1 ? raw : raw.slice(0, end);
  const headers: MimeHeader[] = [];
  for (const line of block.split(/\r?\n/)) {
    const last = headers.at(-1);
    if (/^[ \t]/.test(line) && last) {
      last.value += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    headers.push({ name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim() });
  }
  return headers;
}

export function headerValue(headers: MimeHeader[], name: string): string | undefined {
  const wanted = name.toLowerCase();
  return headers.find((header) => header.name.toLowerCase() === wanted)?.value;
}

/** Splits `a@x, "Doe, J" <j@y>` on the commas that separate addresses. */
export function splitAddressList(value: string): string[] {
  const addresses: string[] = [];
  let current = '';
  let quoted = false;
  let angle = false;
  for (const char of value) {
    if (char === '"') quoted = !quoted;
    else if (char === '<' && !quoted) angle = true;
    else if (char === '>' && !quoted) angle = false;
    if (char === ',' && !quoted && !angle) {
      addresses.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  addresses.push(current);
  return addresses.map((address) => address.trim()).filter((address) => address.length > 0);
}

/** `"Jane" <jane@example.com>` -> `jane@example.com`. */
export function bareAddress(address: string): string {
  const match = /<([^<>]*)>\s*$/.exec(address);
  return (match?.[1] ?? address).trim();
}

const ENCODED_WORD = /=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g;

export function decodeEncodedWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(ENCODED_WORD, (whole, charset: string, encoding: string, text: string) => {
      const bytes =
        encoding.toUpperCase() === 'B'
          ? Buffer.from(text, 'base64')
          : Buffer.from(
              text
                .replace(/_/g, ' ')
                .replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) =>
                  String.fromCharCode(Number.parseInt(hex, 16)),
                ),
              'latin1',
            );
      try {
        return new TextDecoder(charset).decode(bytes);
      } catch {
        return whole;
      }
    });
}

// Small request/response helpers over node:http: a size-capped body reader and typed answers.
import type { IncomingMessage, ServerResponse } from 'node:http';

export class PayloadTooLargeError extends Error {
  override name = 'PayloadTooLargeError';
}

// Past the limit the rest of the body is read and dropped, so the client can still read our 413;
// past this much more the connection is simply cut.
const DISCARD_LIMIT_FACTOR = 8;

/** The body as UTF-8; PayloadTooLargeError when it is (or says it is) larger than maxBytes. */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    let tooLarge = Number.isFinite(declared) && declared > maxBytes;
    if (tooLarge && declared > maxBytes * DISCARD_LIMIT_FACTOR) {
      req.destroy();
      reject(new PayloadTooLargeError(`body of ${declared} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        tooLarge = true;
        chunks.length = 0;
        if (size > maxBytes * DISCARD_LIMIT_FACTOR) req.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => {
      if (tooLarge) reject(new PayloadTooLargeError(`body over ${maxBytes} bytes`));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
    // A client that goes away mid-body: nobody is left to answer (settling twice is a no-op).
    req.on('close', () => reject(new Error('request closed before its body was read')));
  });
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(`${text}\n`);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(JSON.stringify(body));
}

export function methodNotAllowed(res: ServerResponse, allowed: readonly string[]): void {
  sendText(res, 405, 'method not allowed', { allow: allowed.join(', ') });
}

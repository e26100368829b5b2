// Small request/response helpers: a size-capped body reader (app.ts makes it every route's body
// parser) and typed answers on a fastify reply.
import type { IncomingMessage } from 'node:http';
import type { FastifyReply } from 'fastify';

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
  reply: FastifyReply,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): FastifyReply {
  return reply
    .code(status)
    .headers({
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
      ...headers,
    })
    .send(`${text}\n`);
}

export function sendJson(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply
    .code(status)
    .headers({ 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
    .send(JSON.stringify(body));
}

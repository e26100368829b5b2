import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { badRequest, type GatewayError, payloadTooLarge, type SesApiError } from './errors.ts';

export const MAX_BODY_BYTES = 10 * 1024 * 1024;

/**
 * Reads the whole body. An oversized body is still drained (not buffered) before the 413 is
 * thrown, so the client gets to read the answer instead of a reset socket mid-upload.
 */
export function readBody(req: IncomingMessage, limitBytes = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limitBytes) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > limitBytes) reject(payloadTooLarge(limitBytes));
      else resolve(chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

/** Parses a JSON object body; an empty body counts as `{}` as it does for the SDK. */
export function parseJsonObject(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw badRequest('Request body is not valid JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest('Request body must be a JSON object.');
  }
  return value as Record<string, unknown>;
}

export function writeJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    'x-amzn-RequestId': randomUUID(),
  });
  res.end(payload);
}

export function writeError(res: ServerResponse, error: SesApiError): void {
  if (res.headersSent || res.destroyed) return;
  const payload = JSON.stringify({ message: error.message });
  res.writeHead(error.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    'x-amzn-RequestId': randomUUID(),
    'x-amzn-ErrorType': error.errorType,
  });
  res.end(payload);
}

export function writeGatewayError(res: ServerResponse, error: GatewayError): void {
  if (res.headersSent || res.destroyed) return;
  const page = error.html();
  res.writeHead(error.status, {
    'content-type': 'text/html',
    'content-length': Buffer.byteLength(page),
  });
  res.end(page);
}

// A local SESv2-compatible endpoint over node:http for tests, the demo and benchmarks, driven by
// the real @aws-sdk/client-sesv2 client (`endpoint: url`). See ses-api.ts for the operations and
// admin-api.ts for the `/_local/` API.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { handleAdminApi } from './admin-api.ts';
import { GatewayError, SesApiError, unknownOperation } from './errors.ts';
import { readBody, writeError, writeGatewayError, writeJson } from './http-io.ts';
import type { Faults, SentMessage } from './model.ts';
import type { ApiRequest } from './routing.ts';
import { handleSesApi } from './ses-api.ts';
import { LocalSesState } from './state.ts';

export type { Faults, SentMessage } from './model.ts';
export { UNLIMITED_MAX_24_HOUR_SEND, UNLIMITED_MAX_SEND_RATE } from './ses-api.ts';

export interface LocalSesOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Defaults to 127.0.0.1. */
  host?: string;
  /** Accepted sends per second across all clients; 0/undefined = unlimited. */
  maxSendRate?: number;
  /** Accepted sends per sliding 24 hours; 0/undefined = unlimited. */
  max24HourSend?: number;
  faults?: Faults;
  /** Called for each accepted message, before SendEmail answers. */
  onSend?: (message: SentMessage) => void;
  logger?: Logger;
  /** Milliseconds clock for acceptance times and the rate windows; defaults to Date.now. */
  clock?: () => number;
  /** Source of [0, 1) numbers for `errorRate`; defaults to Math.random. */
  random?: () => number;
}

export interface LocalSes {
  url: string;
  port: number;
  sent(): SentMessage[];
  clear(): void;
  setFaults(faults: Faults): void;
  setMaxSendRate(rate: number | undefined): void;
  /** All SendEmail calls, rejected ones included. */
  sendCallCount(): number;
  close(): Promise<void>;
}

// Longer than any client's idle socket reuse, so the server never closes a keep-alive socket
// just as the SDK picks it for the next request (which would surface as ECONNRESET).
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

async function handleRequest(
  state: LocalSesState,
  req: IncomingMessage,
  res: ServerResponse,
  signal: AbortSignal,
): Promise<void> {
  const method = req.method ?? 'GET';
  try {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://local');
    const request: ApiRequest = {
      method,
      path: url.pathname,
      query: url.searchParams,
      body,
      signal,
      accessKeyId: /Credential=([^/,\s]+)\//.exec(req.headers.authorization ?? '')?.[1],
    };
    const reply = request.path.startsWith('/_local/')
      ? handleAdminApi(state, request)
      : await handleSesApi(state, request);
    if (!reply) throw unknownOperation(method, request.path);
    writeJson(res, reply.status, reply.body);
  } catch (error) {
    if (error instanceof SesApiError) return writeError(res, error);
    if (error instanceof GatewayError) return writeGatewayError(res, error);
    // A closing server or a client that went away: nobody is left to read an answer.
    if (signal.aborted || res.destroyed) return void res.destroy();
    state.logger?.error({ err: error, method, url: req.url }, 'local SES request failed');
    writeError(
      res,
      new SesApiError(500, 'InternalFailure', 'Local SES failed to handle the request.'),
    );
  }
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Ends held responses and keep-alive sockets too, so closing never waits on an idle client. */
function closeServer(server: Server, closing: AbortController): Promise<void> {
  return new Promise((resolve, reject) => {
    closing.abort();
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

export async function startLocalSes(options: LocalSesOptions = {}): Promise<LocalSes> {
  const state = new LocalSesState({
    maxSendRate: options.maxSendRate,
    max24HourSend: options.max24HourSend,
    clock: options.clock ?? Date.now,
    random: options.random ?? Math.random,
    onSend: options.onSend,
    logger: options.logger,
  });
  if (options.faults) state.faults.set(options.faults);
  const closing = new AbortController();
  const server = createServer((req, res) => void handleRequest(state, req, res, closing.signal));
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  const host = options.host ?? '127.0.0.1';
  const { port } = await listen(server, options.port ?? 0, host);
  const url = `http://${urlHost(host)}:${port}`;
  let closed: Promise<void> | undefined;
  state.logger?.debug({ url }, 'local SES listening');
  return {
    url,
    port,
    sent: () => [...state.messages],
    clear: () => state.clear(),
    setFaults: (faults) => state.faults.set(faults),
    setMaxSendRate: (rate) => {
      state.maxSendRate = rate || undefined;
    },
    sendCallCount: () => state.calls,
    close: () => {
      closed ??= closeServer(server, closing);
      return closed;
    },
  };
}

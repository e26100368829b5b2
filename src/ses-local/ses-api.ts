// The SESv2 REST operations the mailer uses, at the paths and with the field names of the SDK's
// serializers (restJson1: labels in the path, members in a JSON body).
import { badRequest, dailyQuotaExceeded, tooManyRequests } from './errors.ts';
import { parseJsonObject } from './http-io.ts';
import { identitiesNotVerified } from './identities.ts';
import { createMessageId } from './message-id.ts';
import type { SentMessage } from './model.ts';
import { renderTemplate } from './render-template.ts';
import { renderedMime } from './rendered-mime.ts';
import { type ApiReply, type ApiRequest, ok, pause } from './routing.ts';
import { parseSendEmailRequest, parseTemplateData } from './send-email-request.ts';
import { setupOperation } from './setup-api.ts';
import type { LocalSesState } from './state.ts';

// What GetAccount reports when no limit is configured. Real accounts never say "unlimited", and
// an application that paces itself by MaxSendRate must not become the bottleneck of a benchmark,
// so the rate is set well above what this server can take.
export const UNLIMITED_MAX_SEND_RATE = 10_000;
export const UNLIMITED_MAX_24_HOUR_SEND = 100_000_000;

const TEMPLATE_PATH = /^\/v2\/email\/templates\/([^/]+)$/;
const RENDER_PATH = /^\/v2\/email\/templates\/([^/]+)\/render$/;

/** The ordered checks of one SendEmail call; any failure is counted as rejected and not recorded. */
async function sendEmail(state: LocalSesState, request: ApiRequest): Promise<ApiReply> {
  state.calls++;
  let messageId: string;
  try {
    await pause(state.faults.delayMs(), request.signal);
    const denied = state.faults.authFailure();
    if (denied) throw denied;
    const injected = state.faults.takeInjectedFailure();
    if (injected) throw injected;
    const draft = parseSendEmailRequest(parseJsonObject(request.body), state.templates);
    const accountFailure = state.faults.accountFailure();
    if (accountFailure) throw accountFailure;
    const recipients = [...draft.to, ...draft.cc, ...draft.bcc];
    const unverified = state.identities.unverified(
      draft.from,
      recipients,
      !state.productionAccessEnabled,
    );
    if (unverified.length > 0) throw identitiesNotVerified(unverified);
    const now = state.clock();
    if (state.maxSendRate !== undefined && state.lastSecond.count(now) >= state.maxSendRate) {
      throw tooManyRequests();
    }
    if (state.max24HourSend !== undefined && state.lastDay.count(now) >= state.max24HourSend) {
      throw dailyQuotaExceeded();
    }
    const recipientFailure = state.faults.recipientFailure([
      ...draft.to,
      ...draft.cc,
      ...draft.bcc,
    ]);
    if (recipientFailure) throw recipientFailure;
    const message: SentMessage = {
      messageId: createMessageId(now),
      ...draft,
      acceptedAt: now,
      ...(request.accessKeyId ? { accessKeyId: request.accessKeyId } : {}),
    };
    state.messages.push(message);
    state.lastSecond.record(now);
    state.lastDay.record(now);
    notifySend(state, message);
    messageId = message.messageId;
  } catch (error) {
    state.rejected++;
    throw error;
  }
  // Accepted, but the answer is lost on the way back: the caller cannot know it was sent.
  const lostAnswer = state.faults.takeFailureAfterAccept();
  if (lostAnswer) throw lostAnswer;
  return ok({ MessageId: messageId });
}

// Called before the response is written, so a caller that awaited SendEmail can rely on the
// hook having run. A throwing hook must not turn an accepted send into an error.
function notifySend(state: LocalSesState, message: SentMessage): void {
  if (!state.onSend) return;
  try {
    state.onSend(message);
  } catch (error) {
    state.logger?.error(
      { err: error, messageId: message.messageId },
      'local SES onSend hook threw',
    );
  }
}

function getAccount(state: LocalSesState): ApiReply {
  return ok({
    SendQuota: {
      Max24HourSend: state.max24HourSend ?? UNLIMITED_MAX_24_HOUR_SEND,
      MaxSendRate: state.maxSendRate ?? UNLIMITED_MAX_SEND_RATE,
      SentLast24Hours: state.lastDay.count(state.clock()),
    },
    SendingEnabled: !state.faults.sendingPaused,
    ProductionAccessEnabled: state.productionAccessEnabled,
    EnforcementStatus: state.faults.accountSuspended ? 'SHUTDOWN' : 'HEALTHY',
    DedicatedIpAutoWarmupEnabled: false,
  });
}

function templateName(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw badRequest('Template name is not a valid URI component.');
  }
}

function templateOperation(
  state: LocalSesState,
  request: ApiRequest,
  name: string,
): ApiReply | undefined {
  switch (request.method) {
    case 'GET':
      return ok({ TemplateName: name, TemplateContent: state.templates.get(name) });
    case 'PUT':
      state.templates.update(name, parseJsonObject(request.body));
      return ok({});
    case 'DELETE':
      state.templates.delete(name);
      return ok({});
    default:
      return undefined;
  }
}

// TestRenderEmailTemplate: the stored template rendered with TemplateData exactly as SendEmail
// renders it (render-template.ts), answered as the MIME message SES would send.
function testRenderTemplate(state: LocalSesState, request: ApiRequest, name: string): ApiReply {
  const content = state.templates.get(name);
  const body = parseJsonObject(request.body) as { TemplateData?: unknown };
  if (typeof body.TemplateData !== 'string') throw badRequest('TemplateData is required.');
  const data = parseTemplateData(body.TemplateData);
  const render = (source: string | undefined) =>
    source === undefined ? undefined : renderTemplate(source, data);
  const rendered = {
    subject: render(content.Subject) ?? '',
    ...(content.Text !== undefined ? { text: render(content.Text) } : {}),
    ...(content.Html !== undefined ? { html: render(content.Html) } : {}),
  };
  return ok({ RenderedTemplate: renderedMime(rendered, state.clock()) });
}

/** Answers an SES API call, or returns undefined when no operation lives at that route. */
export async function handleSesApi(
  state: LocalSesState,
  request: ApiRequest,
): Promise<ApiReply | undefined> {
  const { method, path } = request;
  if (method === 'POST' && path === '/v2/email/outbound-emails') return sendEmail(state, request);
  const setup = setupOperation(request);
  if (setup) {
    await pause(state.faults.delayMs(), request.signal);
    return setup(state);
  }
  const renderMatch = RENDER_PATH.exec(path);
  if (method === 'POST' && renderMatch?.[1]) {
    await pause(state.faults.delayMs(), request.signal);
    return testRenderTemplate(state, request, templateName(renderMatch[1]));
  }
  const templateMatch = TEMPLATE_PATH.exec(path);
  const isOperation =
    path === '/v2/email/account' || path === '/v2/email/templates' || templateMatch;
  if (!isOperation) return undefined;
  await pause(state.faults.delayMs(), request.signal);
  if (method === 'GET' && path === '/v2/email/account') return getAccount(state);
  if (method === 'POST' && path === '/v2/email/templates') {
    state.templates.create(parseJsonObject(request.body));
    return ok({});
  }
  return templateMatch?.[1]
    ? templateOperation(state, request, templateName(templateMatch[1]))
    : undefined;
}

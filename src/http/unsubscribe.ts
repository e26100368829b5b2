// /unsubscribe/:token, the List-Unsubscribe URL of every email. GET shows what the link would do
// and a confirm button: link scanners and previews follow GETs, so a GET never unsubscribes. POST
// unsubscribes, either the RFC 8058 one-click request a mail client sends (a form field
// List-Unsubscribe=One-Click) or our page's button, whatever the link's age: mail stays in inboxes
// for months, and a token only ever unsubscribes its own address. Bad links get a page saying so,
// never a 500.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  isTokenShaped,
  type UnsubscribeMethod,
  unsubscribeByToken,
  unsubscribeTokenStatus,
} from '../events/unsubscribe.ts';
import { allowOnly } from './app.ts';
import type { HttpDeps } from './deps.ts';
import { PayloadTooLargeError, sendText } from './io.ts';
import { type Page, sendPage } from './pages.ts';

const MAX_BODY_BYTES = 16 * 1024;

// The link with or without a trailing slash (mail programs sometimes add one); an empty token
// is a malformed link (400), not another route.
const PATHS = ['/unsubscribe/:token', '/unsubscribe/:token/'];
const PATH_PATTERN = /^\/unsubscribe\/[^/?]*\/?(?:\?|$)/;

type TokenRequest = FastifyRequest<{ Params: { token: string } }>;

/** Which confirmation the POST carries: RFC 8058's field (urlencoded or multipart), or our form's. */
export function confirmationMethod(body: string): UnsubscribeMethod | undefined {
  const fields = new URLSearchParams(body);
  if (fields.get('List-Unsubscribe') === 'One-Click') return 'one_click';
  if (/name="List-Unsubscribe"\r?\n(?:[^\r\n]+\r?\n)*\r?\nOne-Click\r?\n/.test(body)) {
    return 'one_click';
  }
  if (fields.get('confirm') === 'yes') return 'form';
  return undefined;
}

export function createUnsubscribeRoutes(deps: HttpDeps) {
  const { pool, config, logger } = deps;
  const formOrigin = new URL(config.publicUrl).origin;
  const linkFor = (token: string) => `${config.publicUrl}/unsubscribe/${token}`;
  const answer = (reply: FastifyReply, status: number, page: Page) =>
    sendPage(reply, status, page, { formOrigin });

  const pages = {
    malformed: {
      title: 'This unsubscribe link is not valid',
      paragraphs: [
        'The link looks incomplete (mail programs sometimes break long links). ' +
          'Please copy the whole link from the email.',
      ],
    },
    unknown: {
      title: 'This unsubscribe link is not valid',
      paragraphs: ['We do not know this link. Please use the unsubscribe link in a recent email.'],
    },
    unavailable: {
      title: 'Please try again in a few minutes',
      paragraphs: ['We could not process your request just now. Nothing was changed.'],
    },
    tooLarge: { title: 'Request too large', paragraphs: ['Nothing was changed.'] },
    done: (email: string): Page => ({
      title: 'You are unsubscribed',
      paragraphs: [`We will not send any more emails to ${email}.`],
    }),
    already: (email: string): Page => ({
      title: 'You are already unsubscribed',
      paragraphs: [`${email} is unsubscribed; there is nothing else to do.`],
    }),
    confirm: (email: string, token: string, old: boolean): Page => ({
      title: 'Unsubscribe?',
      paragraphs: [
        ...(old
          ? [
              `This link is from an email more than ${config.unsubscribeTokenTtlDays} days old; ` +
                'it still works.',
            ]
          : []),
        `Press the button to stop receiving our emails at ${email}.`,
      ],
      form: { action: linkFor(token), button: 'Unsubscribe' },
    }),
    notConfirmed: (token: string): Page => ({
      title: 'Nothing was changed',
      paragraphs: ['To unsubscribe, press the button.'],
      form: { action: linkFor(token), button: 'Unsubscribe' },
    }),
  };

  function databaseDown(reply: FastifyReply, error: unknown) {
    logger.error({ err: error }, 'unsubscribe: database unavailable');
    return answer(reply, 503, pages.unavailable);
  }

  async function show(request: TokenRequest, reply: FastifyReply) {
    const { token } = request.params;
    if (!isTokenShaped(token)) return answer(reply, 400, pages.malformed);
    let status: Awaited<ReturnType<typeof unsubscribeTokenStatus>>;
    try {
      status = await unsubscribeTokenStatus(pool, token);
    } catch (error) {
      return databaseDown(reply, error);
    }
    const email = status.email ?? 'your address';
    if (status.outcome === 'valid' || status.outcome === 'expired') {
      return answer(reply, 200, pages.confirm(email, token, status.outcome === 'expired'));
    }
    if (status.outcome === 'already') return answer(reply, 200, pages.already(email));
    return answer(reply, 404, pages.unknown);
  }

  async function unsubscribe(request: TokenRequest, reply: FastifyReply) {
    const { token } = request.params;
    if (!isTokenShaped(token)) return answer(reply, 400, pages.malformed);
    // Whatever its Content-Type, the body arrives as text (app.ts); none at all is ''.
    const method = confirmationMethod(typeof request.body === 'string' ? request.body : '');
    if (method === undefined) return answer(reply, 400, pages.notConfirmed(token));
    let result: Awaited<ReturnType<typeof unsubscribeByToken>>;
    try {
      result = await unsubscribeByToken(pool, token, method);
    } catch (error) {
      return databaseDown(reply, error);
    }
    logger.info({ outcome: result.outcome, method }, 'unsubscribe link used');
    const email = result.email ?? 'your address';
    if (result.outcome === 'unsubscribed') return answer(reply, 200, pages.done(email));
    if (result.outcome === 'already') return answer(reply, 200, pages.already(email));
    return answer(reply, 404, pages.unknown);
  }

  return {
    register(app: FastifyInstance): void {
      for (const url of PATHS) {
        // GET also answers HEAD (fastify's exposeHeadRoutes).
        app.get(url, show);
        app.post(
          url,
          {
            bodyLimit: MAX_BODY_BYTES,
            errorHandler: (error, _request, reply) => {
              if (error instanceof PayloadTooLargeError) return answer(reply, 413, pages.tooLarge);
              throw error;
            },
          },
          unsubscribe,
        );
        allowOnly(app, url, ['GET', 'HEAD', 'POST']);
      }
    },

    /** A link whose path is not valid percent-encoding is a malformed link, not a 404. */
    badUrl(request: FastifyRequest, reply: FastifyReply): boolean {
      if (!PATH_PATTERN.test(request.url)) return false;
      if (!['GET', 'HEAD', 'POST'].includes(request.method)) {
        sendText(reply, 405, 'method not allowed', { allow: 'GET, HEAD, POST' });
      } else {
        answer(reply, 400, pages.malformed);
      }
      return true;
    },
  };
}

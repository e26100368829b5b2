// TestRenderEmailTemplate on the local SES, through the real SESv2 client: the stored template
// rendered as SendEmail renders it, answered as a MIME message that parseRenderedTemplate reads.
import {
  CreateEmailTemplateCommand,
  NotFoundException,
  SendEmailCommand,
  TestRenderEmailTemplateCommand,
} from '@aws-sdk/client-sesv2';
import test from 'ava';
import { parseRenderedTemplate } from '../../src/ses/rendered-mime.ts';
import { startForTest, templateEmail } from './helpers.ts';

test('renders the parts SendEmail would send, as MIME', async (t) => {
  const { ses, client } = await startForTest(t);
  await client.send(
    new CreateEmailTemplateCommand({
      TemplateName: 'weekly',
      TemplateContent: {
        Subject: 'Grüße {{name}}',
        Text: 'Hi {{name}},\nyour {{company}}',
        Html: '<p>{{name}}</p>',
      },
    }),
  );
  const data = JSON.stringify({ name: 'Zoë', company: 'A & B' });
  const answer = await client.send(
    new TestRenderEmailTemplateCommand({ TemplateName: 'weekly', TemplateData: data }),
  );
  const mime = answer.RenderedTemplate ?? '';
  t.regex(mime, /^Date: .*\r\nMessage-ID: <.*>\r\nSubject: =\?UTF-8\?B\?/);
  t.regex(mime, /Content-Type: multipart\/alternative; boundary=/);
  const rendered = parseRenderedTemplate(mime);
  t.deepEqual(rendered, {
    subject: 'Grüße Zoë',
    text: 'Hi Zoë,\nyour A & B',
    html: '<p>Zoë</p>',
  });
  // The same rendering as SendEmail.
  await client.send(
    new SendEmailCommand(
      templateEmail({ TemplateName: 'weekly', TemplateData: data }, ['zoe@example.com']),
    ),
  );
  t.like(ses.sent()[0], { subject: rendered.subject, text: rendered.text, html: rendered.html });
});

test('a text-only template is a single-part message; a missing one is NotFound', async (t) => {
  const { client } = await startForTest(t);
  await client.send(
    new CreateEmailTemplateCommand({
      TemplateName: 'plain',
      TemplateContent: { Subject: 'Hi {{name}}', Text: 'Hello {{name}}' },
    }),
  );
  const answer = await client.send(
    new TestRenderEmailTemplateCommand({ TemplateName: 'plain', TemplateData: '{"name":"Ann"}' }),
  );
  t.notRegex(answer.RenderedTemplate ?? '', /multipart/);
  t.deepEqual(parseRenderedTemplate(answer.RenderedTemplate ?? ''), {
    subject: 'Hi Ann',
    text: 'Hello Ann',
    html: undefined,
  });
  await t.throwsAsync(
    client.send(new TestRenderEmailTemplateCommand({ TemplateName: 'nope', TemplateData: '{}' })),
    { instanceOf: NotFoundException },
  );
});

test('reads quoted-printable, nested multiparts and Q-encoded subjects as SES may send them', (t) => {
  const mime =
    'Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe_Ann?=\r\n' +
    'Content-Type: multipart/mixed; boundary=a\r\n\r\n' +
    '--a\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n' +
    '--b\r\nContent-Type: text/plain; charset=UTF-8\r\n' +
    'Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe, a lon=\r\ng line\r\n' +
    '--b\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n<b>x</b>\r\n--b--\r\n--a--\r\n';
  t.deepEqual(parseRenderedTemplate(mime), {
    subject: 'Grüße Ann',
    text: 'Grüße, a long line',
    html: '<b>x</b>',
  });
});

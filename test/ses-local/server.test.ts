import type { SESv2ServiceException } from '@aws-sdk/client-sesv2';
import {
  CreateEmailTemplateCommand,
  DeleteEmailTemplateCommand,
  GetEmailTemplateCommand,
  ListEmailTemplatesCommand,
  SendEmailCommand,
  UpdateEmailTemplateCommand,
} from '@aws-sdk/client-sesv2';
import test from 'ava';
import { MESSAGE_ID_PATTERN } from '../../src/ses-local/message-id.ts';
import { createSesTemplate, simpleEmail, startForTest, templateEmail } from './helpers.ts';

test('records a simple send with its headers, tags and configuration set', async (t) => {
  const { ses, client } = await startForTest(t);
  const { MessageId } = await client.send(
    new SendEmailCommand({
      FromEmailAddress: 'News <news@example.com>',
      Destination: {
        ToAddresses: ['a@example.com'],
        CcAddresses: ['c@example.com'],
        BccAddresses: ['b@example.com'],
      },
      Content: {
        Simple: {
          Subject: { Data: 'Week 12', Charset: 'UTF-8' },
          Body: { Text: { Data: 'plain' }, Html: { Data: '<p>html</p>' } },
          Headers: [
            { Name: 'List-Unsubscribe', Value: '<https://example.com/u/1>' },
            { Name: 'List-Unsubscribe-Post', Value: 'List-Unsubscribe=One-Click' },
          ],
        },
      },
      EmailTags: [
        { Name: 'campaign_id', Value: '42' },
        { Name: 'customer-id', Value: 'c_7' },
      ],
      ConfigurationSetName: 'mailer-events',
    }),
  );
  t.regex(MessageId ?? '', MESSAGE_ID_PATTERN);
  const [message] = ses.sent();
  t.like(message, {
    messageId: MessageId,
    from: 'News <news@example.com>',
    to: ['a@example.com'],
    cc: ['c@example.com'],
    bcc: ['b@example.com'],
    subject: 'Week 12',
    text: 'plain',
    html: '<p>html</p>',
    tags: { campaign_id: '42', 'customer-id': 'c_7' },
    configurationSetName: 'mailer-events',
  });
  t.deepEqual(message?.headers, [
    { name: 'List-Unsubscribe', value: '<https://example.com/u/1>' },
    { name: 'List-Unsubscribe-Post', value: 'List-Unsubscribe=One-Click' },
  ]);
  t.is(message?.raw, undefined);
});

test('renders a stored template with the template data so the read-back shows the real text', async (t) => {
  const { ses, client } = await startForTest(t);
  await createSesTemplate(client, 'weekly', {
    Subject: 'Hi {{ name }}, week {{week}}',
    Text: 'Dear {{name}} from {{address.city}}{{missing}}',
    Html: '<p>{{name}}</p>{{{footer}}}',
  });
  await client.send(
    new SendEmailCommand(
      templateEmail(
        {
          TemplateName: 'weekly',
          TemplateData: JSON.stringify({
            name: 'Ann & Bo',
            week: 12,
            address: { city: 'Oslo' },
            footer: '<hr>',
          }),
          Headers: [{ Name: 'List-Unsubscribe', Value: '<mailto:u@example.com>' }],
        },
        ['ann@example.com'],
      ),
    ),
  );
  t.like(ses.sent()[0], {
    subject: 'Hi Ann & Bo, week 12',
    text: 'Dear Ann & Bo from Oslo',
    html: '<p>Ann & Bo</p><hr>',
    templateName: 'weekly',
    templateData: { name: 'Ann & Bo', week: 12 },
    headers: [{ name: 'List-Unsubscribe', value: '<mailto:u@example.com>' }],
  });
});

test('finds a template by its ARN', async (t) => {
  const { ses, client } = await startForTest(t);
  await createSesTemplate(client, 'arn-one', { Subject: 'S {{x}}' });
  await client.send(
    new SendEmailCommand(
      templateEmail(
        {
          TemplateArn: 'arn:aws:ses:us-east-1:123456789012:template/arn-one',
          TemplateData: '{"x":"1"}',
        },
        ['ann@example.com'],
      ),
    ),
  );
  t.like(ses.sent()[0], { subject: 'S 1', templateName: 'arn-one' });
});

test('records a raw send decoded, taking sender and recipients from its MIME headers', async (t) => {
  const { ses, client } = await startForTest(t);
  const mime = [
    'From: "News" <news@example.com>',
    'To: "Doe, Jane" <jane@example.com>, bob@example.com',
    'Subject: =?UTF-8?B?SMOpbGxv?= world',
    'List-Unsubscribe: <https://example.com/u/2>,',
    ' <mailto:u@example.com>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=UTF-8',
    '',
    'Body text',
  ].join('\r\n');
  await client.send(
    new SendEmailCommand({
      Content: { Raw: { Data: Buffer.from(mime) } },
      ConfigurationSetName: 'cs',
    }),
  );
  const [message] = ses.sent();
  t.like(message, {
    from: '"News" <news@example.com>',
    to: ['"Doe, Jane" <jane@example.com>', 'bob@example.com'],
    subject: 'Héllo world',
    raw: mime,
    configurationSetName: 'cs',
  });
  t.true(
    message?.headers.some(
      (header) =>
        header.name === 'List-Unsubscribe' &&
        header.value === '<https://example.com/u/2>, <mailto:u@example.com>',
    ),
  );
});

test('rejects a send without a sender or without recipients as a bad request', async (t) => {
  const { ses, client } = await startForTest(t);
  const noFrom = { ...simpleEmail(), FromEmailAddress: undefined };
  const noRecipients = { ...simpleEmail(), Destination: { ToAddresses: [] } };
  await t.throwsAsync(client.send(new SendEmailCommand(noFrom)), {
    name: 'BadRequestException',
    message: /FromEmailAddress/,
  });
  await t.throwsAsync(client.send(new SendEmailCommand(noRecipients)), {
    name: 'BadRequestException',
    message: /recipients/,
  });
  t.is(ses.sent().length, 0);
  t.is(ses.sendCallCount(), 2);
});

test('rejects malformed addresses, more than 50 recipients and tags SES does not allow', async (t) => {
  const { client } = await startForTest(t);
  const many = Array.from({ length: 51 }, (_, i) => `r${i}@example.com`);
  const badTag = { ...simpleEmail(), EmailTags: [{ Name: 'email', Value: 'ann@example.com' }] };
  await t.throwsAsync(client.send(new SendEmailCommand(simpleEmail(['no-domain']))), {
    name: 'BadRequestException',
  });
  await t.throwsAsync(client.send(new SendEmailCommand(simpleEmail(many))), {
    message: 'Recipient count exceeds 50.',
  });
  await t.throwsAsync(client.send(new SendEmailCommand(badTag)), {
    name: 'BadRequestException',
    message: /tag/,
  });
});

test('rejects a send naming a template that does not exist', async (t) => {
  const { ses, client } = await startForTest(t);
  const send = client.send(
    new SendEmailCommand(
      templateEmail({ TemplateName: 'nope', TemplateData: '{}' }, ['ann@example.com']),
    ),
  );
  const error = await t.throwsAsync<SESv2ServiceException>(send, {
    name: 'BadRequestException',
    message: 'Template nope does not exist.',
  });
  t.is(error?.$metadata.httpStatusCode, 400);
  t.is(ses.sent().length, 0);
});

test('manages templates: duplicate names, updates, reads and deletes', async (t) => {
  const { client } = await startForTest(t);
  const create = () =>
    client.send(
      new CreateEmailTemplateCommand({ TemplateName: 't1', TemplateContent: { Subject: 'one' } }),
    );
  await create();
  await t.throwsAsync(create(), { name: 'AlreadyExistsException' });
  await client.send(
    new UpdateEmailTemplateCommand({
      TemplateName: 't1',
      TemplateContent: { Subject: 'two', Text: 'x' },
    }),
  );
  const read = await client.send(new GetEmailTemplateCommand({ TemplateName: 't1' }));
  t.deepEqual(read.TemplateContent, { Subject: 'two', Text: 'x' });
  await client.send(new DeleteEmailTemplateCommand({ TemplateName: 't1' }));
  await t.throwsAsync(client.send(new GetEmailTemplateCommand({ TemplateName: 't1' })), {
    name: 'NotFoundException',
    message: 'Template t1 does not exist.',
  });
  await t.throwsAsync(client.send(new DeleteEmailTemplateCommand({ TemplateName: 't1' })), {
    name: 'NotFoundException',
  });
});

test('keeps an accepted send when the onSend hook throws', async (t) => {
  const { ses, client } = await startForTest(t, {
    onSend: () => {
      throw new Error('subscriber failed');
    },
  });
  const { MessageId } = await client.send(new SendEmailCommand(simpleEmail()));
  t.is(ses.sent()[0]?.messageId, MessageId);
});

test('answers operations it does not implement with an UnknownOperationException client error', async (t) => {
  const { client } = await startForTest(t);
  const error = await t.throwsAsync<SESv2ServiceException>(
    client.send(new ListEmailTemplatesCommand({})),
    {
      name: 'UnknownOperationException',
    },
  );
  t.is(error?.$fault, 'client');
  t.is(error?.$metadata.httpStatusCode, 404);
});

// The SendEmail request body as the SDK serializes it (restJson1 member names), and the
// message fields derived from it.
import { z } from 'zod';
import type { SentMessage } from './model.ts';
import { templateContentSchema } from './templates.ts';

const contentSchema = z.object({ Data: z.string(), Charset: z.string().optional() });
const headersSchema = z.array(z.object({ Name: z.string().min(1), Value: z.string() })).optional();
const addressesSchema = z.array(z.string()).optional();

export const sendEmailSchema = z.object({
  FromEmailAddress: z.string().optional(),
  Destination: z
    .object({
      ToAddresses: addressesSchema,
      CcAddresses: addressesSchema,
      BccAddresses: addressesSchema,
    })
    .optional(),
  EmailTags: z.array(z.object({ Name: z.string().min(1), Value: z.string() })).optional(),
  ConfigurationSetName: z.string().optional(),
  Content: z.object({
    Simple: z
      .object({
        Subject: contentSchema,
        Body: z.object({ Text: contentSchema.optional(), Html: contentSchema.optional() }),
        Headers: headersSchema,
      })
      .optional(),
    Raw: z.object({ Data: z.string().min(1) }).optional(),
    Template: z
      .object({
        TemplateName: z.string().optional(),
        TemplateArn: z.string().optional(),
        TemplateContent: templateContentSchema.optional(),
        TemplateData: z.string().optional(),
        Headers: headersSchema,
      })
      .optional(),
  }),
});

export type SendEmailRequest = z.infer<typeof sendEmailSchema>;
export type TemplateRequest = NonNullable<SendEmailRequest['Content']['Template']>;
export type MessageDraft = Omit<SentMessage, 'messageId' | 'acceptedAt'>;
export type ContentFields = Pick<
  MessageDraft,
  'subject' | 'text' | 'html' | 'headers' | 'templateName' | 'templateData' | 'raw'
>;

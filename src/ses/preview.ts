// A template rendered for one recipient exactly as a send renders it: an internal template by the
// renderer the worker uses (src/ses/render.ts), an SES template by SES itself
// (TestRenderEmailTemplate, with the TemplateData a send carries), read back from its MIME.
import { type SESv2Client, TestRenderEmailTemplateCommand } from '@aws-sdk/client-sesv2';
import type pg from 'pg';
import { createTemplateRenderer } from './render.ts';
import { parseRenderedTemplate, type RenderedParts } from './rendered-mime.ts';
import { sesTemplateDataJson } from './template-data.ts';

export interface PreviewTemplate {
  template_id: string;
  provider: 'ses' | 'internal';
  provider_template_name: string;
}

export async function renderPreview(
  deps: { pool: pg.Pool; ses: () => Promise<SESv2Client> },
  template: PreviewTemplate,
  data: Record<string, unknown>,
): Promise<RenderedParts> {
  if (template.provider === 'internal') {
    const rendered = await createTemplateRenderer(deps.pool)(template.template_id, data);
    return { subject: rendered.subject, text: rendered.text, html: rendered.html };
  }
  const client = await deps.ses();
  const answer = await client.send(
    new TestRenderEmailTemplateCommand({
      TemplateName: template.provider_template_name,
      TemplateData: sesTemplateDataJson(data),
    }),
  );
  return parseRenderedTemplate(answer.RenderedTemplate ?? '');
}

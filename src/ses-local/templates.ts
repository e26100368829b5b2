import { z } from 'zod';
import { alreadyExists, notFound, validationError } from './errors.ts';

export const templateContentSchema = z.object({
  Subject: z.string().optional(),
  Text: z.string().optional(),
  Html: z.string().optional(),
});

export type TemplateContent = z.infer<typeof templateContentSchema>;

const templateNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'only ASCII letters, digits, _ and -, at most 64 characters');

const createRequestSchema = z.object({
  TemplateName: templateNameSchema,
  TemplateContent: templateContentSchema,
});

const updateRequestSchema = z.object({ TemplateContent: templateContentSchema });

/** The stored email templates of one local SES instance, keyed by name like SES does. */
export class TemplateStore {
  #templates = new Map<string, TemplateContent>();

  create(body: unknown): void {
    const parsed = createRequestSchema.safeParse(body);
    if (!parsed.success) throw validationError(parsed.error);
    const { TemplateName, TemplateContent } = parsed.data;
    if (this.#templates.has(TemplateName)) {
      throw alreadyExists(`Template ${TemplateName} already exists.`);
    }
    this.#templates.set(TemplateName, TemplateContent);
  }

  update(name: string, body: unknown): void {
    const parsed = updateRequestSchema.safeParse(body);
    if (!parsed.success) throw validationError(parsed.error);
    this.get(name);
    this.#templates.set(name, parsed.data.TemplateContent);
  }

  find(name: string): TemplateContent | undefined {
    return this.#templates.get(name);
  }

  get(name: string): TemplateContent {
    const content = this.#templates.get(name);
    if (!content) throw notFound(`Template ${name} does not exist.`);
    return content;
  }

  delete(name: string): void {
    if (!this.#templates.delete(name)) throw notFound(`Template ${name} does not exist.`);
  }
}

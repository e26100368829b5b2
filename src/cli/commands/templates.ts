// `mailer templates add|list|activate|deactivate`: template versions per week of the month.
// SES does not escape template values in HTML, so an SES template's HtmlPart may only output the
// escaped `_html` twins (src/ses/template-variables.ts): `add` refuses an --html file that breaks
// the rule, and registering or activating an SES template checks the template SES holds.
import { readFile } from 'node:fs/promises';
import type { SESv2Client } from '@aws-sdk/client-sesv2';
import { type Command, InvalidArgumentError } from 'commander';
import type pg from 'pg';
import type { CliContext } from '../context.ts';
import { UsageError } from '../context.ts';
import {
  fail,
  intArgument,
  orFail,
  print,
  printJson,
  table,
  uuidArgument,
  withDatabase,
} from '../output.ts';
import { registerTemplatesPreview } from './templates-preview.ts';

interface AddFlags {
  provider: 'ses' | 'internal';
  week: number;
  version?: number;
  name?: string;
  subject?: string;
  html?: string;
  text?: string;
  inactive?: boolean;
  json?: boolean;
}

async function readBody(path: string | undefined, what: string): Promise<string | undefined> {
  if (path === undefined) return undefined;
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`${what} ${path}: ${(error as Error).message}`);
  }
}

// SES and internal templates both use Handlebars; a syntax error is caught here, not at send time.
async function checkSyntax(parts: Record<string, string | undefined>): Promise<void> {
  const { default: Handlebars } = await import('handlebars');
  for (const [what, source] of Object.entries(parts)) {
    if (source === undefined) continue;
    try {
      Handlebars.parse(source);
    } catch (error) {
      throw new UsageError(`${what} is not a valid template: ${(error as Error).message}`);
    }
  }
}

// The SES the template lives in. With SES_ENDPOINT=local that is a local SES inside this very
// process, gone when it exits, where creating or checking a template would prove nothing.
export async function withSes<T>(
  ctx: CliContext,
  noSes: string,
  action: (client: SESv2Client) => Promise<T>,
): Promise<T> {
  const { connectSes } = await import('../../ses/connect.ts');
  const ses = await connectSes(ctx.config, ctx.logger);
  try {
    if (ses.target.kind === 'in-process') {
      throw new UsageError(`${noSes}: SES_ENDPOINT=local lives only as long as this command`);
    }
    return await action(ses.client);
  } finally {
    await ses.close();
  }
}

// Creates the SES template (CreateEmailTemplate) inside the caller's transaction window: if SES
// refuses, the database row is rolled back with it.
async function createSesTemplate(ctx: CliContext, flags: AddFlags, content: Content) {
  const { CreateEmailTemplateCommand } = await import('@aws-sdk/client-sesv2');
  await withSes(
    ctx,
    'no SES to create the template in (omit --html/--text to register a template that ' +
      'already exists in SES)',
    (client) =>
      client.send(
        new CreateEmailTemplateCommand({
          TemplateName: flags.name,
          TemplateContent: { Subject: content.subject, Html: content.html, Text: content.text },
        }),
      ),
  );
}

// An SES template that is registered or activated must exist in SES and escape its HTML; each
// problem is one line of the refusal (exit 2), and nothing is stored or changed.
async function requireSafeSesTemplate(ctx: CliContext, name: string): Promise<void> {
  const { checkSesTemplate } = await import('../../ses/template-check.ts');
  const problems = await withSes(ctx, `no SES to check template ${name} in`, (client) =>
    checkSesTemplate(client, name),
  );
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
}

// The rule for an --html file of an SES template, checked before anything is created.
async function refuseRawHtmlVariables(html: string | undefined): Promise<void> {
  if (html === undefined) return;
  const { htmlTwin, rawHtmlVariables } = await import('../../ses/template-variables.ts');
  const raw = rawHtmlVariables(html);
  if (raw.length === 0) return;
  throw new UsageError(
    `--html uses raw variables ${raw.join(', ')}; SES does not escape HTML, so use ` +
      `${raw.map(htmlTwin).join(', ')} (the escaped twins mailer sends)`,
  );
}

// `{{frist_name}}` renders empty for everyone; refused with the names mailer does provide.
async function refuseUnknownVariables(
  provider: 'ses' | 'internal',
  parts: Record<string, string | undefined>,
): Promise<void> {
  const { knownVariableList, unknownVariables } = await import('../../ses/template-variables.ts');
  const problems = Object.entries(parts).flatMap(([what, source]) => {
    const unknown = source === undefined ? [] : unknownVariables(source, provider);
    return unknown.length === 0 ? [] : [`${what} uses unknown variables ${unknown.join(', ')}`];
  });
  if (problems.length === 0) return;
  throw new UsageError(
    `${problems.join('; ')}; known variables: ${knownVariableList(provider)} ` +
      '(see "Template variables" in the README)',
  );
}

interface Content {
  subject: string | undefined;
  html: string | undefined;
  text: string | undefined;
}

async function addAction(flags: AddFlags): Promise<void> {
  const content: Content = {
    subject: flags.subject,
    html: await readBody(flags.html, '--html'),
    text: await readBody(flags.text, '--text'),
  };
  const hasBody = content.html !== undefined || content.text !== undefined;
  if (flags.provider === 'internal' && (content.subject === undefined || !hasBody)) {
    throw new UsageError('an internal template needs --subject and --html and/or --text');
  }
  if (flags.provider === 'ses' && !flags.name) {
    throw new UsageError('an ses template needs --name (the SES template name)');
  }
  if (flags.provider === 'ses' && hasBody && content.subject === undefined) {
    throw new UsageError('creating the template in SES needs --subject too');
  }
  await checkSyntax({
    '--subject': content.subject,
    '--html': content.html,
    '--text': content.text,
  });
  await refuseUnknownVariables(flags.provider, {
    '--subject': content.subject,
    '--html': content.html,
    '--text': content.text,
  });
  if (flags.provider === 'ses') await refuseRawHtmlVariables(content.html);
  const { addTemplate } = await import('../../queries/templates.ts');
  await withDatabase(async (pool, ctx) => {
    if (flags.provider === 'ses' && !hasBody) await requireSafeSesTemplate(ctx, flags.name ?? '');
    const client = await pool.connect();
    try {
      await client.query('begin');
      const added = await orFail(() =>
        addTemplate(client, {
          provider: flags.provider,
          name: flags.name ?? `week ${flags.week}`,
          week: flags.week,
          version: flags.version,
          active: !flags.inactive,
          ...content,
        }),
      );
      if (!added) return void (await client.query('rollback'));
      if (flags.provider === 'ses' && hasBody) {
        try {
          await createSesTemplate(ctx, flags, content);
        } catch (error) {
          await client.query('rollback');
          if (error instanceof UsageError) throw error;
          return fail(`SES CreateEmailTemplate ${flags.name}: ${(error as Error).message}`);
        }
      }
      await client.query('commit');
      ctx.logger.info({ template_id: added.template_id }, 'template added');
      if (flags.json) return printJson(added);
      print(
        `template ${added.template_id}: week ${added.week_of_month} version ${added.version}` +
          `${added.is_active ? ', active' : ', inactive'}` +
          `${flags.provider === 'ses' && hasBody ? `; created in SES as ${flags.name}` : ''}`,
      );
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  });
}

async function listAction(flags: { week?: number; json?: boolean }): Promise<void> {
  const { listTemplates } = await import('../../queries/templates.ts');
  await withDatabase(async (pool) => {
    const rows = await listTemplates(pool, flags.week);
    if (flags.json) return printJson(rows);
    print(
      table(
        ['id', 'week', 'version', 'provider', 'name', 'active', 'in use', 'subject', 'campaigns'],
        rows.map((t) => [
          t.template_id,
          t.week_of_month,
          t.version,
          t.provider,
          t.provider_template_name,
          t.is_active,
          t.in_use ? 'yes' : '',
          t.subject,
          t.campaigns,
        ]),
      ),
    );
    const missing = [1, 2, 3, 4].filter(
      (w) =>
        (!flags.week || flags.week === w) && !rows.some((t) => t.week_of_month === w && t.in_use),
    );
    if (missing.length > 0) print(`no active template for week ${missing.join(', ')}`);
  });
}

function templateRef(value: string): string {
  if (/^[1-4]\/\d+$/.test(value)) return value;
  try {
    return uuidArgument('template')(value);
  } catch {
    throw new InvalidArgumentError(`a template is its id or WEEK/VERSION (e.g. 2/3), got ${value}`);
  }
}

async function resolveTemplate(pool: pg.Pool, ref: string): Promise<string | undefined> {
  const { findTemplateId } = await import('../../queries/templates.ts');
  const id = await findTemplateId(pool, ref);
  if (!id) fail(`no template ${ref}`);
  return id;
}

async function activateAction(ref: string): Promise<void> {
  const { activateTemplate } = await import('../../queries/templates.ts');
  await withDatabase(async (pool, ctx) => {
    const id = await resolveTemplate(pool, ref);
    if (!id) return;
    const { rows } = await pool.query<{ provider: string; provider_template_name: string }>(
      'select provider, provider_template_name from public.templates where template_id = $1',
      [id],
    );
    const template = rows[0];
    if (template?.provider === 'ses') {
      await requireSafeSesTemplate(ctx, template.provider_template_name);
    }
    const deactivated = await activateTemplate(pool, id);
    ctx.logger.info({ template_id: id }, 'template activated');
    print(
      `template ${id} is the active version of its week (${deactivated} other version(s) inactive)`,
    );
  });
}

async function deactivateAction(ref: string): Promise<void> {
  const { deactivateTemplate } = await import('../../queries/templates.ts');
  await withDatabase(async (pool, ctx) => {
    const id = await resolveTemplate(pool, ref);
    if (!id) return;
    await deactivateTemplate(pool, id);
    ctx.logger.info({ template_id: id }, 'template deactivated');
    print(`template ${id} is inactive`);
  });
}

export function registerTemplates(program: Command): void {
  const templates = program
    .command('templates')
    .description('Template versions per week of the month (the highest active version is used)');
  templates
    .command('add')
    .description(
      'Add a template version. internal: content from --subject, --html, --text, stored in the ' +
        'database. ses: registers the SES template --name; with --html/--text it is also ' +
        'created in SES (CreateEmailTemplate).',
    )
    .requiredOption('--provider <provider>', 'ses or internal', (v) => {
      if (v !== 'ses' && v !== 'internal') throw new InvalidArgumentError('ses or internal');
      return v;
    })
    .requiredOption('--week <n>', 'week of the month, 1-4', intArgument('--week', 1, 4))
    .option('--version <n>', 'version number (default: the next one)', intArgument('--version', 1))
    .option('--name <name>', 'SES template name (ses), or a label (internal)')
    .option('--subject <subject>', 'subject line (Handlebars)')
    .option('--html <file>', 'HTML body file (Handlebars)')
    .option('--text <file>', 'plain-text body file (Handlebars)')
    .option('--inactive', 'add it inactive (activate it later)')
    .option('--json', 'machine-readable output')
    .action(addAction);
  templates
    .command('list')
    .description('Template versions; "in use" marks the one new campaigns of the week get')
    .option('--week <n>', 'only this week', intArgument('--week', 1, 4))
    .option('--json', 'machine-readable output')
    .action(listAction);
  templates
    .command('activate')
    .description(
      'Make a version the one its week uses: it becomes active, every other version of the week ' +
        'inactive (activating an older version is a rollback)',
    )
    .argument('<template>', 'template id, or WEEK/VERSION such as 2/3', templateRef)
    .action(activateAction);
  templates
    .command('deactivate')
    .description('Take a version out of use for new campaigns')
    .argument('<template>', 'template id, or WEEK/VERSION such as 2/3', templateRef)
    .action(deactivateAction);
  registerTemplatesPreview(templates);
}

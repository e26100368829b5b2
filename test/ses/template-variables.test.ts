// The known template variables: a template using another one is refused (it would render empty
// for everyone), and greeting_name falls back to "there" for a customer without a name, in both
// providers' data.
import test from 'ava';
import { createTemplateRenderer } from '../../src/ses/render.ts';
import { sesTemplateDataJson, withTemplateDefaults } from '../../src/ses/template-data.ts';
import {
  knownVariableList,
  TEMPLATE_VARIABLES,
  unknownVariables,
} from '../../src/ses/template-variables.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { createTemplate } from '../helpers/factories.ts';

test('finds unknown variables and helpers, in blocks, arguments and else branches', (t) => {
  t.deepEqual(
    unknownVariables(
      'Hi {{frist_name}} {{name}} {{#if company}}{{company}}{{else}}{{compnay}}{{/if}} ' +
        '{{#each items}}{{this}}{{@index}}{{/each}} {{upper name}} {{name_html}}',
      'internal',
    ),
    ['frist_name', 'compnay', 'items', 'upper', 'name_html'],
  );
});

test('every documented variable is known, and _html twins only for ses', (t) => {
  const all = Object.keys(TEMPLATE_VARIABLES)
    .map((v) => `{{${v}}}`)
    .join(' ');
  t.deepEqual(unknownVariables(all, 'internal'), []);
  t.deepEqual(unknownVariables('{{name_html}} {{{unsubscribe_url_html}}}', 'ses'), []);
  t.deepEqual(unknownVariables('{{#unless name}}x{{/unless}}{{lookup . "name"}}', 'ses'), []);
  t.regex(
    knownVariableList('ses'),
    /^name, company, country, email, unsubscribe_url, greeting_name/,
  );
});

test('greeting_name is the name, or "there" when it is null or blank; a given one stays', (t) => {
  t.is(withTemplateDefaults({ name: ' Ann ' }).greeting_name, 'Ann');
  t.is(withTemplateDefaults({ name: null }).greeting_name, 'there');
  t.is(withTemplateDefaults({ name: '  ' }).greeting_name, 'there');
  t.is(withTemplateDefaults({}).greeting_name, 'there');
  t.is(withTemplateDefaults({ name: 'Ann', greeting_name: 'Dr. Ann' }).greeting_name, 'Dr. Ann');
  t.like(JSON.parse(sesTemplateDataJson({ name: null, company: 'A&B' })), {
    name: null,
    greeting_name: 'there',
    greeting_name_html: 'there',
    company_html: 'A&amp;B',
  });
});

test('an internal template renders "Hi there," for a customer without a name', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const template = await createTemplate(db.pool, {
    subject: 'Hi {{greeting_name}}',
    html: '<p>Hi {{greeting_name}},</p>',
    text: 'Hi {{greeting_name}},',
  });
  const render = createTemplateRenderer(db.pool);
  t.deepEqual(await render(template.template_id, { name: null }), {
    subject: 'Hi there',
    html: '<p>Hi there,</p>',
    text: 'Hi there,',
  });
  t.is((await render(template.template_id, { name: 'Ann' })).text, 'Hi Ann,');
});

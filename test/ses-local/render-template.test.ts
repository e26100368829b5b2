import test from 'ava';
import { renderTemplate } from '../../src/ses-local/render-template.ts';

test('substitutes top-level and nested values, tolerating spaces inside the braces', (t) => {
  const data = { name: 'Ann', order: { id: 7, lines: { count: 2 } } };
  t.is(renderTemplate('{{name}}/{{ order.id }}/{{order.lines.count}}', data), 'Ann/7/2');
});

test('inserts values unescaped in double and triple braces, as SES does', (t) => {
  const data = { html: `<a href="x">Tom & 'Jerry'</a>` };
  t.is(renderTemplate('<p>{{html}}</p>', data), `<p>${data.html}</p>`);
  t.is(renderTemplate('<p>{{{html}}}</p>', data), `<p>${data.html}</p>`);
});

test('renders missing, null and inherited values as empty text', (t) => {
  t.is(
    renderTemplate('[{{missing}}][{{gone}}][{{a.b.c}}][{{constructor}}]', { gone: null, a: 1 }),
    '[][][][]',
  );
});

test('leaves block helpers, comments and partials in place', (t) => {
  const source = '{{#if vip}}VIP{{/if}}{{! note}}{{> footer}}';
  t.is(renderTemplate(source, { vip: true }), source);
});

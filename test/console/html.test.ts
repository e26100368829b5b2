import test from 'ava';
import { html, trusted } from '../../src/console/html.ts';

test('values in an html template are escaped, markup built by html is not', (t) => {
  const name = '<script>alert(1)</script> & "quotes" \'too\'';
  const inner = html`<b>${name}</b>`;
  t.is(
    html`<p title="${name}">${inner}</p>`.text,
    '<p title="&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot; &#39;too&#39;">' +
      '<b>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot; &#39;too&#39;</b></p>',
  );
});

test('arrays are joined, null, undefined and false vanish, numbers and dates are text', (t) => {
  const when = new Date('2026-12-06T10:00:00Z');
  t.is(
    html`${['a', '<b>']}|${null}|${undefined}|${false}|${42}|${when}`.text,
    'a&lt;b&gt;||||42|2026-12-06T10:00:00.000Z',
  );
});

test('only trusted() lets text through unescaped', (t) => {
  t.is(html`${trusted('<hr>')}${'<hr>'}`.text, '<hr>&lt;hr&gt;');
});

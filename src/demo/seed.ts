import type pg from 'pg';

// Sample customers for the demo: readers at example.com, the SES mailbox simulator's addresses
// (success, bounce, complaint, suppressionlist), one inactive customer and one address that is
// already on the suppression list; and an internal template for every week.
export async function seedDemoData(pool: pg.Pool): Promise<number> {
  await pool.query(
    `insert into templates (provider, provider_template_name, week_of_month)
     select 'internal', 'weekly-news-' || w, w from generate_series(1, 4) w`,
  );
  await pool.query(
    `insert into template_contents (template_id, subject, html_body, text_body)
     select template_id, 'Week ' || week_of_month || ' news for {{name}}',
            '<h1>Hello {{name}}</h1><p>News for {{company}} in {{country}}.</p>'
              || '<p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>',
            'Hello {{name}}, news for {{company}}. Unsubscribe: {{unsubscribe_url}}'
       from templates`,
  );
  const { rowCount } = await pool.query(
    `insert into customers (email, name, company, country, is_active)
     select 'reader' || g || '@example.com', 'Reader ' || g, 'Company ' || (g % 17), 'NL', true
       from generate_series(1, 480) g
     union all
     select a || '@simulator.amazonses.com', initcap(a), 'Simulator', 'US', true
       from unnest(array['success', 'bounce', 'complaint', 'suppressionlist']) a
     union all select 'former@example.com', 'Former Customer', 'Gone Ltd', 'DE', false
     union all select 'opted-out@example.com', 'Opted Out', 'Quiet BV', 'BE', true`,
  );
  await pool.query(
    `insert into suppression_list (email, reason, source)
     values ('opted-out@example.com', 'unsubscribe', 'user')`,
  );
  return rowCount ?? 0;
}

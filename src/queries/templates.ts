// Template versions: typed callers of add_template/activate_template/deactivate_template
// (migrations/schema.sql) and the listing behind `mailer templates list`.
import type { Db } from '../db/pool.ts';

export interface TemplateListRow {
  template_id: string;
  week_of_month: number;
  version: number;
  provider: 'ses' | 'internal';
  provider_template_name: string;
  is_active: boolean;
  in_use: boolean;
  subject: string | null;
  campaigns: number;
  created_at: Date;
}

// in_use: the version generate_campaign would pick today (the highest active one of its week).
export async function listTemplates(db: Db, week: number | undefined): Promise<TemplateListRow[]> {
  const { rows } = await db.query<TemplateListRow>(
    `select t.template_id, t.week_of_month, t.version, t.provider, t.provider_template_name,
            t.is_active,
            t.template_id = (select u.template_id from public.templates u
                              where u.week_of_month = t.week_of_month and u.is_active
                              order by u.version desc limit 1) as in_use,
            tc.subject,
            (select count(*)::int from public.campaigns c where c.template_id = t.template_id)
              as campaigns,
            t.created_at
       from public.templates t
       left join public.template_contents tc on tc.template_id = t.template_id
      where $1::int is null or t.week_of_month = $1
      order by t.week_of_month, t.version`,
    [week ?? null],
  );
  return rows;
}

export interface NewTemplate {
  provider: 'ses' | 'internal';
  name: string;
  week: number;
  version: number | undefined;
  subject: string | undefined;
  html: string | undefined;
  text: string | undefined;
  active: boolean;
}

export interface AddedTemplate {
  template_id: string;
  week_of_month: number;
  version: number;
  is_active: boolean;
}

export async function addTemplate(db: Db, t: NewTemplate): Promise<AddedTemplate> {
  const { rows } = await db.query<AddedTemplate>(
    `select template_id, week_of_month, version, is_active
       from public.add_template($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      t.provider,
      t.name,
      t.week,
      t.version ?? null,
      t.subject ?? null,
      t.html ?? null,
      t.text ?? null,
      t.active,
    ],
  );
  const row = rows[0];
  if (!row) throw new Error('add_template returned nothing');
  return row;
}

// A template named by its id, or as WEEK/VERSION ("2/3").
export async function findTemplateId(db: Db, ref: string): Promise<string | undefined> {
  const byVersion = /^([1-4])\/(\d+)$/.exec(ref);
  const { rows } = byVersion
    ? await db.query<{ template_id: string }>(
        'select template_id from public.templates where week_of_month = $1 and version = $2',
        [Number(byVersion[1]), Number(byVersion[2])],
      )
    : await db.query<{ template_id: string }>(
        'select template_id from public.templates where template_id = $1',
        [ref],
      );
  return rows[0]?.template_id;
}

export async function activateTemplate(db: Db, templateId: string): Promise<number> {
  const { rows } = await db.query<{ deactivated: number }>(
    'select public.activate_template($1) as deactivated',
    [templateId],
  );
  return rows[0]?.deactivated ?? 0;
}

export async function deactivateTemplate(db: Db, templateId: string): Promise<void> {
  await db.query('select public.deactivate_template($1)', [templateId]);
}

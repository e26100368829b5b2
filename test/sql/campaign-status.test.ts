// Campaign state changes refused with a message that names the state and what to do instead.
import test from 'ava';
import { databaseForFile } from '../helpers/db.ts';
import { createCampaign, createTemplate } from '../helpers/factories.ts';

const db = databaseForFile();

// Each test its own template version: (week, version) is unique.
let version = 0;
const template = () => createTemplate(db.pool, { version: ++version });

for (const fn of ['queue_campaign', 'pause_campaign', 'resume_campaign']) {
  test(`${fn} of a done campaign is refused naming the state and what to do`, async (t) => {
    const { template_id } = await template();
    const campaign = await createCampaign(db.pool, {
      template_id,
      status: 'done',
    });
    const error = await t.throwsAsync(
      db.pool.query(`select public.${fn}($1)`, [campaign.campaign_id]),
    );
    t.is((error as { code?: string }).code, '23514');
    t.regex(error?.message ?? '', new RegExp(`${fn}: campaign ${campaign.campaign_id} is done`));
    t.regex(
      (error as { hint?: string }).hint ?? '',
      /done campaign is finished; retry_failed_recipients/,
    );
  });
}

test('pausing a draft says how to queue it', async (t) => {
  const { template_id } = await template();
  const campaign = await createCampaign(db.pool, {
    template_id,
    status: 'draft',
  });
  const error = await t.throwsAsync(
    db.pool.query('select public.pause_campaign($1)', [campaign.campaign_id]),
  );
  t.regex(error?.message ?? '', /is draft; pause_campaign applies to a queued or sending campaign/);
  t.is((error as { hint?: string }).hint, 'queue it with queue_campaign');
});

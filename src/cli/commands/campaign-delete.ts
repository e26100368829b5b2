// `mailer campaign delete ID`: a draft (a mistaken generation, a cancelled mailing) goes, with its
// recipients, unsubscribe tokens and scheduled job (delete_draft_campaign). A campaign that was
// ever queued is refused: its recipients are the record of what went out.
import type { Command } from 'commander';
import { orFail, print, uuidArgument, withDatabase } from '../output.ts';

async function deleteAction(campaignId: string, flags: { note?: string }): Promise<void> {
  const { deleteDraftCampaign } = await import('../../queries/drafts.ts');
  await withDatabase(async (pool, ctx) => {
    const recipients = await orFail(() => deleteDraftCampaign(pool, campaignId, flags.note));
    if (recipients === undefined) return;
    ctx.logger.info({ campaign_id: campaignId, recipients }, 'campaign delete');
    print(`campaign ${campaignId}: deleted with its ${recipients} recipients and their tokens`);
  });
}

export function registerCampaignDelete(campaign: Command): void {
  campaign
    .command('delete')
    .description(
      'Delete a draft campaign with its recipients and unsubscribe tokens (a draft only; ' +
        'recorded in operator_actions)',
    )
    .argument('<campaign>', 'campaign id', uuidArgument('campaign'))
    .option('--note <text>', 'why (recorded with the action)')
    .action(deleteAction);
}

// The failure-rate guard: a campaign whose recent sends SES refuses above a threshold is paused,
// like the bounce and complaint guard. Refusals one by one are the recipients' own (a rejected
// address), but a campaign where one in ten fails has a problem of its own (content SES rejects,
// a template that does not render) and should stop before it fails everyone.
// Per worker process and campaign: the last WINDOW sends whose answer named the recipient.

const WINDOW = 100;
const MIN_SENDS = 50;

export interface FailureGuard {
  /** Records one send; returns the pause reason when the campaign just crossed the threshold. */
  record(campaignId: string, failed: boolean): string | undefined;
}

export function createFailureGuard(maxRate: number): FailureGuard {
  const windows = new Map<string, boolean[]>();
  return {
    record(campaignId, failed) {
      let window = windows.get(campaignId);
      if (!window) {
        window = [];
        windows.set(campaignId, window);
      }
      window.push(failed);
      if (window.length > WINDOW) window.shift();
      const failures = window.filter(Boolean).length;
      if (window.length < MIN_SENDS || failures / window.length <= maxRate) return undefined;
      // Start over, so a resumed campaign is judged on its sends after the resume.
      windows.delete(campaignId);
      return (
        `${failures} of the last ${window.length} sends failed ` +
        `(above the ${Math.round(maxRate * 1000) / 10}% SEND_FAILURE_MAX_RATE)`
      );
    },
  };
}

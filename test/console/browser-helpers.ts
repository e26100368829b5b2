// For the console's browser tests (console.browser.test.ts, pages-browser.test.ts): Debian's
// Chromium, driven by playwright-core, where it is installed; their tests are skipped, with the
// reason, where it is not. CONSOLE_SCREENSHOTS=1 has them write pictures to docs/console/.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const available = existsSync(CHROMIUM);
export const screenshots = process.env.CONSOLE_SCREENSHOTS === '1';
export const docs = join(import.meta.dirname, '..', '..', 'docs', 'console');

/** test.serial where chromium is installed; elsewhere test.serial.skip, saying so for `what`. */
export function browserTests(what: string) {
  if (!available)
    process.stderr.write(`${what} browser tests skipped: no chromium at ${CHROMIUM}\n`);
  return available ? test.serial : test.serial.skip;
}

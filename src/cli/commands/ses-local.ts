import type { Command } from 'commander';
import { UsageError } from '../context.ts';

export function registerSesLocal(program: Command): void {
  program
    .command('ses-local')
    .description(
      'Run the local SES-compatible endpoint (for the demo, tests and benchmarks; nothing is ' +
        'delivered). LOCAL_SES_PORT (4579), LOCAL_SES_HOST, LOCAL_SES_MAX_SEND_RATE',
    )
    .action(async () => {
      const [{ runLocalSes, parseLocalSesEnv }, { createLogger }] = await Promise.all([
        import('../../ses-local/main.ts'),
        import('../../logger.ts'),
      ]);
      try {
        parseLocalSesEnv(process.env);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      await runLocalSes(process.env, createLogger({ level: process.env.LOG_LEVEL ?? 'info' }));
    });
}

// What every command needs: validated config (a bad value exits naming the variable), the logger,
// and the database URL (DATABASE_URL or the embedded default).
import { type Config, ConfigError, loadConfig } from '../config.ts';
import { resolveDatabaseUrl } from '../db/pool.ts';
import { createLogger, type Logger } from '../logger.ts';

export class UsageError extends Error {}

export interface CliContext {
  config: Config;
  logger: Logger;
  databaseUrl(): Promise<string>;
}

export function createContext(): CliContext {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`mailer: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger({ level: config.logLevel });
  let url: Promise<string> | undefined;
  return {
    config,
    logger,
    databaseUrl: () => {
      url ??= resolveDatabaseUrl(config, logger);
      return url;
    },
  };
}

// Resolves when the process is asked to stop (SIGTERM or SIGINT). A second signal exits at once.
export function untilSignal(logger: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    const handler = (signal: NodeJS.Signals) => {
      if (received) {
        logger.warn({ signal }, 'second signal: exiting immediately');
        process.exit(130);
      }
      received = true;
      logger.info({ signal }, 'shutting down gracefully');
      resolve(signal);
    };
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
  });
}

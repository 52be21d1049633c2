import pino from 'pino';

export type { Logger } from 'pino';

export function createLogger(level: string) {
  return pino({
    level,
    // Credentials must never reach a log line, whatever object gets logged.
    redact: ['*.authorization', '*.password', '*.token', 'req.headers.authorization', 'req.headers.cookie'],
  });
}

/** The pino methods the trading services log with (a pino logger fits; tests pass a silent one). */
export interface ServiceLogger {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
  debug?(details: object, message: string): void;
}

export const silentLogger: ServiceLogger = { info() {}, warn() {}, error() {} };

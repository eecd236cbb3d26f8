import { describe, expect, it } from 'vitest';
import { parseDotEnv } from './dot-env.ts';

describe('parseDotEnv', () => {
  it('reads names and values, comments, blank lines, export and multi-line quoted values', () => {
    expect(
      parseDotEnv(
        '# settings\n\nPORT=8081\nexport LOG_LEVEL=warn # loud enough\nNOTE="two\nlines"\nHOST = 0.0.0.0\n',
      ),
    ).toEqual({ variables: { PORT: '8081', LOG_LEVEL: 'warn', NOTE: 'two\nlines', HOST: '0.0.0.0' } });
  });

  it('reads a file saved with a byte-order mark', () => {
    expect(parseDotEnv('\uFEFFQUOTE_INTERVAL_MS=abc\nPORT=1\n')).toEqual({
      variables: { QUOTE_INTERVAL_MS: 'abc', PORT: '1' },
    });
  });

  it('names a line that is no assignment, instead of folding it into the next name', () => {
    expect(parseDotEnv('PORT=8081\nWelcome to my env\nTRADECORE_DATA_DIR=/tmp/x\n')).toEqual({
      problem: 'line 2 is not NAME=value: "Welcome to my env"',
    });
    expect(parseDotEnv('TRADECORE_DATA_DIR\r\nPORT=1\r\n')).toEqual({
      problem: 'line 1 is not NAME=value: "TRADECORE_DATA_DIR"',
    });
  });
});

import { describe, expect, it } from 'vitest';
import { TokenIssuer } from './auth.ts';

const principal = { accountId: 'account-1', username: 'alice', roles: ['trader' as const] };

describe('TokenIssuer', () => {
  it('verifies its own token, again and again, until it expires', async () => {
    let now = new Date('2026-11-27T10:00:00Z');
    const issuer = new TokenIssuer('a-secret-of-at-least-32-characters!!', 60, () => now);
    const { token } = await issuer.issue(principal);
    expect(await issuer.verify(token)).toEqual(principal);
    expect(await issuer.verify(token)).toEqual(principal);
    now = new Date('2026-11-27T10:00:59Z');
    expect(await issuer.verify(token)).toEqual(principal);
    now = new Date('2026-11-27T10:01:00Z');
    expect(await issuer.verify(token)).toBeUndefined();
    // Still expired when asked again: the remembered verification is gone.
    expect(await issuer.verify(token)).toBeUndefined();
  });

  it("refuses a forged token or another issuer's, even beside a verified one", async () => {
    const issuer = new TokenIssuer('a-secret-of-at-least-32-characters!!', 3600);
    const other = new TokenIssuer('another-secret-of-at-least-32-chars!', 3600);
    const { token } = await issuer.issue(principal);
    expect(await issuer.verify(token)).toEqual(principal);
    const [header, payload] = token.split('.');
    const forged = `${header}.${payload}.${'A'.repeat(43)}`;
    expect(await issuer.verify(forged)).toBeUndefined();
    expect(await issuer.verify((await other.issue(principal)).token)).toBeUndefined();
    expect(await issuer.verify('not a token')).toBeUndefined();
  });
});

import { createHmac, randomBytes, scrypt, timingSafeEqual, webcrypto } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { Role } from '../../domain/broker/account/events.ts';

/**
 * Passwords: scrypt (memory-hard; node:crypto, no dependency) with a 16-byte random salt per user.
 * The stored hash names its parameters so they can be raised later without breaking old hashes:
 * `scrypt$N$r$p$salt$hash`, base64url.
 */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, keyLength: 32 };

function derive(password: string, salt: Buffer, N: number, r: number, p: number, keyLength: number) {
  return new Promise<Buffer>((resolve, reject) =>
    scrypt(password, salt, keyLength, { N, r, p, maxmem: 128 * N * r * 2 }, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

/** The built-in administrator's account id and username. */
export const ADMIN_ACCOUNT_ID = 'admin';
export const ADMIN_USERNAME = 'admin';

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const { N, r, p, keyLength } = SCRYPT;
  const key = await derive(password, salt, N, r, p, keyLength);
  return ['scrypt', N, r, p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const key = await derive(
    password,
    Buffer.from(salt, 'base64url'),
    Number(n),
    Number(r),
    Number(p),
    expected.length,
  );
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A scrypt run for an unknown username, so that its answer takes as long as a wrong password's. */
let dummyHash: Promise<string> | undefined;
export async function burnPasswordCheck(password: string): Promise<void> {
  dummyHash ??= hashPassword(randomBytes(12).toString('hex'));
  await verifyPassword(password, await dummyHash);
}

export const Principal = z.object({
  accountId: z.string().min(1),
  username: z.string().min(1),
  roles: z.array(Role).min(1),
});
export type Principal = z.infer<typeof Principal>;

/** How many verified tokens `TokenIssuer` remembers (the oldest go first). */
const VERIFIED_TOKENS_KEPT = 10_000;

/** A verified token: who it stands for, and when it was issued and expires (whole seconds, in ms). */
export interface Session {
  principal: Principal;
  issuedAtMs: number;
  expiresAtMs: number;
  /** The account's password changes its login was checked against (`pwc`); absent from older tokens. */
  passwordChanges?: number;
}

/** Signs and verifies bearer tokens: HS256 JWTs with an expiry, issuer `tradecore`. */
export class TokenIssuer {
  /** Imported once: given raw bytes, jose imports a key for every token it signs or verifies. */
  private readonly key: Promise<webcrypto.CryptoKey>;
  /**
   * Tokens already verified, with their expiry: a client sends the same token with every request,
   * and checking its signature again each time was a few percent of the API's CPU. Only a token
   * identical to one whose signature was checked is found here.
   */
  private readonly verified = new Map<string, Session>();
  /**
   * The key request fingerprints are made with (services/api/idempotency.ts), derived from the
   * signing secret, so every API process with the same secret has the same: a register's body holds
   * a password, and its fingerprint, which the audit API shows, must not be a plain digest anyone
   * could test guesses against.
   */
  readonly fingerprintKey: Buffer;

  constructor(
    secret: string,
    private readonly ttlSeconds: number,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.fingerprintKey = createHmac('sha256', secret).update('tradecore idempotency fingerprint').digest();
    this.key = webcrypto.subtle.importKey(
      'raw',
      new TextEncoder().encode(secret),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign', 'verify'],
    );
  }

  /**
   * A token for `principal`; `passwordChanges` is the account's count of password changes as the
   * password this token was given for was checked (a login's, a change's own): a later change revokes it.
   */
  async issue(principal: Principal, passwordChanges?: number): Promise<{ token: string; expiresAt: string }> {
    const issuedAt = Math.floor(this.now().getTime() / 1000);
    const expiresAt = issuedAt + this.ttlSeconds;
    const token = await new SignJWT({
      username: principal.username,
      roles: principal.roles,
      ...(passwordChanges !== undefined ? { pwc: passwordChanges } : {}),
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(principal.accountId)
      .setIssuer('tradecore')
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .sign(await this.key);
    return { token, expiresAt: new Date(expiresAt * 1000).toISOString() };
  }

  /** The token's principal, or undefined when it is malformed, forged or expired. */
  async verify(token: string): Promise<Principal | undefined> {
    return (await this.session(token))?.principal;
  }

  /** The token's principal and when the token was issued and expires, or undefined as for `verify`. */
  async session(token: string): Promise<Session | undefined> {
    const checked = await this.check(token);
    return typeof checked === 'string' ? undefined : checked;
  }

  /**
   * The token's session, or why there is none: signed by us but past its expiry, or not a token of
   * ours at all (malformed, forged, another issuer). jose checks the signature before the claims,
   * so an expired token is a genuine one.
   */
  async check(token: string): Promise<Session | 'expired' | 'invalid'> {
    const now = this.now();
    const known = this.verified.get(token);
    if (known) {
      if (now.getTime() < known.expiresAtMs) return known;
      this.verified.delete(token);
      return 'expired';
    }
    try {
      const { payload } = await jwtVerify(token, await this.key, {
        issuer: 'tradecore',
        algorithms: ['HS256'],
        requiredClaims: ['exp', 'iat'],
        currentDate: now,
      });
      const parsed = Principal.safeParse({
        accountId: payload.sub,
        username: payload.username,
        roles: payload.roles,
      });
      if (!parsed.success) return 'invalid';
      if (this.verified.size >= VERIFIED_TOKENS_KEPT)
        this.verified.delete(this.verified.keys().next().value!);
      const { pwc } = payload;
      const session: Session = {
        principal: parsed.data,
        issuedAtMs: (payload.iat ?? 0) * 1000,
        expiresAtMs: (payload.exp ?? 0) * 1000,
        ...(Number.isSafeInteger(pwc) && (pwc as number) >= 0 ? { passwordChanges: pwc as number } : {}),
      };
      this.verified.set(token, session);
      return session;
    } catch (error) {
      return (error as { code?: string }).code === 'ERR_JWT_EXPIRED' ? 'expired' : 'invalid';
    }
  }
}

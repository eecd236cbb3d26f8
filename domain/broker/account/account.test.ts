import { describe, expect, it } from 'vitest';
import { replay } from '../../shared/decider.ts';
import { specification } from '../../shared/testing.ts';
import { type Account, accountDecider, assertMay } from './account.ts';
import {
  AccountAlreadyRegistered,
  AccountDisabled,
  AccountNotFound,
  DisableReasonRequired,
  InvalidPasswordHash,
  InvalidUsername,
  LastRole,
  NoRoles,
  RoleRequired,
  UnknownRole,
} from './errors.ts';
import { type AccountEvent, accountEvents } from './events.ts';

const given = specification(accountDecider, { events: accountEvents });
const at = '2025-03-14T13:00:00.000Z';
const hash = '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA';

const registered: AccountEvent = {
  type: 'AccountRegistered',
  data: { accountId: 'a1', username: 'alice', passwordHash: hash, roles: ['trader'], registeredAt: at },
};
const disabled: AccountEvent = {
  type: 'AccountDisabled',
  data: { accountId: 'a1', reason: 'fraud review', disabledBy: 'admin1', at },
};
const register = (overrides: object = {}) => ({
  type: 'RegisterAccount' as const,
  accountId: 'a1',
  username: 'alice',
  passwordHash: hash,
  at,
  ...overrides,
});

describe('registration', () => {
  it('registers a trader by default', () => given([]).when(register()).then([registered]));
  it('registers with the roles given', () =>
    given([])
      .when(register({ roles: ['auditor', 'admin', 'auditor'] }))
      .then([
        { ...registered, data: { ...registered.data, roles: ['auditor', 'admin'] } },
      ] as AccountEvent[]));
  it('makes the account active', () =>
    given([])
      .when(register())
      .thenState((account) => expect(account).toMatchObject({ registered: true, status: 'ACTIVE' })));
  it('refuses to register the same account twice', () =>
    given([registered]).when(register()).thenThrows(AccountAlreadyRegistered));
  it('refuses a username that is too short, upper-case or has spaces', () => {
    given([])
      .when(register({ username: 'al' }))
      .thenThrows(InvalidUsername);
    given([])
      .when(register({ username: 'Alice' }))
      .thenThrows(InvalidUsername);
    given([])
      .when(register({ username: 'al ice' }))
      .thenThrows(InvalidUsername);
  });
  it('refuses an empty password hash', () =>
    given([])
      .when(register({ passwordHash: '' }))
      .thenThrows(InvalidPasswordHash));
  it('refuses an unknown role', () =>
    given([])
      .when(register({ roles: ['root'] }))
      .thenThrows(UnknownRole));
  it('refuses an empty role list', () =>
    given([])
      .when(register({ roles: [] }))
      .thenThrows(NoRoles));
});

describe('roles', () => {
  it('grants a role', () =>
    given([registered])
      .when({ type: 'GrantRole', role: 'auditor', grantedBy: 'admin1', at })
      .then([{ type: 'RoleGranted', data: { accountId: 'a1', role: 'auditor', grantedBy: 'admin1', at } }]));
  it('changes nothing when the role is already held', () =>
    given([registered]).when({ type: 'GrantRole', role: 'trader', grantedBy: 'admin1', at }).thenNothing());
  it('refuses an unknown role', () =>
    given([registered])
      .when({ type: 'GrantRole', role: 'root' as never, grantedBy: 'admin1', at })
      .thenThrows(UnknownRole));
  it('revokes a role', () =>
    given([
      registered,
      { type: 'RoleGranted', data: { accountId: 'a1', role: 'admin', grantedBy: 'admin1', at } },
    ])
      .when({ type: 'RevokeRole', role: 'trader', revokedBy: 'admin1', at })
      .thenState((account) => expect(account.roles).toEqual(['admin'])));
  it('changes nothing when revoking a role not held', () =>
    given([registered]).when({ type: 'RevokeRole', role: 'admin', revokedBy: 'admin1', at }).thenNothing());
  it('refuses to revoke the last role', () =>
    given([registered])
      .when({ type: 'RevokeRole', role: 'trader', revokedBy: 'admin1', at })
      .thenThrows(LastRole));
  it('refuses a command on an account never registered', () =>
    given([])
      .when({ type: 'GrantRole', role: 'admin', grantedBy: 'admin1', at })
      .thenThrows(AccountNotFound));
});

describe('credentials and disabling', () => {
  it('changes the password hash', () =>
    given([registered])
      .when({ type: 'ChangePassword', passwordHash: 'new-hash', at })
      .then([{ type: 'PasswordChanged', data: { accountId: 'a1', passwordHash: 'new-hash', at } }]));
  it('changes nothing when the hash is the same', () =>
    given([registered]).when({ type: 'ChangePassword', passwordHash: hash, at }).thenNothing());
  it('refuses an empty new hash', () =>
    given([registered])
      .when({ type: 'ChangePassword', passwordHash: ' ', at })
      .thenThrows(InvalidPasswordHash));
  it('disables an account with a reason', () =>
    given([registered])
      .when({ type: 'DisableAccount', reason: 'fraud review', disabledBy: 'admin1', at })
      .then([disabled]));
  it('refuses to disable without a reason', () =>
    given([registered])
      .when({ type: 'DisableAccount', reason: '', disabledBy: 'admin1', at })
      .thenThrows(DisableReasonRequired));
  it('refuses any change to a disabled account', () => {
    given([registered, disabled])
      .when({ type: 'GrantRole', role: 'admin', grantedBy: 'admin1', at })
      .thenThrows(AccountDisabled);
    given([registered, disabled])
      .when({ type: 'ChangePassword', passwordHash: 'x', at })
      .thenThrows(AccountDisabled);
    given([registered, disabled])
      .when({ type: 'DisableAccount', reason: 'again', disabledBy: 'admin1', at })
      .thenThrows(AccountDisabled);
  });
});

describe('what an account may do', () => {
  const account = (events: AccountEvent[]): Account => replay(accountDecider, events);
  it('lets an active trader trade', () =>
    expect(() => assertMay(account([registered]), 'trader')).not.toThrow());
  it('stops an account without the role', () =>
    expect(() => assertMay(account([registered]), 'auditor')).toThrow(RoleRequired));
  it('stops a disabled account', () =>
    expect(() => assertMay(account([registered, disabled]), 'trader')).toThrow(AccountDisabled));
  it('stops an account that does not exist', () =>
    expect(() => assertMay(account([]), 'trader')).toThrow(AccountNotFound));
});

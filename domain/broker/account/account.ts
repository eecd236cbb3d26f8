import type { Decider } from '../../shared/decider.ts';
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
import { type AccountEvent, Role, type Role as RoleName } from './events.ts';
import { USERNAME } from './username.ts';

/** The `account-{accountId}` stream's state: identity, credentials and roles. */
export interface Account {
  registered: boolean;
  accountId: string;
  username: string;
  passwordHash: string;
  roles: RoleName[];
  status: 'ACTIVE' | 'DISABLED';
  registeredAt: string;
  /** When the password last changed (tokens issued before then no longer count), null if never. */
  passwordChangedAt: string | null;
  /**
   * How many times the password has changed: a token carries the count its login checked the
   * password against, and a later change revokes it, however close in time the two were.
   */
  passwordChanges: number;
  disabledReason: string | null;
}

export type AccountCommand =
  | {
      type: 'RegisterAccount';
      accountId: string;
      username: string;
      /** Hashed by the caller (the domain never sees a password). */
      passwordHash: string;
      /** `['trader']` when absent. */
      roles?: RoleName[];
      at: string;
    }
  | { type: 'GrantRole'; role: RoleName; grantedBy: string; at: string }
  | { type: 'RevokeRole'; role: RoleName; revokedBy: string; at: string }
  | { type: 'ChangePassword'; passwordHash: string; at: string }
  | { type: 'DisableAccount'; reason: string; disabledBy: string; at: string };

export const initialAccount = (): Account => ({
  registered: false,
  accountId: '',
  username: '',
  passwordHash: '',
  roles: [],
  status: 'ACTIVE',
  registeredAt: '',
  passwordChangedAt: null,
  passwordChanges: 0,
  disabledReason: null,
});

export function decide(command: AccountCommand, account: Account): AccountEvent[] {
  if (command.type === 'RegisterAccount') {
    if (account.registered) throw new AccountAlreadyRegistered(account.accountId);
    if (!USERNAME.test(command.username)) throw new InvalidUsername(command.username);
    if (command.passwordHash.trim() === '') throw new InvalidPasswordHash();
    const roles = [...new Set(command.roles ?? (['trader'] as RoleName[]))];
    if (roles.length === 0) throw new NoRoles();
    for (const role of roles) checkRole(role);
    return [
      {
        type: 'AccountRegistered',
        data: {
          accountId: command.accountId,
          username: command.username,
          passwordHash: command.passwordHash,
          roles,
          registeredAt: command.at,
        },
      },
    ];
  }
  if (!account.registered) throw new AccountNotFound();
  const { accountId } = account;
  if (account.status === 'DISABLED') throw new AccountDisabled(accountId);
  switch (command.type) {
    case 'GrantRole': {
      checkRole(command.role);
      if (account.roles.includes(command.role)) return [];
      return [
        {
          type: 'RoleGranted',
          data: { accountId, role: command.role, grantedBy: command.grantedBy, at: command.at },
        },
      ];
    }
    case 'RevokeRole': {
      checkRole(command.role);
      if (!account.roles.includes(command.role)) return [];
      if (account.roles.length === 1) throw new LastRole(command.role);
      return [
        {
          type: 'RoleRevoked',
          data: { accountId, role: command.role, revokedBy: command.revokedBy, at: command.at },
        },
      ];
    }
    case 'ChangePassword': {
      if (command.passwordHash.trim() === '') throw new InvalidPasswordHash();
      if (command.passwordHash === account.passwordHash) return [];
      return [
        { type: 'PasswordChanged', data: { accountId, passwordHash: command.passwordHash, at: command.at } },
      ];
    }
    case 'DisableAccount': {
      if (command.reason.trim() === '') throw new DisableReasonRequired();
      return [
        {
          type: 'AccountDisabled',
          data: { accountId, reason: command.reason, disabledBy: command.disabledBy, at: command.at },
        },
      ];
    }
  }
}

export function evolve(account: Account, event: AccountEvent): Account {
  switch (event.type) {
    case 'AccountRegistered': {
      const { accountId, username, passwordHash, roles, registeredAt } = event.data;
      return {
        ...initialAccount(),
        registered: true,
        accountId,
        username,
        passwordHash,
        roles,
        registeredAt,
      };
    }
    case 'RoleGranted':
      return { ...account, roles: [...account.roles, event.data.role] };
    case 'RoleRevoked':
      return { ...account, roles: account.roles.filter((role) => role !== event.data.role) };
    case 'PasswordChanged':
      return {
        ...account,
        passwordHash: event.data.passwordHash,
        passwordChangedAt: event.data.at,
        passwordChanges: account.passwordChanges + 1,
      };
    case 'AccountDisabled':
      return { ...account, status: 'DISABLED', disabledReason: event.data.reason };
  }
}

export const accountDecider: Decider<Account, AccountCommand, AccountEvent> = {
  initial: initialAccount,
  decide,
  evolve,
};

export const accountStreamId = (accountId: string): string => `account-${accountId}`;

/**
 * Guards an action by another aggregate (placing an order, moving cash): the account (`accountId`,
 * named in the rejection when it does not exist) must exist, be active and hold the role. Throws
 * the matching rejection.
 */
export function assertMay(account: Account, role: RoleName, accountId = account.accountId): void {
  if (!account.registered) throw new AccountNotFound(accountId || undefined);
  if (account.status === 'DISABLED') throw new AccountDisabled(account.accountId);
  if (!account.roles.includes(role)) throw new RoleRequired(account.accountId, role);
}

function checkRole(role: string): void {
  if (!Role.safeParse(role).success) throw new UnknownRole(role);
}

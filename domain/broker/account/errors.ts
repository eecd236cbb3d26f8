import { DomainError } from '../../shared/domain-error.ts';
import { USERNAME_RULE } from './username.ts';

export class AccountAlreadyRegistered extends DomainError {
  readonly reason = 'ACCOUNT_ALREADY_REGISTERED';
  constructor(readonly accountId: string) {
    super(`account ${accountId} is already registered`, { accountId });
  }
}

/** No account has the id: named when the caller knows it (an account's own stream does not). */
export class AccountNotFound extends DomainError {
  readonly reason = 'ACCOUNT_NOT_FOUND';
  constructor(readonly accountId?: string) {
    super(
      accountId ? `no account has the id ${accountId}` : 'no account was registered on this stream',
      accountId ? { accountId } : {},
    );
  }
}

export class AccountDisabled extends DomainError {
  readonly reason = 'ACCOUNT_DISABLED';
  constructor(readonly accountId: string) {
    super(`account ${accountId} is disabled`, { accountId });
  }
}

/** Usernames are 3 to 32 characters: lower-case letters, digits, dot, dash and underscore. */
export class InvalidUsername extends DomainError {
  readonly reason = 'INVALID_USERNAME';
  constructor(readonly username: string) {
    super(`a username is ${USERNAME_RULE}`, { username });
  }
}

/** The caller must hash the password; an empty hash would let anyone in. */
export class InvalidPasswordHash extends DomainError {
  readonly reason = 'INVALID_PASSWORD_HASH';
  constructor() {
    super('a password hash is required');
  }
}

export class UnknownRole extends DomainError {
  readonly reason = 'UNKNOWN_ROLE';
  constructor(readonly role: string) {
    super(`role must be trader, auditor or admin, got ${JSON.stringify(role)}`, { role });
  }
}

/** An account must keep at least one role, or nobody could tell what it may do. */
export class LastRole extends DomainError {
  readonly reason = 'LAST_ROLE';
  constructor(readonly role: string) {
    super(`cannot revoke ${role}: it is the account's only role`, { role });
  }
}

/** The account may not do this: it lacks the role. */
export class RoleRequired extends DomainError {
  readonly reason = 'ROLE_REQUIRED';
  constructor(
    readonly accountId: string,
    readonly role: string,
  ) {
    super(`account ${accountId} needs the ${role} role`, { accountId, role });
  }
}

export class DisableReasonRequired extends DomainError {
  readonly reason = 'DISABLE_REASON_REQUIRED';
  constructor() {
    super('disabling an account needs a reason');
  }
}

/** An account registered with an empty role list: it could do nothing at all. */
export class NoRoles extends DomainError {
  readonly reason = 'NO_ROLES';
  constructor() {
    super('an account needs at least one role');
  }
}

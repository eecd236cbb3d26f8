import { z } from 'zod';
import type { DomainEvent } from '../../shared/decider.ts';
import { defineEvent } from '../../shared/event-schemas.ts';
import { Id, Timestamp } from '../schemas.ts';

/** Events of the `account-{accountId}` stream. Passwords never appear: only the hash the caller computed. */

export const Role = z.enum(['trader', 'auditor', 'admin']);
export type Role = z.infer<typeof Role>;

export const AccountRegisteredData = z.strictObject({
  accountId: Id,
  username: z.string().min(3).max(32),
  passwordHash: z.string().min(1).max(1000),
  roles: z.array(Role).min(1),
  registeredAt: Timestamp,
});
export const RoleGrantedData = z.strictObject({ accountId: Id, role: Role, grantedBy: Id, at: Timestamp });
export const RoleRevokedData = z.strictObject({ accountId: Id, role: Role, revokedBy: Id, at: Timestamp });
export const PasswordChangedData = z.strictObject({
  accountId: Id,
  passwordHash: z.string().min(1).max(1000),
  at: Timestamp,
});
export const AccountDisabledData = z.strictObject({
  accountId: Id,
  reason: z.string().min(1).max(500),
  disabledBy: Id,
  at: Timestamp,
});

export type AccountRegistered = DomainEvent<'AccountRegistered', z.infer<typeof AccountRegisteredData>>;
export type RoleGranted = DomainEvent<'RoleGranted', z.infer<typeof RoleGrantedData>>;
export type RoleRevoked = DomainEvent<'RoleRevoked', z.infer<typeof RoleRevokedData>>;
export type PasswordChanged = DomainEvent<'PasswordChanged', z.infer<typeof PasswordChangedData>>;
export type AccountDisabled = DomainEvent<'AccountDisabled', z.infer<typeof AccountDisabledData>>;
export type AccountEvent = AccountRegistered | RoleGranted | RoleRevoked | PasswordChanged | AccountDisabled;

export const accountEvents = [
  defineEvent({ type: 'AccountRegistered', version: 1, schema: AccountRegisteredData }),
  defineEvent({ type: 'RoleGranted', version: 1, schema: RoleGrantedData }),
  defineEvent({ type: 'RoleRevoked', version: 1, schema: RoleRevokedData }),
  defineEvent({ type: 'PasswordChanged', version: 1, schema: PasswordChangedData }),
  defineEvent({ type: 'AccountDisabled', version: 1, schema: AccountDisabledData }),
] as const;

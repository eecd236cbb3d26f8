import { randomBytes } from 'node:crypto';
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Config, ConfigError } from './config.ts';
import { ensureDataFolder } from './data-lock.ts';

export interface Secrets {
  adminPassword: string;
  jwtSecret: string;
  /** True on the start that generated the admin password: the one time it is printed. */
  adminPasswordGenerated: boolean;
  /** Where a generated admin password is kept (also when it came from the environment: undefined). */
  adminPasswordFile?: string;
}

/**
 * The admin password and JWT signing key: from the environment when set, else generated once and
 * kept in the data folder (mode 0600) so that restarts keep them. Nothing secret is ever committed.
 */
export async function loadSecrets(config: Config): Promise<Secrets> {
  await ensureDataFolder(config.dataDir);
  const jwt = config.jwtSecret
    ? { value: config.jwtSecret, generated: false }
    : await readOrCreate(join(config.dataDir, 'jwt-secret'), () => randomBytes(48).toString('base64url'));
  const adminFile = join(config.dataDir, 'admin-password');
  const admin = config.adminPassword
    ? { value: config.adminPassword, generated: false }
    : await readOrCreate(adminFile, () => randomBytes(12).toString('base64url'));
  // An edited file follows the variable's rule: a password the login would refuse locks the admin out.
  if (!admin.generated && (admin.value.length < 8 || admin.value.length > 200))
    throw new ConfigError(
      `${adminFile}: the admin password in it must be 8 to 200 characters (it has ${admin.value.length})`,
    );
  return {
    adminPassword: admin.value,
    jwtSecret: jwt.value,
    adminPasswordGenerated: admin.generated,
    adminPasswordFile: config.adminPassword ? undefined : adminFile,
  };
}

/**
 * With TRADECORE_ADMIN_PASSWORD set, the admin's password is that one (`ensureAdmin` changes it): a
 * password an earlier start generated into the data folder no longer works, so its file goes rather
 * than mislead whoever reads it. Call it once the password has been changed. Returns the removed file.
 */
export async function retireGeneratedAdminPassword(config: Config): Promise<string | undefined> {
  if (!config.adminPassword) return undefined;
  const file = join(config.dataDir, 'admin-password');
  try {
    await unlink(file);
    return file;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Removes the admin password this start generated, when the admin account already had another
 * (`ensureAdmin` kept that one): the file would name a password that does not work.
 */
export async function forgetGeneratedAdminPassword(secrets: Secrets): Promise<void> {
  if (secrets.adminPasswordGenerated && secrets.adminPasswordFile)
    await unlink(secrets.adminPasswordFile).catch(() => {});
}

async function readOrCreate(
  path: string,
  generate: () => string,
): Promise<{ value: string; generated: boolean }> {
  try {
    const value = (await readFile(path, 'utf8')).trim();
    if (value) return { value, generated: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const value = generate();
  // `wx`: two processes starting at once cannot overwrite each other's secret.
  try {
    await writeFile(path, `${value}\n`, { mode: 0o600, flag: 'wx' });
    return { value, generated: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return { value: (await readFile(path, 'utf8')).trim(), generated: false };
  }
}

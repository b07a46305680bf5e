/**
 * The realm's account authenticators, built from the configuration. Tollgate's own secrets
 * (device, API and refresh tokens) are recognised by their prefix before any of these is asked;
 * what is left goes through this chain in a fixed order, and the first authenticator that does not
 * pass decides:
 *
 *   AWS instance identity (its fixed user name) -> OIDC (a JWT as password) -> static users (a
 *   configured user name) -> the authentication hook (everything else).
 *
 * The order goes from the most specific claim on the credentials to the least, so that no
 * authenticator sees credentials meant for another one.
 */
import { dirname, resolve } from 'node:path';
import type { LoadedConfig } from '../../shared/config.js';
import type { AclRuleConfig } from '../../shared/config-accounts.js';
import type { Logger } from '../../shared/log.js';
import type { ReplayMemory } from '../../shared/store/shared-state.js';
import type { AccountAuthenticator, AuthorizationHook } from './types.js';

export interface AccountSettings {
  authenticators: AccountAuthenticator[];
  acl: AclRuleConfig[];
  authorizationHook?: AuthorizationHook;
}

/**
 * The account authenticators, ACL and hooks the configuration turns on (none by default). Each
 * authenticator's module (and its libraries: pkijs, openid-client and jose, bcryptjs and argon2)
 * is loaded only when the configuration turns it on.
 */
export async function accountSettings(
  config: Pick<LoadedConfig, 'authsvc'> & { source?: string | null },
  log?: Logger,
  shared: { replay?: ReplayMemory } = {},
): Promise<AccountSettings> {
  const { authsvc } = config;
  // Relative certificate paths in the configuration are relative to the file that names them.
  const baseDir = config.source ? dirname(resolve(config.source)) : process.cwd();
  const logged = log ? { log } : {};
  const authenticators: AccountAuthenticator[] = [];
  if (authsvc.awsIdentity) {
    const { createAwsIdentityAuthenticator } = await import('./aws-identity.js');
    authenticators.push(createAwsIdentityAuthenticator(authsvc.awsIdentity, { baseDir, ...logged, ...(shared.replay ? { replay: shared.replay } : {}) }));
  }
  if (authsvc.oidc) authenticators.push((await import('./oidc.js')).createOidcAuthenticator(authsvc.oidc, logged));
  const hook = authsvc.hooks.authentication;
  if (Object.keys(authsvc.users).length > 0) {
    const { createStaticUserAuthenticator } = await import('./static-users.js');
    authenticators.push(createStaticUserAuthenticator(authsvc.users, { refuseUnknown: hook === undefined }));
  }
  if (hook) authenticators.push((await import('./hook.js')).createAuthenticationHook(hook, logged));
  const authorization = authsvc.hooks.authorization;
  return {
    authenticators,
    acl: authsvc.acl,
    ...(authorization ? { authorizationHook: (await import('./hook.js')).createAuthorizationHook(authorization, logged) } : {}),
  };
}

export async function closeAccountSettings(settings: AccountSettings): Promise<void> {
  await Promise.allSettled([
    ...settings.authenticators.map((a) => a.close?.()),
    settings.authorizationHook?.close?.(),
  ]);
}

import type { KeyHint } from '../../authsvc/jwt.js';
import { ok, warning, type Finding } from './findings.js';
import type { RegistryTokenSection } from './registry-file.js';

/**
 * Whether the registry can find the key the way the realm's tokens name it (authsvc.tokenKeyHint):
 *
 * - `kid`: registry 2.8 looks the kid up among its root bundle's keys (libtrust key id); registry 3.x
 *   only in its `jwks` file. A configuration without `jwks` therefore serves 2.8 only.
 * - `x5c`: both verify the certificate chain against the root bundle; `jwks` is not consulted.
 *
 * (That the bundle and the JWKS hold the active key is trust.ts's part.)
 */
export function checkKeyHint(section: RegistryTokenSection, hint: KeyHint): Finding[] {
  if (hint === 'x5c') {
    return [ok('key_hint', 'tokens carry their signing certificate (x5c): the registry verifies it against auth.token.rootcertbundle')];
  }
  if (!section.jwks) {
    return [
      warning(
        'key_hint_jwks_missing',
        'tokens name their key by kid alone: registry 2.8 finds it in auth.token.rootcertbundle, but registry 3.x only through auth.token.jwks, which this configuration does not set',
        'for registry 3.x, use the auth-3.yml section Tollgate writes (it sets jwks and signingalgorithms), or set authsvc.tokenKeyHint: x5c',
      ),
    ];
  }
  return [ok('key_hint', `tokens name their key by kid: registry 2.8 finds it in the root bundle, 3.x in ${section.jwks}`)];
}

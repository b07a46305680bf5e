import { realmUrl, type Config } from '../../shared/config.js';
import { error, ok, type Finding } from './findings.js';
import type { RegistryTokenSection } from './registry-file.js';

/**
 * realm, service and issuer must agree between the registry and Tollgate: the registry sends
 * clients to `realm`, and refuses a token whose `aud` is not its `service` or whose `iss` is not its
 * `issuer` (registry log: "token intended for another audience" / "token from untrusted issuer").
 */
export function checkSettings(section: RegistryTokenSection, config: Config, where: string): Finding[] {
  const expected = { realm: realmUrl(config), service: config.authsvc.service, issuer: config.authsvc.issuer };
  const consequence = {
    realm: 'clients are sent to a realm that is not Tollgate',
    service: 'the registry refuses every token as "intended for another audience"',
    issuer: 'the registry refuses every token as coming "from untrusted issuer"',
  };
  const tollgateKey = { realm: 'authsvc.publicUrl', service: 'authsvc.service', issuer: 'authsvc.issuer' };
  const findings: Finding[] = [];
  for (const field of ['realm', 'service', 'issuer'] as const) {
    const actual = section[field];
    if (actual === undefined) {
      findings.push(error(`${field}_missing`, `${where} names no ${field}`, `set auth.token.${field}: ${expected[field]}`));
    } else if (actual !== expected[field]) {
      findings.push(
        error(
          `${field}_mismatch`,
          `${where} has ${field} "${actual}" but Tollgate's is "${expected[field]}": ${consequence[field]}`,
          `set auth.token.${field}: ${expected[field]} in the registry, or ${tollgateKey[field]}: ${actual} in Tollgate's configuration`,
        ),
      );
    } else {
      findings.push(ok(field, `${where}: ${field} ${actual} agrees`));
    }
  }
  return findings;
}

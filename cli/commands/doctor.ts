import type { PublishedSettings } from '../../admin/service.js';
import { loadConfig, type LoadedConfig } from '../../shared/config.js';
import { requiredString, stringOption } from '../args.js';
import type { Command } from '../command.js';
import type { Finding } from '../doctor/findings.js';
import { runDoctor } from '../doctor/run.js';

/**
 * A configuration that says what the running system published: its realm URL, service, issuer and
 * gateway URL (what the doctor compares a registry with and probes).
 */
function configPublishedAs(p: PublishedSettings): LoadedConfig {
  const base = loadConfig({ env: {} });
  return {
    ...base,
    gateway: { ...base.gateway, publicUrl: p.gateway },
    authsvc: { ...base.authsvc, publicUrl: p.realm, service: p.service, issuer: p.issuer, tokenKeyHint: p.tokenKeyHint },
  };
}

const MARK: Record<Finding['severity'], string> = { ok: 'ok  ', warning: 'WARN', error: 'FAIL' };

function render(findings: readonly Finding[]): string {
  return findings
    .map((f) => `${MARK[f.severity]} ${f.id}: ${f.message}${f.fix ? `\n     fix: ${f.fix}` : ''}`)
    .join('\n');
}

export const doctorCommands: Command[] = [
  {
    name: ['doctor'],
    args: [],
    usage: '--registry-config <file> [--registry-url <url>] [--registry-log <file>]',
    summary: 'check that a registry, the realm and the gateway agree with this configuration',
    details:
      'Compares the registry\'s auth.token (realm, service, issuer, rootcertbundle, jwks, signingalgorithms)\nwith Tollgate\'s configuration and active signing key, asks the realm, the gateway and (with\n--registry-url) the running registry, and (with --registry-log) explains the token refusals the\nregistry logged. Exits 1 when anything is wrong; each finding names its fix.',
    options: {
      'registry-config': { type: 'string', value: 'file', help: "the registry's configuration file (or just its auth: section)" },
      'registry-url': { type: 'string', value: 'url', help: 'the running registry, e.g. http://127.0.0.1:5000' },
      'registry-log': { type: 'string', value: 'file', help: "the registry's log, to explain the tokens it refused" },
    },
    mode: 'any',
    async run(ctx, input) {
      const registryUrl = stringOption(input, 'registry-url');
      const registryLogFile = stringOption(input, 'registry-log');
      // Locally the configuration is at hand; remotely the admin API publishes the settings that matter.
      const published = await ctx.client().registrySettings();
      const config = ctx.remote ? configPublishedAs(published) : ctx.config();
      const findings = await runDoctor({
        ...(registryLogFile !== undefined ? { registryLogFile } : {}),
        config,
        keys: published.keys.map((k) => ({
          kid: k.kid,
          alg: k.alg,
          status: k.status,
          certificatePem: k.certificate,
          keyRef: '',
          createdAt: Date.parse(k.createdAt ?? '') || 0,
          activatedAt: k.activatedAt === null ? null : Date.parse(k.activatedAt),
        })),
        registryConfigFile: requiredString(input, 'registry-config'),
        ...(registryUrl !== undefined ? { registryUrl } : {}),
      });
      ctx.print(findings, () => render(findings));
      return findings.some((f) => f.severity === 'error') ? 1 : 0;
    },
  },
];

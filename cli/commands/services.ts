import { writeRegistryConfig, type WrittenRegistryConfig } from '../../authsvc/registry-config.js';
import { adminUrl, gatewayUrl, realmUrl } from '../../shared/config.js';
import { storeLocation } from '../../shared/runtime.js';
import { describeStore } from '../../shared/store/index.js';
import { stringOption } from '../args.js';
import type { Command } from '../command.js';
import { prepareDevelopment } from '../development.js';
import { fields } from '../format.js';
import { registryDir } from '../registry-files.js';
import { runService } from '../serve.js';
import { up } from '../up.js';

function registrySummary(registry: WrittenRegistryConfig): [string, string][] {
  return [
    ['root bundle', registry.paths.rootBundle],
    ['JWKS', registry.paths.jwks],
    ['registry 2.8 auth', registry.paths.auth28],
    ['registry 3.x auth', registry.paths.auth3],
  ];
}

export const serviceCommands: Command[] = [
  {
    name: ['up'],
    args: [],
    usage: '',
    summary: 'development all-in-one: set up, then run the gateway (with the admin API) and the realm until Ctrl-C',
    details: 'Generates a development PKI and a demo factory on first start (see tollgate init), then runs\nthe gateway, the admin API and the realm in this one process (what tollgate serve gateway and serve authsvc run).',
    mode: 'local',
    run: up,
  },
  {
    name: ['init'],
    args: [],
    usage: '',
    summary: 'create the development PKI, a token-signing key, a demo factory and the registry files (if missing)',
    mode: 'local',
    async run(ctx) {
      const { config, tls, registry } = await prepareDevelopment(ctx);
      const result = {
        database: config.store.type === 'sqlite' ? config.databasePath : describeStore(storeLocation(config)),
        pkiDir: config.pkiDir,
        gatewayCa: tls.caFile,
        registry: registry.paths,
        urls: { gateway: gatewayUrl(config), admin: adminUrl(config), realm: realmUrl(config) },
      };
      ctx.print(result, () =>
        fields([
          ['database', result.database],
          ['PKI directory', result.pkiDir],
          ['gateway CA', result.gatewayCa],
          ...registrySummary(registry),
        ]),
      );
    },
  },
  {
    name: ['serve', 'gateway'],
    args: [],
    usage: '',
    summary: 'run the device gateway (mutual TLS) and the admin API (HTTP, separate listener)',
    mode: 'local',
    run: (ctx) => runService(ctx.config(), 'gateway'),
  },
  {
    name: ['serve', 'authsvc'],
    args: [],
    usage: '',
    summary: 'run the registry token realm',
    mode: 'local',
    run: (ctx) => runService(ctx.config(), 'authsvc'),
  },
  {
    name: ['registry-config'],
    args: [],
    usage: '[--out <dir>] [--registry-path <dir>]',
    summary: 'write what a registry needs to trust the realm: root bundle, JWKS, auth.token snippets for 2.8 and 3.x',
    details: 'Run it again after adding or retiring a signing key, then restart the registry: it reads these files at start-up only.',
    options: {
      out: { type: 'string', value: 'dir', help: 'where to write (default: <pkiDir>/registry)' },
      'registry-path': { type: 'string', value: 'dir', help: 'the same directory as the registry sees it, for the snippets (default: --out)' },
    },
    mode: 'any',
    async run(ctx, input) {
      // The keys and the realm's settings from wherever the CLI works: the local store, or remotely
      // the admin API (operator token); the files are written here.
      const published = await ctx.client().registrySettings();
      const out = stringOption(input, 'out') ?? registryDir(ctx.config());
      const registryPath = stringOption(input, 'registry-path');
      const registry = await writeRegistryConfig(out, {
        realm: published.realm,
        service: published.service,
        issuer: published.issuer,
        keys: published.keys.map((k) => ({ kid: k.kid, alg: k.alg, status: k.status, certificatePem: k.certificate })),
        ...(registryPath !== undefined ? { directory: registryPath } : {}),
      });
      ctx.print({ paths: registry.paths, kids: registry.kids, auth28: registry.auth28Yaml, auth3: registry.auth3Yaml }, () =>
        [
          fields(registrySummary(registry)),
          '',
          published.tokenKeyHint === 'kid'
            ? '# Tokens name their key by kid (authsvc.tokenKeyHint): 2.8 finds it in the bundle, 3.x only through jwks.'
            : '# Tokens carry their certificate in x5c (authsvc.tokenKeyHint): both versions check it against the bundle.',
          '# registry 3.x (config.yml):',
          registry.auth3Yaml.trimEnd(),
          '',
          '# registry 2.8 (config.yml):',
          registry.auth28Yaml.trimEnd(),
        ].join('\n'),
      );
    },
  },
];

import { localAdminClient, remoteAdminClient, type AdminClient } from '../admin/client.js';
import { AdminService, publishedSettings } from '../admin/service.js';
import type { Actor, AuthorityDeps } from '../shared/authority/index.js';
import { gatewayUrl, loadConfig, type LoadedConfig } from '../shared/config.js';
import { gatewayCaForDevices } from '../shared/gateway-tls.js';
import { openAuthority } from '../shared/runtime.js';
import type { SqlStore } from '../shared/store/index.js';
import { TollgateError, isTollgateError } from '../shared/errors.js';
import { usageError } from './failure.js';

/** Where output goes; injectable so the CLI can run in-process. */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface ContextOptions {
  io: Io;
  env: NodeJS.ProcessEnv;
  json: boolean;
  /** --config, else TOLLGATE_CONFIG, else null. */
  configFile: string | null;
  /** --url, else TOLLGATE_URL, else null (local mode). */
  url: string | null;
}

/** The operator, as recorded in the audit trail of everything the local CLI does. */
export const OPERATOR: Actor = { actor: 'operator', source: null };

/**
 * What a command runs with: output, the configuration, and the admin client, each set up on
 * first use so that a command that needs none of them (help, a usage error) touches nothing.
 */
export class Context {
  readonly io: Io;
  readonly env: NodeJS.ProcessEnv;
  readonly json: boolean;
  readonly configFile: string | null;
  readonly url: string | null;
  private loaded: LoadedConfig | undefined;
  private opened: (AuthorityDeps & { store: SqlStore }) | undefined;
  private adminClient: AdminClient | undefined;

  constructor(options: ContextOptions) {
    this.io = options.io;
    this.env = options.env;
    this.json = options.json;
    this.configFile = options.configFile;
    this.url = options.url;
  }

  get remote(): boolean {
    return this.url !== null;
  }

  config(): LoadedConfig {
    this.loaded ??= loadConfig({ file: this.configFile, env: this.env });
    return this.loaded;
  }

  /**
   * The store and key files, as the operator: local mode only. The database must exist unless
   * `create` (tollgate init and up make it): a command run from another directory without
   * --config must say so, not act on a new empty store it leaves behind.
   */
  authority(options: { create?: boolean } = {}): AuthorityDeps & { store: SqlStore } {
    if (this.opened === undefined) {
      const config = this.config();
      try {
        this.opened = openAuthority(config, Date.now, { mustExist: options.create !== true });
      } catch (e) {
        if (!(isTollgateError(e) && e.code === 'store_missing')) throw e;
        throw new TollgateError(
          'not_found',
          'store_missing',
          `${e.message} (dataDir ${config.dataDir}, from ${config.source ?? 'the built-in default, relative to the current directory'}): run tollgate where the Tollgate data is, give its configuration with --config or TOLLGATE_CONFIG, or create a store with tollgate init`,
        );
      }
    }
    return this.opened;
  }

  client(): AdminClient {
    this.adminClient ??= this.remote ? this.remoteClient() : this.localClient();
    return this.adminClient;
  }

  private remoteClient(): AdminClient {
    const token = this.env.TOLLGATE_TOKEN;
    if (!token) throw usageError('token_missing', `remote mode (${this.url}) needs an admin API token in the environment variable TOLLGATE_TOKEN`);
    return remoteAdminClient({ url: this.url!, token });
  }

  private localClient(): AdminClient {
    const config = this.config();
    return localAdminClient({
      service: new AdminService(this.authority(), publishedSettings(config)),
      principal: { kind: 'operator', source: null },
      enrollment: async () => ({ gatewayCa: await gatewayCaForDevices(config, this.authority().keys), gateway: gatewayUrl(config) }),
    });
  }

  /** `--config <file>` to hand to child processes, so they read what this process read. */
  configArgs(): string[] {
    return this.configFile ? ['--config', this.configFile] : [];
  }

  /** Prints `value` as JSON with --json, else what `human` renders. */
  print(value: unknown, human: () => string): void {
    if (this.json) {
      this.io.stdout(`${JSON.stringify(value, null, 2)}\n`);
      return;
    }
    const text = human();
    if (text.length > 0) this.io.stdout(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** A warning on standard error: `tollgate: warning: ...`, or with --json one JSON line. */
  warn(code: string, message: string): void {
    this.io.stderr(this.json ? `${JSON.stringify({ warning: { code, message } })}\n` : `tollgate: warning: ${message} (${code})\n`);
  }

  async close(): Promise<void> {
    this.adminClient?.close();
    const opened = this.opened;
    this.opened = undefined;
    await opened?.store.close();
  }
}

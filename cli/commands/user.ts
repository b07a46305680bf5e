import { hashPassword, MAX_PASSWORD_BYTES, type PasswordAlgorithm } from '../../authsvc/authn/static-users.js';
import { stringOption } from '../args.js';
import type { Command } from '../command.js';
import { usageError } from '../failure.js';

/** More than any password line; reading stops here so a runaway pipe cannot fill memory. */
const MAX_STDIN_BYTES = 4096;

async function readPasswordFromStdin(): Promise<string> {
  if (process.stdin.isTTY) {
    // A terminal would echo the password; a pipe keeps it out of the screen and the shell history.
    throw usageError('password_stdin_required', "pipe the password on standard input, e.g. printf '%s' \"$PASSWORD\" | tollgate user hash");
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buf.length;
    if (size > MAX_STDIN_BYTES) throw usageError('password_too_long', `the password is longer than ${MAX_PASSWORD_BYTES} bytes`);
    chunks.push(buf);
  }
  // One trailing newline (echo, a here-string) is not part of the password.
  const text = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (text.length === 0) throw usageError('password_empty', 'no password on standard input');
  if (/[\r\n]/.test(text)) throw usageError('password_multiline', 'the password must be a single line');
  if (Buffer.byteLength(text, 'utf8') > MAX_PASSWORD_BYTES) {
    throw usageError('password_too_long', `the password is longer than ${MAX_PASSWORD_BYTES} bytes (bcrypt would silently ignore the rest)`);
  }
  return text;
}

export const userCommands: Command[] = [
  {
    name: ['user', 'hash'],
    args: [],
    usage: '[--algorithm argon2id|bcrypt]',
    summary: 'hash a password (read from standard input) for authsvc.users in the configuration',
    details:
      'Prints a hash for the `password` key of a static user. The clear-text password never goes in the configuration, on the command line or in a log.',
    options: {
      algorithm: { type: 'string', value: 'name', choices: ['argon2id', 'bcrypt'], help: 'argon2id (default) or bcrypt' },
    },
    mode: 'standalone',
    async run(ctx, input) {
      const algorithm = stringOption(input, 'algorithm') ?? 'argon2id';
      if (algorithm !== 'argon2id' && algorithm !== 'bcrypt') {
        throw usageError('algorithm_invalid', `--algorithm must be argon2id or bcrypt, not "${algorithm.slice(0, 40)}"`);
      }
      const hash = await hashPassword(await readPasswordFromStdin(), algorithm as PasswordAlgorithm);
      ctx.print({ algorithm, hash }, () => `${hash}\n`);
    },
  },
];

import { invalidInput } from '../errors.js';
import { DerError, readTlv, TAG } from './der.js';

/**
 * PEM (RFC 7468) reading and writing.
 *
 * Reading is strict about the blocks themselves and tolerant about what lies between them:
 * explanatory text (as `openssl x509 -text` or a bundle's comments leave) is skipped, but anything
 * that looks like a damaged block (a stray BEGIN/END line, a bare base64 blob, a truncated body) is
 * refused, because silently dropping half a CA bundle is worse than an error.
 */

/** Every PEM text Tollgate accepts (one certificate, a CSR, a CA bundle) fits well within this. */
export const MAX_PEM_BYTES = 64 * 1024;

export interface PemBlock {
  label: string;
  der: Buffer;
  /** Normalised: LF line endings, 64-column body, trailing newline. */
  pem: string;
}

const BEGIN = /^-----BEGIN ([A-Z0-9]+(?: [A-Z0-9]+)*)-----$/;
const END = /^-----END ([A-Z0-9]+(?: [A-Z0-9]+)*)-----$/;
const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;
/** A line outside any block that is nothing but a long base64 run is a block that lost its armour. */
const LOOSE_BASE64 = /^[A-Za-z0-9+/]{40,}={0,2}$/;
/** Anything resembling a boundary line, including damaged ones (missing or extra dashes). */
const BOUNDARY_LIKE = /-{2,} ?(?:BEGIN|END)\b/;

export function assertPemSize(text: string, what = 'PEM input'): void {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_PEM_BYTES) {
    throw invalidInput('pem_too_large', `${what} is ${bytes} bytes; at most ${MAX_PEM_BYTES} bytes (64 KiB) are accepted`);
  }
}

function fail(message: string): never {
  throw invalidInput('pem_invalid', message);
}

/** Every block of `text`, in order; `labels` restricts which labels are acceptable. */
export function readPemBlocks(text: unknown, labels?: readonly string[]): PemBlock[] {
  const expected = labels && labels.length > 0 ? labels.map((l) => `-----BEGIN ${l}-----`).join(' or ') : 'a -----BEGIN ...----- line';
  if (typeof text !== 'string') fail(`PEM input must be text; expected ${expected}`);
  assertPemSize(text);
  const blocks: PemBlock[] = [];
  const lines = text.split(/\r\n|\r|\n/);
  let open: { label: string; line: number; body: string[] } | undefined;

  for (const [index, raw] of lines.entries()) {
    const lineNo = index + 1;
    const line = raw.trim();
    if (!open) {
      const begin = BEGIN.exec(line);
      if (begin) {
        open = { label: begin[1] as string, line: lineNo, body: [] };
      } else if (BOUNDARY_LIKE.test(line)) {
        fail(`line ${lineNo}: malformed or unmatched PEM boundary line; expected ${expected} ... -----END ...----- pairs`);
      } else if (LOOSE_BASE64.test(line)) {
        fail(`line ${lineNo}: base64 data outside a PEM block (is a -----BEGIN line missing?)`);
      }
      continue;
    }
    const end = END.exec(line);
    if (end) {
      if (end[1] !== open.label) fail(`line ${lineNo}: "-----END ${end[1]}-----" closes a block opened as "${open.label}" on line ${open.line}`);
      blocks.push(finishBlock(open.label, open.body.join(''), open.line, labels));
      open = undefined;
    } else if (BOUNDARY_LIKE.test(line) || line.startsWith('-')) {
      fail(`line ${lineNo}: unexpected boundary inside the "${open.label}" block opened on line ${open.line} (missing -----END ${open.label}-----?)`);
    } else if (line.includes(':')) {
      // RFC 1421 headers only occur in legacy encrypted keys, which Tollgate never accepts.
      fail(`line ${lineNo}: PEM headers (such as Proc-Type) are not supported; expected only base64 inside the "${open.label}" block`);
    } else if (!BASE64_LINE.test(line)) {
      fail(`line ${lineNo}: invalid base64 in the "${open.label}" block opened on line ${open.line}`);
    } else {
      open.body.push(line);
    }
  }

  if (open) fail(`the "${open.label}" block opened on line ${open.line} has no -----END ${open.label}----- line (truncated input?)`);
  if (blocks.length === 0) fail(`no PEM block found; expected ${expected}`);
  return blocks;
}

function finishBlock(label: string, body: string, line: number, labels?: readonly string[]): PemBlock {
  if (labels && labels.length > 0 && !labels.includes(label)) {
    fail(`the block on line ${line} is "${label}"; expected ${labels.map((l) => `"${l}"`).join(' or ')}`);
  }
  // Padding may only end the body; a '=' in the middle means two bodies were glued together.
  if (body.length === 0 || body.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(body)) {
    fail(`the "${label}" block on line ${line} is not valid base64 (truncated or corrupted)`);
  }
  const der = Buffer.from(body, 'base64');
  try {
    const tlv = readTlv(der, 0);
    if (tlv.tag !== TAG.SEQUENCE || tlv.end !== der.length) throw new DerError('not a single DER SEQUENCE');
  } catch {
    fail(`the "${label}" block on line ${line} does not hold a single well-formed DER structure (truncated or corrupted)`);
  }
  return { label, der, pem: derToPem(der, label) };
}

/**
 * Every well-formed block of a bundle, normalised. With `label`, every block must carry it: a CA
 * bundle that also holds a private key was the wrong file, and is refused rather than filtered.
 */
export function splitPemBundle(text: string, label?: 'CERTIFICATE'): string[] {
  return readPemBlocks(text, label ? [label] : undefined).map((b) => b.pem);
}

export function derToPem(der: Uint8Array, label: string): string {
  if (!/^[A-Z0-9]+(?: [A-Z0-9]+)*$/.test(label)) throw new RangeError(`invalid PEM label "${label}"`);
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

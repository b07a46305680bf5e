import { invalidInput } from '../shared/errors.js';

/**
 * Opaque page cursors: clients pass back what `next` said and never build one. A cursor names the
 * list it belongs to, so one list's cursor is refused by another instead of silently misread.
 */

const MAX_CURSOR_LENGTH = 256;

export function encodeCursor(list: string, key: string | number): string {
  return Buffer.from(JSON.stringify([list, key]), 'utf8').toString('base64url');
}

/** The key a cursor of `list` carries, or invalid_input `cursor_invalid`. */
export function decodeCursor(list: string, cursor: string): string {
  const refuse = () => invalidInput('cursor_invalid', 'cursor must be the `next` value of a previous page of this list');
  if (cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw refuse();
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw refuse();
  }
  if (!Array.isArray(decoded) || decoded.length !== 2 || decoded[0] !== list) throw refuse();
  const key: unknown = decoded[1];
  if ((typeof key !== 'string' || key.length === 0 || key.length > 128) && (typeof key !== 'number' || !Number.isSafeInteger(key))) throw refuse();
  return String(key);
}

/**
 * A page from `rows`, fetched with one row more than `limit`: that extra row only tells that
 * another page follows, whose cursor continues after the last row shown.
 */
export function pageOf<R, T>(rows: R[], limit: number, list: string, keyOf: (row: R) => string | number, present: (row: R) => T) {
  const shown = rows.slice(0, limit);
  const last = shown[shown.length - 1];
  return { items: shown.map(present), next: rows.length > limit && last !== undefined ? encodeCursor(list, keyOf(last)) : null };
}

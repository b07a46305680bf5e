import { invalidInput } from '../errors.js';
import { x509 } from './peculiar.js';

/** Subject names of the certificates and CSRs Tollgate creates. */

export interface SubjectFields {
  commonName: string;
  organizationalUnit?: string;
  organization?: string;
}

/** RFC 5280 upper bounds (ub-common-name, ub-organizational-unit-name, ub-organization-name). */
const MAX_LENGTH = 64;

function check(value: unknown, field: string, required: boolean): string | undefined {
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || value.length === 0) throw invalidInput('subject_invalid', `subject ${field} must be a non-empty string`);
  if ([...value].length > MAX_LENGTH) {
    throw invalidInput('subject_invalid', `subject ${field} is ${[...value].length} characters; X.509 allows at most ${MAX_LENGTH}`);
  }
  if (/[\u0000-\u001f\u007f]/.test(value)) throw invalidInput('subject_invalid', `subject ${field} must not contain control characters`);
  return value;
}

/**
 * The X.501 Name for `subject`, most significant attribute first (O, OU, CN). Values are given as
 * explicit UTF8Strings: the library's plain-string form would parse RFC 4514 escapes and quotes
 * inside the value and silently change names such as `Factory "A"+B`.
 */
export function subjectName(subject: SubjectFields): InstanceType<typeof x509.Name> {
  if (typeof subject !== 'object' || subject === null) throw invalidInput('subject_invalid', 'subject must be an object with a commonName');
  const cn = check(subject.commonName, 'commonName', true) as string;
  const ou = check(subject.organizationalUnit, 'organizationalUnit', false);
  const o = check(subject.organization, 'organization', false);
  const rdns: Array<Record<string, Array<{ utf8String: string }>>> = [];
  if (o !== undefined) rdns.push({ O: [{ utf8String: o }] });
  if (ou !== undefined) rdns.push({ OU: [{ utf8String: ou }] });
  rdns.push({ CN: [{ utf8String: cn }] });
  return new x509.Name(rdns);
}

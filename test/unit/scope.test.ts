import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTollgateError, TollgateError } from '../../shared/errors.js';
import {
  ACTION_ORDER,
  formatScope,
  isValidRepositoryName,
  MAX_SCOPE_BYTES,
  MAX_SCOPE_ENTRIES,
  parseScopeEntry,
  parseScopeParams,
  type Action,
  type ResourceScope,
} from '../../authsvc/scope.js';

const repo = (name: string, actions: Action[], cls?: string): ResourceScope =>
  cls === undefined ? { type: 'repository', name, actions } : { type: 'repository', class: cls, name, actions };
const catalog: ResourceScope = { type: 'registry', name: 'catalog', actions: ['*'] };

describe('parseScopeParams examples', () => {
  const cases: Array<[string, string[], ResourceScope[]]> = [
    ['absent (docker login)', [], []],
    ['empty value', [''], []],
    ['only spaces', ['   '], []],
    ['single pull', ['repository:acme/app:pull'], [repo('acme/app', ['pull'])]],
    ['pull,push', ['repository:acme/app:pull,push'], [repo('acme/app', ['pull', 'push'])]],
    ['actions sorted and de-duplicated', ['repository:acme/app:*,delete,push,pull,push'], [repo('acme/app', ['pull', 'push', 'delete', '*'])]],
    [
      'repeated (GET)',
      ['repository:acme/a:pull', 'repository:acme/b:push'],
      [repo('acme/a', ['pull']), repo('acme/b', ['push'])],
    ],
    [
      'space-separated (POST)',
      ['repository:acme/a:pull repository:acme/b:push'],
      [repo('acme/a', ['pull']), repo('acme/b', ['push'])],
    ],
    [
      'mixed, with stray spaces',
      [' repository:acme/a:pull  repository:acme/b:push ', 'registry:catalog:*'],
      [repo('acme/a', ['pull']), repo('acme/b', ['push']), catalog],
    ],
    ['resource class', ['repository(plugin):a/b:pull'], [repo('a/b', ['pull'], 'plugin')]],
    ['host:port name', ['repository:127.0.0.1:5000/acme/app:pull'], [repo('127.0.0.1:5000/acme/app', ['pull'])]],
    ['localhost:port name', ['repository:localhost:5000/app:push'], [repo('localhost:5000/app', ['push'])]],
    ['catalog', ['registry:catalog:*'], [catalog]],
    ['catalog keeps only *', ['registry:catalog:pull,*'], [catalog]],
    ['catalog without * dropped', ['registry:catalog:pull'], []],
    ['other registry resource dropped', ['registry:config:*'], []],
    [
      'duplicates merged, first position kept',
      ['repository:acme/a:pull repository:acme/b:pull', 'repository:acme/a:delete,push'],
      [repo('acme/a', ['pull', 'push', 'delete']), repo('acme/b', ['pull'])],
    ],
    [
      'class merged from the first entry that has one',
      ['repository:a/b:pull repository(plugin):a/b:push'],
      [repo('a/b', ['pull', 'push'], 'plugin')],
    ],
    ['unknown action dropped', ['repository:acme/a:pull,fly'], [repo('acme/a', ['pull'])]],
    ['only unknown actions: entry dropped', ['repository:acme/a:fly,PULL'], []],
    ['no actions: entry dropped', ['repository:acme/a:'], []],
    ['unknown type dropped', ['image:acme/a:pull repository:acme/b:pull'], [repo('acme/b', ['pull'])]],
    ['upper-case type dropped', ['Repository:acme/a:pull'], []],
    ['malformed class dropped', ['repository(Plugin):acme/a:pull', 'repository():acme/a:pull'], []],
    ['missing name dropped', ['repository:pull', 'repository::pull', ':acme/a:pull'], []],
    ['upper case name dropped', ['repository:Acme/app:pull'], []],
    ['.. dropped', ['repository:acme/../other:pull', 'repository:acme/..:pull'], []],
    ['percent-encoding dropped', ['repository:acme/%2e%2e/other:pull', 'repository:acme%2Fapp:pull'], []],
    ['trailing slash dropped', ['repository:acme/app/:pull'], []],
    ['leading slash dropped', ['repository:/acme/app:pull'], []],
    ['empty component dropped', ['repository:acme//app:pull'], []],
    ['NUL dropped', ['repository:acme/app\u0000:pull', 'repository:acme/a\u0000b:pull'], []],
    ['non-ASCII dropped', ['repository:acmé/app:pull'], []],
    ['bad separators dropped', ['repository:acme/-app:pull', 'repository:acme/app.:pull', 'repository:acme/a___b:pull'], []],
    ['uppercase host dropped', ['repository:LOCALHOST:5000/app:pull'], []],
    ['bad port dropped', ['repository:localhost:99999/app:pull', 'repository:localhost:x/app:pull'], []],
    ['host:port without path dropped', ['repository:localhost:5000:pull'], []],
    ['IPv6 host dropped', ['repository:[::1]:5000/app:pull'], []],
  ];

  it.each(cases)('%s', (_label, input, expected) => {
    expect(parseScopeParams(input)).toEqual(expected);
  });

  it('accepts separators of the reference grammar', () => {
    expect(parseScopeParams(['repository:a.b/c_d/e__f/g-h/i---j/0:pull'])).toEqual([
      repo('a.b/c_d/e__f/g-h/i---j/0', ['pull']),
    ]);
  });
});

describe('parseScopeParams limits', () => {
  const expectTooLarge = (values: string[]) => {
    let error: unknown;
    try {
      parseScopeParams(values);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TollgateError);
    expect((error as TollgateError).code).toBe('scope_too_large');
    expect((error as TollgateError).kind).toBe('invalid_input');
  };

  const entries = (n: number) => Array.from({ length: n }, (_, i) => `repository:acme/app${i}:pull`);

  it('accepts exactly the maximum number of entries', () => {
    expect(parseScopeParams(entries(MAX_SCOPE_ENTRIES))).toHaveLength(MAX_SCOPE_ENTRIES);
    expect(parseScopeParams([entries(MAX_SCOPE_ENTRIES).join(' ')])).toHaveLength(MAX_SCOPE_ENTRIES);
  });

  it('refuses one entry too many, repeated or space-separated', () => {
    expectTooLarge(entries(MAX_SCOPE_ENTRIES + 1));
    expectTooLarge([entries(MAX_SCOPE_ENTRIES + 1).join(' ')]);
  });

  it('counts entries before merging and dropping', () => {
    expectTooLarge(Array.from({ length: MAX_SCOPE_ENTRIES + 1 }, () => 'repository:acme/app:pull'));
    expectTooLarge(Array.from({ length: MAX_SCOPE_ENTRIES + 1 }, () => 'junk'));
  });

  it('refuses more than the byte limit, in one value or many', () => {
    expect(parseScopeParams(['x'.repeat(MAX_SCOPE_BYTES)])).toEqual([]);
    expectTooLarge(['x'.repeat(MAX_SCOPE_BYTES + 1)]);
    expectTooLarge(['x'.repeat(MAX_SCOPE_BYTES / 2), 'x'.repeat(MAX_SCOPE_BYTES / 2)]); // + 1 separator
    expectTooLarge(Array.from({ length: MAX_SCOPE_BYTES + 2 }, () => '')); // separators count
    expectTooLarge(['é'.repeat(MAX_SCOPE_BYTES / 2 + 1)]); // bytes, not characters
    expectTooLarge(['x'.repeat(10 * 1024 * 1024)]);
  });
});

describe('parseScopeEntry and isValidRepositoryName', () => {
  it('returns null for dropped entries', () => {
    expect(parseScopeEntry('')).toBeNull();
    expect(parseScopeEntry('repository:acme/app')).toBeNull();
    expect(parseScopeEntry(`repository:${'a'.repeat(256)}:pull`)).toBeNull();
    expect(parseScopeEntry('repository:acme/app:pull')).toEqual(repo('acme/app', ['pull']));
  });

  it('enforces the 255-character total', () => {
    const at = `a/${'b'.repeat(253)}`;
    expect(isValidRepositoryName(at)).toBe(true);
    expect(isValidRepositoryName(`${at}c`)).toBe(false);
  });

  it.each(['acme', 'acme/app', 'a0/b.c/d_e', 'localhost:5000/a', '127.0.0.1:5000/acme/app', 'reg.example.com:443/x/y'])(
    'valid: %s',
    (name) => expect(isValidRepositoryName(name)).toBe(true),
  );

  it.each(['', '/', 'acme/', '/acme', 'a//b', 'A', 'a/../b', 'a/./b', '.a', 'a.', 'a-', '_a', 'a%2fb', 'a b', 'a\u0000', 'ä', 'localhost:5000', 'localhost:/a', ':5000/a', 'a/localhost:5000/b', 'h:1:2/a', 'h:0/a'])(
    'invalid: %j',
    (name) => expect(isValidRepositoryName(name)).toBe(false),
  );
});

describe('formatScope', () => {
  it('formats space-separated entries with class and ordered actions', () => {
    expect(
      formatScope([repo('a/b', ['push', 'pull']), repo('c', ['pull'], 'plugin'), catalog, repo('d', [])]),
    ).toBe('repository:a/b:pull,push repository(plugin):c:pull registry:catalog:*');
    expect(formatScope([])).toBe('');
  });
});

// ---- properties ------------------------------------------------------------------------------

const alnum = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'.split(''));
const alnumRun = fc.string({ unit: alnum, minLength: 1, maxLength: 6 });
const separator = fc.constantFrom('.', '_', '__', '-', '--', '---');
const component = fc
  .tuple(alnumRun, fc.array(fc.tuple(separator, alnumRun), { maxLength: 3 }))
  .map(([head, rest]) => head + rest.map(([s, r]) => s + r).join(''));
const hostPort = fc
  .tuple(fc.array(alnumRun, { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 65535 }))
  .map(([labels, port]) => `${labels.join('.')}:${port}`);
const repositoryName = fc
  .tuple(fc.option(hostPort, { nil: undefined }), fc.array(component, { minLength: 1, maxLength: 4 }))
  .map(([host, parts]) => (host ? `${host}/` : '') + parts.join('/'))
  .filter((name) => name.length <= 255);
const actionList = fc
  .subarray([...ACTION_ORDER], { minLength: 1 })
  .map((a) => ACTION_ORDER.filter((x) => a.includes(x)));
const repositoryScope: fc.Arbitrary<ResourceScope> = fc
  .tuple(fc.option(alnumRun, { nil: undefined }), repositoryName, actionList)
  .map(([cls, name, actions]) => repo(name, actions, cls));
const catalogScope: fc.Arbitrary<ResourceScope> = fc
  .option(alnumRun, { nil: undefined })
  .map((cls) => (cls === undefined ? { ...catalog } : { ...catalog, class: cls }));
const validScopes = fc.uniqueArray(fc.oneof({ weight: 5, arbitrary: repositoryScope }, { weight: 1, arbitrary: catalogScope }), {
  maxLength: 20,
  selector: (s) => `${s.type} ${s.name}`,
});

// Strings built from the grammar's own alphabet, so that near-misses are common.
const grammarChar = fc.constantFrom(
  ...'abcz09.-_/:, ()*'.split(''),
  'repository',
  'registry',
  'catalog',
  'pull',
  'push',
  'delete',
  '..',
  '%2e',
  'A',
  '\u0000',
  'é',
);
const grammarString = fc.array(grammarChar, { maxLength: 60 }).map((parts) => parts.join(''));
const loneSurrogates = fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) });
const anyString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }), // full Unicode (fast-check 4's replacement for fullUnicodeString)
  fc.string({ unit: 'binary-ascii' }),
  loneSurrogates,
  grammarString,
  validScopes.map((scopes) => formatScope(scopes)),
);

const parseOrError = (values: string[]): ResourceScope[] | TollgateError => {
  try {
    return parseScopeParams(values);
  } catch (e) {
    if (isTollgateError(e)) return e;
    throw e;
  }
};

describe('parseScopeParams properties', () => {
  it('parse(format(x)) = x for valid scope lists', () => {
    fc.assert(
      fc.property(validScopes, (scopes) => {
        expect(parseScopeParams([formatScope(scopes)])).toEqual(scopes);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws anything but a TollgateError and returns only valid entries', () => {
    fc.assert(
      fc.property(fc.array(anyString, { maxLength: 8 }), (values) => {
        const result = parseOrError(values);
        if (result instanceof TollgateError) {
          expect(result.code).toBe('scope_too_large');
          return;
        }
        for (const scope of result) {
          expect(ACTION_ORDER.filter((a) => scope.actions.includes(a))).toEqual(scope.actions);
          expect(scope.actions.length).toBeGreaterThan(0);
          if (scope.type === 'repository') {
            expect(isValidRepositoryName(scope.name)).toBe(true);
          } else {
            expect(scope).toMatchObject({ type: 'registry', name: 'catalog', actions: ['*'] });
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('gives the same result for repeated and space-separated spellings', () => {
    const entry = fc.oneof(
      validScopes.map((s) => formatScope(s)),
      grammarString,
      fc.string(),
    );
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 10 }), (values) => {
        expect(parseOrError([values.join(' ')])).toEqual(parseOrError(values));
      }),
      { numRuns: 1000 },
    );
  });

  it('gives the same result at the limits for both spellings', () => {
    const near = fc.integer({ min: MAX_SCOPE_ENTRIES - 2, max: MAX_SCOPE_ENTRIES + 2 });
    fc.assert(
      fc.property(near, fc.integer({ min: 1, max: 130 }), (count, width) => {
        const values = Array.from({ length: count }, (_, i) => `repository:a/${'b'.repeat(width)}${i}:pull`);
        expect(parseOrError([values.join(' ')])).toEqual(parseOrError(values));
      }),
      { numRuns: 300 },
    );
  });
});

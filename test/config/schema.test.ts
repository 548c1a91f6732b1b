import t from 'tap';
import {
  INVALID, canonicalPathProblem, cidrProblem, httpUrlProblem, substitute, suggest, type Context,
} from '../../src/config/schema.js';

const ctx = (env: Record<string, string | undefined> = {}): Context => ({ env, baseDir: '/', problems: [] });

t.test('substitute', async (t) => {
  const c = ctx({ A: 'x', EMPTY: '' });
  t.strictSame(substitute('no refs $ or $$ here', '', c), { text: 'no refs $ or $$ here', substituted: false });
  t.strictSame(substitute('${A}-${A}${EMPTY}', 'k', c), { text: 'x-x', substituted: true });
  t.strictSame(substitute('$${A}', 'k', c), { text: '${A}', substituted: false }, 'an escaped reference is not a substitution');
  t.strictSame(c.problems, []);
  const d = ctx();
  t.equal(substitute('${B} and ${C}', 'a.b', d), INVALID);
  t.strictSame(d.problems, [
    { path: 'a.b', reason: 'environment variable B is not set' },
    { path: 'a.b', reason: 'environment variable C is not set' },
  ], 'every unset variable is named');
});

t.test('suggest', async (t) => {
  t.equal(suggest('alow', ['allow', 'public']), 'allow');
  t.equal(suggest('clientSecert', ['clientSecret', 'clientId']), 'clientSecret', 'transposition');
  t.equal(suggest('PublicURL', ['publicUrl', 'port']), 'publicUrl', 'case is ignored');
  t.equal(suggest('login', ['log', 'server']), undefined, 'two edits on a short word is not a typo');
  t.equal(suggest('zzz', ['allow']), undefined);
});

t.test('canonicalPathProblem', async (t) => {
  for (const ok of ['/', '/a', '/a/', "/a-b_c.d~e!$&'()*+,;=:@/f", '/.well-known/x', '/a/...']) {
    t.equal(canonicalPathProblem(ok), undefined, ok);
  }
  for (const bad of ['', 'a', '//', '/a//', '/.', '/./', '/a/..', '/.;x', '/a%41', '/a b', '/a\u007f', '/a"b', '/a[b]', '/a{b}', '/a|b']) {
    t.type(canonicalPathProblem(bad), 'string', JSON.stringify(bad));
  }
});

t.test('cidrProblem', async (t) => {
  for (const ok of ['10.0.0.0/8', '0.0.0.0/0', '192.0.2.1', '192.0.2.1/32', '::/0', '2001:db8::/32', '::ffff:10.0.0.1']) {
    t.equal(cidrProblem(ok), undefined, ok);
  }
  for (const bad of ['10.0.0.0/33', '10.0.0/8', '::/129', 'fe80::1%eth0', '10.0.0.0/+8', '10.0.0.0/08x', 'localhost', '']) {
    t.type(cidrProblem(bad), 'string', bad);
  }
});

t.test('httpUrlProblem', async (t) => {
  t.equal(httpUrlProblem('https://a.example/x?y=1', { query: true }), undefined);
  t.equal(httpUrlProblem('HTTP://A.example'), undefined, 'scheme is case-insensitive');
  t.equal(httpUrlProblem('http:a.example'), 'must be an http(s) URL', 'the URL parser would accept this; we do not');
  t.equal(httpUrlProblem('https://a.example\\b'), 'must not contain a backslash');
  t.equal(httpUrlProblem('https://@a.example'), 'must not contain credentials (user:password@)');
  t.equal(httpUrlProblem('https://a.example/x?y=1'), 'must not have a query');
  t.equal(httpUrlProblem('https://a.example/x', { path: false }), 'must be an origin (scheme, host and port; no path)');
  t.equal(httpUrlProblem(' https://a.example'), 'must not contain whitespace or control characters');
});

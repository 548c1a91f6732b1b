import t from 'tap';
import {
  INVALID, canonicalPathProblem, cidrProblem, httpUrlProblem, redactUrl, show, substitute, suggest, type Context,
} from '../../src/config/schema.js';
import { problems, withSections } from '../fixtures/config.js';

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
  t.equal(cidrProblem('::ffff:10.0.0.0/8'), 'an IPv4-mapped address (::ffff:…) needs a prefix length between 96 and 128',
    'what the proxy matcher cannot use, the config refuses');
  t.equal(cidrProblem('::ffff:10.0.0.0/104'), undefined);
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

t.test('a problem quotes the value it refuses, never a secret', async (t) => {
  t.equal(show('x'.repeat(100)), JSON.stringify(`${'x'.repeat(77)}…`), 'long values are shortened');
  t.equal(show(42), '42');
  t.equal(redactUrl('https://user:pw@idp.example/x@y'), 'https://***@idp.example/x@y');
  t.equal(redactUrl('https://idp.example/x@y'), 'https://idp.example/x@y', 'an @ in the path is not a credential');
  const cc = (creds: Record<string, unknown>) => withSections({ upstreams: { cdf: { url: 'http://a.example', credentials: {
    type: 'client-credentials', tokenUrl: 'https://u:hunter2@idp.example/token', clientId: 'svc', ...creds } } } });
  const ps = problems(cc({ clientSecret: 12345678 }));
  t.strictSame(ps, [
    { path: 'upstreams.cdf.credentials.tokenUrl', reason: '"https://***@idp.example/token" must not contain credentials (user:password@)' },
    { path: 'upstreams.cdf.credentials.clientSecret', reason: 'must be a string (put it in quotes)' },
  ]);
  const key = problems(withSections({ upstreams: { cdf: { url: 'http://a.example', credentials: { type: 'api-key', value: 'sekrit\nX: 1' } } } }));
  t.strictSame(key, [{ path: 'upstreams.cdf.credentials.value', reason: 'must not contain CR, LF or NUL (it is sent as a header value)' }]);
  t.notMatch(JSON.stringify([...ps, ...key]), /hunter2|12345678|sekrit/);
});

import t from 'tap';
import { safeRedirect } from '../../src/session/redirect.js';

const PUBLIC = 'https://gateway.example';
// Spelt unevenly on purpose: entries are compared as normalised origins; malformed ones are ignored.
const ALLOWED = [
  'https://app.example',
  'http://127.0.0.1:3000',
  'https://APP2.example:8443/',
  'http://legacy.example:80',
  'not a url',
  'javascript:alert(1)',
];

/** [raw redirect parameter, exact result, why]. */
const ROWS: ReadonlyArray<readonly [raw: string | null | undefined, expect: string, why: string]> = [
  // same-origin paths: kept, query and fragment included
  ['/', '/', 'root'],
  ['/dashboard', '/dashboard', 'simple path'],
  ['/apps/x?tab=1&sort=desc', '/apps/x?tab=1&sort=desc', 'query kept'],
  ['/apps/x?tab=1#section-2', '/apps/x?tab=1#section-2', 'query and fragment kept'],
  ['/apps/x#/hash/route', '/apps/x#/hash/route', 'hash-router fragment kept'],
  ['/api/v1/projects/demo/assets?limit=10', '/api/v1/projects/demo/assets?limit=10', 'API path'],
  ['/search?q=%2F%2Fevil.com', '/search?q=%2F%2Fevil.com', 'encoded slashes in the query are data'],
  ['/search?next=https://evil.com', '/search?next=https://evil.com', 'a URL in the query stays in the query'],
  ['/x#//evil.com', '/x#//evil.com', 'slashes in the fragment are data'],
  ['/a?', '/a?', 'empty query kept as the browser would'],
  ['/a#', '/a#', 'empty fragment kept as the browser would'],
  ['/evil.com', '/evil.com', 'a host-like first segment is still a path'],
  ['/.evil.com', '/.evil.com', 'dot file'],
  ['/%E2%82%AC', '/%E2%82%AC', 'percent-encoded UTF-8'],
  ['/a%20b', '/a%20b', 'encoded space'],
  ['/x?q=100%25', '/x?q=100%25', 'encoded percent'],
  ['/a?x=%0', '/a?x=%0', 'malformed escape is literal text'],
  ["/a?q=it's", '/a?q=it%27s', "WHATWG serialisation encodes ' in a special URL's query"],
  ['/a?q="x"', '/a?q=%22x%22', 'WHATWG serialisation encodes " in the query'],
  ['/a/b/../c', '/a/c', 'dot-dot resolved'],
  ['/a/./b', '/a/b', 'dot resolved'],
  ['/a/%2e%2e/b', '/b', 'encoded dot-dot resolved as the browser would'],
  ['/..', '/', 'dot-dot above root stays at root'],
  ['/' + 'a'.repeat(2047), '/' + 'a'.repeat(2047), 'exactly 2048 characters'],
  // same-origin absolute URLs become relative references
  ['https://gateway.example', '/', 'own origin, no path'],
  ['https://gateway.example/', '/', 'own origin, root'],
  ['https://gateway.example/a?b=1#c', '/a?b=1#c', 'own origin with query and fragment'],
  ['HTTPS://Gateway.Example/a', '/a', 'scheme and host case-insensitive'],
  ['https://gateway.example:443/a', '/a', 'explicit default port'],
  ['https://gateway.example?x=1', '/?x=1', 'query right after the host'],
  ['https://gateway.example#frag', '/#frag', 'fragment right after the host'],
  // allowed origins stay absolute
  ['https://app.example', 'https://app.example/', 'allowed origin, no path'],
  ['https://app.example/deep/link?x=1#y', 'https://app.example/deep/link?x=1#y', 'allowed origin with path, query, fragment'],
  ['https://app.example:443/x', 'https://app.example/x', 'allowed origin, explicit default port'],
  ['HTTPS://APP.EXAMPLE/X', 'https://app.example/X', 'allowed origin, host case folded, path case kept'],
  ['https://app.example/a/../b', 'https://app.example/b', 'allowed origin, dot segments resolved'],
  ['http://127.0.0.1:3000/cb', 'http://127.0.0.1:3000/cb', 'allowed loopback origin with port'],
  ['https://app2.example:8443/x', 'https://app2.example:8443/x', 'config entry with upper case and trailing /'],
  ['http://legacy.example/x', 'http://legacy.example/x', 'config entry with explicit :80'],
  ['http://legacy.example:80/x', 'http://legacy.example/x', 'explicit :80 on both sides'],
  // empty, missing, too long
  ['', '/', 'empty'],
  [null, '/', 'null'],
  [undefined, '/', 'missing'],
  ['/' + 'a'.repeat(2048), '/', '2049 characters'],
  ['https://app.example/' + 'a'.repeat(3000), '/', 'long allowed URL'],
  // scheme-relative and backslashes
  ['//evil.com', '/', 'scheme-relative'],
  ['///evil.com', '/', 'three slashes'],
  ['////evil.com', '/', 'four slashes'],
  ['//evil.com/path?x#y', '/', 'scheme-relative with path'],
  ['//gateway.example/x', '/', 'scheme-relative even to our own host'],
  ['/\\evil.com', '/', 'slash backslash'],
  ['\\/evil.com', '/', 'backslash slash'],
  ['/\\\\evil.com', '/', 'slash and two backslashes'],
  ['\\\\evil.com', '/', 'two backslashes'],
  ['/\\/evil.com', '/', 'slash backslash slash'],
  ['https:\\\\evil.com', '/', 'backslashes after the scheme'],
  ['https:/\\evil.com', '/', 'mixed slashes after the scheme'],
  ['https://gateway.example\\@evil.com', '/', 'backslash before @'],
  ['https://evil.com\\.gateway.example', '/', 'backslash ends the host for a browser'],
  ['/a\\b', '/', 'backslash anywhere'],
  ['/a?q=C:\\dir', '/', 'backslash even in the query'],
  // encoded slashes and backslashes
  ['/%2f%2fevil.com', '/', 'encoded double slash after /'],
  ['/%2F%2Fevil.com', '/', 'encoded double slash, upper-case hex'],
  ['%2F%2Fevil.com', '/', 'encoded scheme-relative'],
  ['%2f%2fevil.com', '/', 'encoded scheme-relative, lower-case hex'],
  ['/%2fevil.com', '/', 'decodes to //evil.com'],
  ['/%5cevil.com', '/', 'decodes to /\\evil.com'],
  ['/%5Cevil.com', '/', 'decodes to /\\evil.com, upper-case hex'],
  ['%5c%5cevil.com', '/', 'encoded backslashes'],
  ['/%252f%252fevil.com', '/', 'double-encoded slashes'],
  ['/a%2fb', '/', 'encoded slash inside the path (the gateway refuses it too)'],
  ['/a%5cb', '/', 'encoded backslash inside the path'],
  ['/%2e%2e%2f%2fevil.com', '/', 'encoded dot-dot and slashes'],
  ['/a/%2e%2e/%2fevil.com', '/', 'dot-dot then encoded slash'],
  ['https://gateway.example/%2f%2fevil.com', '/', 'own origin with encoded slashes in the path'],
  ['/a%25252525252Fb', '/', 'nested encoding beyond the decode limit'],
  // dot segments that resolve to a scheme-relative path
  ['/..//evil.com', '/', 'dot-dot then double slash'],
  ['/a/..//evil.com', '/', 'resolves to //evil.com'],
  ['/.//evil.com', '/', 'dot then double slash'],
  ['/a/%2e%2e//evil.com', '/', 'encoded dot-dot then double slash'],
  ['https://gateway.example/..//evil.com', '/', 'own origin whose path resolves to //evil.com'],
  // userinfo
  ['https://gateway.example@evil.com', '/', 'our host as userinfo'],
  ['http://gateway.example@evil.com', '/', 'our host as userinfo, http'],
  ['https://evil.com@gateway.example', '/', 'userinfo on our own host'],
  ['https://user:pass@gateway.example/', '/', 'user and password'],
  ['https://:@gateway.example/', '/', 'empty userinfo'],
  ['https://user@app.example/', '/', 'userinfo on an allowed origin'],
  ['https://gateway.example:443@evil.com', '/', 'port-like userinfo'],
  ['https://gateway.example%40evil.com', '/', 'encoded @ in the authority'],
  ['https://gateway%2Eexample/x', '/', 'encoded dot in the host'],
  // look-alike and foreign hosts
  ['https://evil.com', '/', 'foreign origin'],
  ['http://evil.com/', '/', 'foreign origin, http'],
  ['https://gateway.example.evil.com/', '/', 'our host as a subdomain'],
  ['https://app.example.evil.com/', '/', 'allowed host as a subdomain'],
  ['https://evil.com?gateway.example', '/', 'our host in the query'],
  ['https://evil.com#gateway.example', '/', 'our host in the fragment'],
  ['https://evil.com/gateway.example', '/', 'our host in the path'],
  ['evil.com?gateway.example', '/', 'scheme-less host with our host in the query'],
  ['https://gateway.examplee/', '/', 'one letter more'],
  ['https://xgateway.example/', '/', 'prefix'],
  ['https://gateway.example:8443/', '/', 'different port'],
  ['http://gateway.example/', '/', 'http instead of https'],
  ['https://gateway.example./', '/', 'trailing dot'],
  ['https://gateway.example.:443/', '/', 'trailing dot before the port'],
  ['https://app.example./x', '/', 'trailing dot on an allowed host'],
  ['https://xn--gatewy-dxa.example/', '/', 'punycode look-alike'],
  ['https://gatew\u0430y.example/', '/', 'Cyrillic a (IDN homograph)'],
  ['https://gateway\uff0eexample/', '/', 'fullwidth full stop'],
  ['http://app.example/', '/', 'allowed host, wrong scheme'],
  ['https://app.example:8443/', '/', 'allowed host, wrong port'],
  ['https://127.0.0.1:3000/', '/', 'allowed loopback, wrong scheme'],
  ['http://127.0.0.1:3001/', '/', 'allowed loopback, wrong port'],
  ['http://localhost:3000/', '/', 'localhost is not 127.0.0.1'],
  ['http://127.0.0.1.:3000/', '/', 'IPv4 with trailing dot'],
  ['https://app2.example/', '/', 'allowed host without its port'],
  // other schemes and malformed absolute forms
  ['javascript:alert(1)', '/', 'javascript:'],
  ['JaVaScRiPt:alert(1)', '/', 'javascript: mixed case'],
  ['javascript://gateway.example/%0aalert(1)', '/', 'javascript: shaped like a URL'],
  ['data:text/html,<script>alert(1)</script>', '/', 'data:'],
  ['data:text/html;base64,PHNjcmlwdD4=', '/', 'data: base64'],
  ['vbscript:msgbox(1)', '/', 'vbscript:'],
  ['file:///etc/passwd', '/', 'file:'],
  ['ftp://gateway.example/', '/', 'ftp: on our host'],
  ['ws://gateway.example/', '/', 'ws: on our host'],
  ['blob:https://gateway.example/0f1e', '/', 'blob:'],
  ['mailto:a@gateway.example', '/', 'mailto:'],
  ['http:evil.com', '/', 'http: without slashes'],
  ['https:evil.com', '/', 'https: without slashes'],
  ['http:/evil.com', '/', 'http: with one slash'],
  ['https:/gateway.example/x', '/', 'https: with one slash, our host'],
  ['http:///evil.com', '/', 'http: with three slashes'],
  ['https://', '/', 'scheme only'],
  ['https://[::1', '/', 'unterminated IPv6 host'],
  // scheme-less relative references
  ['evil.com', '/', 'bare host'],
  ['gateway.example/x', '/', 'our host without a scheme'],
  ['a/b', '/', 'path-relative'],
  ['./x', '/', 'dot-relative'],
  ['../x', '/', 'dot-dot-relative'],
  ['?x=1', '/', 'query only'],
  ['#frag', '/', 'fragment only'],
  // control characters, raw or encoded
  ['/a\r\nSet-Cookie:x=1', '/', 'raw CRLF (header injection)'],
  ['/a\nb', '/', 'raw LF'],
  ['/a\rb', '/', 'raw CR'],
  ['/a\tb', '/', 'raw TAB'],
  ['/\t/evil.com', '/', 'TAB that URL parsing would strip'],
  ['/\n/evil.com', '/', 'LF that URL parsing would strip'],
  ['/a\u0000', '/', 'raw NUL'],
  ['/a\u007f', '/', 'raw DEL'],
  ['/a\u0085', '/', 'raw NEL'],
  ['/%0d%0aSet-Cookie:x=1', '/', 'encoded CRLF'],
  ['/a%0A', '/', 'encoded LF'],
  ['/a%09', '/', 'encoded TAB'],
  ['/a%00', '/', 'encoded NUL'],
  ['/a%7f', '/', 'encoded DEL'],
  ['/a%C2%85', '/', 'encoded NEL (C1 control)'],
  ['/a%250d%250a', '/', 'double-encoded CRLF'],
  ['/a?x=%0d', '/', 'encoded CR in the query'],
  ['/a#%0a', '/', 'encoded LF in the fragment'],
  ['https://app.example/%0d%0a', '/', 'encoded CRLF on an allowed origin'],
  // whitespace and non-ASCII
  [' /a', '/', 'leading space'],
  ['/a ', '/', 'trailing space'],
  ['\t/a', '/', 'leading TAB'],
  ['/a\n', '/', 'trailing LF'],
  ['/a b', '/', 'inner space'],
  [' https://app.example/', '/', 'leading space before an allowed URL'],
  ['\u00a0/a', '/', 'leading no-break space'],
  ['\ufeff/a', '/', 'leading byte-order mark'],
  ['/a\u2028', '/', 'line separator'],
  ['/caf\u00e9', '/', 'raw non-ASCII (a serialised URL never has one)'],
];

/** A short label for a row's input, all non-printable-ASCII escaped (U+2028, NEL would break TAP lines). */
function show(raw: string | null | undefined): string {
  const s = (JSON.stringify(raw) ?? 'undefined')
    .replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return s.length > 80 ? `${s.slice(0, 60)}…(${s.length} chars)` : s;
}

t.test('redirect table', async (t) => {
  t.ok(ROWS.length >= 60, `at least 60 rows (${ROWS.length})`);
  t.equal(new Set(ROWS.map((r) => r[0])).size, ROWS.length, 'each input listed once');
  for (const [raw, expect, why] of ROWS) t.equal(safeRedirect(raw, PUBLIC, ALLOWED), expect, `${why}: ${show(raw)}`);
});

t.test('every result is a safe Location', async (t) => {
  const allowed = new Set(['https://app.example', 'http://127.0.0.1:3000', 'https://app2.example:8443', 'http://legacy.example']);
  for (const [raw] of ROWS) {
    const out = safeRedirect(raw, PUBLIC, ALLOWED);
    const label = show(raw);
    t.match(out, /^[\x21-\x7e]+$/, `printable ASCII: ${label}`);
    if (out.startsWith('/')) {
      t.notOk(out.startsWith('//') || out.startsWith('/\\'), `relative result has exactly one leading /: ${label}`);
      // A browser resolving the Location against the gateway stays on the gateway.
      t.equal(new URL(out, PUBLIC).origin, PUBLIC, `relative result stays home: ${label}`);
    } else {
      t.ok(allowed.has(new URL(out).origin), `absolute result is on an allowed origin: ${label}`);
    }
    t.equal(safeRedirect(out, PUBLIC, ALLOWED), out, `idempotent: ${label}`);
  }
});

t.test('publicUrl is used for its origin only', async (t) => {
  t.equal(safeRedirect('/x', 'https://gateway.example/base/', []), '/x', 'relative paths resolve from the origin root');
  t.equal(safeRedirect('https://gateway.example/x', 'https://gateway.example:443/', []), '/x', 'default port in publicUrl');
  t.equal(safeRedirect('https://gateway.example/x', 'HTTPS://GATEWAY.EXAMPLE', []), '/x', 'publicUrl case');
});

t.test('plain-http publicUrl with a port (the demo)', async (t) => {
  const pub = 'http://127.0.0.1:8080';
  const cases: Array<[string, string]> = [
    ['http://127.0.0.1:8080/app?x=1', '/app?x=1'],
    ['http://127.0.0.1:8080', '/'],
    ['/app', '/app'],
    ['http://127.0.0.1/app', '/'],
    ['https://127.0.0.1:8080/app', '/'],
    ['http://localhost:8080/app', '/'],
    ['http://127.0.0.1:80800/app', '/'],
    // The same address to every WHATWG parser, so the browser would stay home too.
    ['http://0x7f.0.0.1:8080/app', '/app'],
    ['http://127.0.0.1:3000/', 'http://127.0.0.1:3000/'],
  ];
  for (const [raw, want] of cases) t.equal(safeRedirect(raw, pub, ['http://127.0.0.1:3000']), want, raw);
});

t.test('allowed origins', async (t) => {
  t.equal(safeRedirect('https://app.example/', PUBLIC, []), '/', 'none configured');
  t.equal(safeRedirect('https://app.example/', PUBLIC, ['https://app.example/some/path']), 'https://app.example/', 'a configured path is ignored: origins only');
  t.equal(safeRedirect('https://app.example/', PUBLIC, ['https://user@app.example']), '/', 'a configured entry with userinfo is ignored');
  t.equal(safeRedirect('http://[::1]:3000/cb', PUBLIC, ['http://[::1]:3000']), 'http://[::1]:3000/cb', 'IPv6 origin');
  t.equal(safeRedirect('http://[0:0::1]:3000/cb', PUBLIC, ['http://[::1]:3000']), 'http://[::1]:3000/cb', 'IPv6 spelt another way');
  t.equal(safeRedirect('https://app.example/', PUBLIC, ['*']), '/', 'no wildcards');
});

t.test('a publicUrl that is not an http(s) URL is a programming error', async (t) => {
  t.throws(() => safeRedirect('/x', 'not a url', []), TypeError);
  t.throws(() => safeRedirect('/x', 'ftp://gateway.example', []), TypeError);
});

import t from 'tap';
import { httpOrigin, sameOriginAllowed, trustedOrigins } from '../../src/session/origin.js';

const PUBLIC = 'https://gateway.example';
const ALLOWED = ['https://app.example', 'http://127.0.0.1:3000'];
const GW = 'https://gateway.example';
const EVIL = 'https://evil.example';

/** [method, Origin, Referer, allowed?, why]; undefined means the header is absent. */
const ROWS: ReadonlyArray<readonly [method: string, origin: string | undefined, referer: string | undefined, ok: boolean, why: string]> = [
  // safe methods need no check
  ['GET', undefined, undefined, true, 'GET without headers'],
  ['HEAD', undefined, undefined, true, 'HEAD without headers'],
  ['OPTIONS', undefined, undefined, true, 'OPTIONS without headers'],
  ['GET', EVIL, `${EVIL}/`, true, 'GET from another site (navigation)'],
  ['GET', 'null', undefined, true, 'GET with Origin: null'],
  // state-changing methods: Origin decides
  ['POST', GW, undefined, true, 'POST from the gateway'],
  ['PUT', GW, undefined, true, 'PUT from the gateway'],
  ['PATCH', GW, undefined, true, 'PATCH from the gateway'],
  ['DELETE', GW, undefined, true, 'DELETE from the gateway'],
  ['PROPFIND', GW, undefined, true, 'unknown method from the gateway'],
  ['POST', 'https://app.example', undefined, true, 'allowed app origin'],
  ['POST', 'http://127.0.0.1:3000', undefined, true, 'allowed loopback app origin'],
  ['POST', GW, `${EVIL}/`, true, 'Origin wins over a foreign Referer'],
  ['POST', EVIL, `${GW}/page`, false, 'foreign Origin, even with our Referer'],
  ['POST', EVIL, undefined, false, 'foreign Origin'],
  ['DELETE', EVIL, undefined, false, 'foreign Origin on DELETE'],
  ['POST', 'null', undefined, false, 'Origin: null (sandboxed frame, file:, redirect chain)'],
  ['POST', 'null', `${GW}/page`, false, 'Origin: null is not absent: no Referer fallback'],
  ['POST', '', `${GW}/page`, false, 'empty Origin is not absent'],
  ['POST', `${GW}/`, undefined, false, 'Origin with a trailing slash is not a serialised origin'],
  ['POST', `${GW}/path`, undefined, false, 'Origin with a path'],
  ['POST', `${GW}:443`, undefined, false, 'explicit default port is never sent by a browser'],
  ['POST', 'HTTPS://GATEWAY.EXAMPLE', undefined, false, 'upper case is never sent by a browser'],
  ['POST', ` ${GW}`, undefined, false, 'leading space'],
  ['POST', `${GW}, ${EVIL}`, undefined, false, 'two Origin values joined by Node'],
  ['POST', `${EVIL}, ${GW}`, undefined, false, 'two Origin values, ours last'],
  ['POST', `${GW}, ${GW}`, undefined, false, 'our origin twice'],
  ['POST', `${GW} ${GW}`, undefined, false, 'space-separated list'],
  ['POST', 'http://gateway.example', undefined, false, 'http instead of https'],
  ['POST', 'https://gateway.example:8443', undefined, false, 'different port'],
  ['POST', 'https://gateway.example.evil.example', undefined, false, 'our host as a subdomain'],
  ['POST', 'https://gateway.example.', undefined, false, 'trailing dot'],
  ['POST', 'https://sub.gateway.example', undefined, false, 'subdomain of ours (same-site, not same-origin)'],
  ['POST', 'https://gateway.example:3000', undefined, false, 'same host, another port (same-site)'],
  ['POST', 'https://user@gateway.example', undefined, false, 'userinfo'],
  ['POST', 'http://127.0.0.1:3001', undefined, false, 'allowed loopback, wrong port'],
  ['POST', 'https://app.example.evil.example', undefined, false, 'allowed host as a subdomain'],
  ['POST', 'gateway.example', undefined, false, 'host without a scheme'],
  ['POST', 'not a url', undefined, false, 'malformed'],
  ['POST', '*', undefined, false, 'wildcard'],
  // no Origin: the Referer's origin decides
  ['POST', undefined, undefined, false, 'neither header'],
  ['POST', undefined, `${GW}/page?x=1#y`, true, 'Referer from the gateway'],
  ['POST', undefined, GW, true, 'Referer that is just our origin'],
  ['POST', undefined, `${GW}:443/page`, true, 'Referer with explicit default port (a URL, so normalised)'],
  ['POST', undefined, 'https://app.example/deep/link', true, 'Referer from an allowed app'],
  ['POST', undefined, 'http://127.0.0.1:3000/', true, 'Referer from the allowed loopback app'],
  ['POST', undefined, `${EVIL}/`, false, 'foreign Referer'],
  ['POST', undefined, `${EVIL}/${GW}`, false, 'our origin in a foreign path'],
  ['POST', undefined, `${EVIL}/?r=${GW}`, false, 'our origin in a foreign query'],
  ['POST', undefined, 'https://gateway.example.evil.example/', false, 'look-alike Referer'],
  ['POST', undefined, 'https://gateway.example@evil.example/', false, 'our host as userinfo'],
  ['POST', undefined, 'https://evil.example@gateway.example/', false, 'userinfo on our host (browsers strip it)'],
  ['POST', undefined, 'http://gateway.example/', false, 'Referer with the wrong scheme'],
  ['POST', undefined, '', false, 'empty Referer'],
  ['POST', undefined, 'null', false, 'Referer: null'],
  ['POST', undefined, '/page', false, 'relative Referer'],
  ['POST', undefined, '//gateway.example/page', false, 'scheme-relative Referer'],
  ['POST', undefined, 'not a url', false, 'malformed Referer'],
  ['POST', undefined, 'javascript:alert(1)', false, 'javascript: Referer'],
  ['POST', undefined, 'about:blank', false, 'about: Referer'],
  ['POST', undefined, `${GW}/\r\n`, false, 'CRLF in Referer'],
  ['POST', undefined, `\t${GW}/`, false, 'TAB that URL parsing would strip'],
  ['POST', undefined, `${GW}/a ${EVIL}/`, false, 'two URLs in one Referer'],
  // methods are case-sensitive: only the exact safe names skip the check
  ['get', undefined, undefined, false, 'lower-case get is not GET'],
  ['TRACE', undefined, undefined, false, 'TRACE is not in the safe list'],
  ['CONNECT', EVIL, undefined, false, 'CONNECT from another site'],
];

t.test('CSRF table', async (t) => {
  t.ok(ROWS.length >= 50, `at least 50 rows (${ROWS.length})`);
  for (const [method, origin, referer, ok, why] of ROWS) {
    const label = `${why}: ${method} Origin=${JSON.stringify(origin)} Referer=${JSON.stringify(referer)}`;
    t.equal(sameOriginAllowed(method, origin, referer, PUBLIC, ALLOWED), ok, label);
  }
});

t.test('without allowed origins only the gateway itself passes', async (t) => {
  t.equal(sameOriginAllowed('POST', GW, undefined, PUBLIC, []), true);
  t.equal(sameOriginAllowed('POST', 'https://app.example', undefined, PUBLIC, []), false);
  t.equal(sameOriginAllowed('POST', undefined, 'https://app.example/x', PUBLIC, []), false);
});

t.test('configured origins are normalised before comparing', async (t) => {
  const allowed = ['HTTPS://App.Example:443/', 'http://legacy.example:80/some/path', 'not a url', 'ftp://files.example'];
  t.equal(sameOriginAllowed('POST', 'https://app.example', undefined, PUBLIC, allowed), true, 'case, default port, slash');
  t.equal(sameOriginAllowed('POST', 'http://legacy.example', undefined, PUBLIC, allowed), true, 'a path in config is ignored');
  t.equal(sameOriginAllowed('POST', 'ftp://files.example', undefined, PUBLIC, allowed), false, 'non-http entries ignored');
  t.equal(sameOriginAllowed('POST', GW, undefined, 'https://gateway.example:443/', []), true, 'publicUrl with default port');
  t.equal(sameOriginAllowed('POST', 'http://127.0.0.1:8080', undefined, 'http://127.0.0.1:8080', []), true, 'plain-http demo gateway');
  t.equal(sameOriginAllowed('POST', 'http://localhost:8080', undefined, 'http://127.0.0.1:8080', []), false, 'localhost is not 127.0.0.1');
});

t.test('trustedOrigins', async (t) => {
  t.same([...trustedOrigins('https://Gateway.Example:443/x', ['https://app.example:443', 'http://[::1]:3000/', 'https://u@x.example', 'javascript:1'])],
    ['https://gateway.example', 'https://app.example', 'http://[::1]:3000'], 'normalised, malformed and userinfo entries dropped');
  t.throws(() => trustedOrigins('not a url', []), TypeError, 'bad publicUrl is a programming error');
  t.throws(() => sameOriginAllowed('POST', GW, undefined, 'file:///x', []), TypeError);
});

t.test('httpOrigin', async (t) => {
  const cases: Array<[string, string | null]> = [
    ['https://a.example/x?y#z', 'https://a.example'],
    ['HTTP://A.EXAMPLE:80', 'http://a.example'],
    ['https://a.example:8443', 'https://a.example:8443'],
    ['https://u:p@a.example/', null],
    ['data:text/plain,x', null],
    ['/relative', null],
    ['', null],
  ];
  for (const [v, want] of cases) t.equal(httpOrigin(v), want, v);
});

// Cookie names and flags follow the public origin.
import t from 'tap';
import '../fixtures/cookie-codec.js';
import { AMBIGUOUS, cookieNames, clearCookie, isAmbiguous, parseCookies, simpleCookie, writeCookie } from '../../src/session/cookies.js';

t.test('__Host- and Secure on https and loopback; plain cdf-gw on other http origins', async (t) => {
  const rows: Array<[string, string, boolean]> = [
    ['https://gw.example', '__Host-cdf-gw', true],
    ['http://127.0.0.1:8080', '__Host-cdf-gw', true],
    ['http://localhost:8080', '__Host-cdf-gw', true],
    ['http://[::1]:8080', '__Host-cdf-gw', true],
    ['http://gw.internal:8080', 'cdf-gw', false],
    ['http://10.0.0.5', 'cdf-gw', false],
  ];
  for (const [url, stem, secure] of rows) {
    const n = cookieNames(url);
    t.equal(n.stem, stem, url);
    t.equal(n.session, `${stem}-session`);
    const line = simpleCookie(n, n.session, 'v', 10);
    t.equal(/; Secure/.test(line), secure, `${url}: Secure ${secure}`);
    t.match(line, /; Path=\/; HttpOnly;.*SameSite=Lax/);
  }
});

t.test('flow cookie names differ per state and reveal nothing of it', async (t) => {
  const n = cookieNames('https://gw.example');
  t.not(n.flow('a'), n.flow('b'));
  t.equal(n.flow('state-123'), n.flow('state-123'));
  t.notMatch(n.flow('state-123'), /state/);
});

t.test('a shrinking value expires its stale chunks; clearing expires all', async (t) => {
  const n = cookieNames('https://gw.example');
  const present = { [`${n.session}.0`]: 'x', [`${n.session}.1`]: 'y', other: 'z' };
  const lines = writeCookie(n, n.session, 'small', 100, present);
  t.match(lines[0], /^__Host-cdf-gw-session=small;/);
  t.equal(lines.filter((l) => /Max-Age=0/.test(l)).length, 2, 'both old chunks expired');
  t.same(clearCookie(n, n.session, present).map((l) => l.split('=')[0]).sort(), [`${n.session}.0`, `${n.session}.1`]);
  t.same(parseCookies(['a=1; b=2', 'c=3']), { a: '1', b: '2', c: '3' });
  t.same(parseCookies(undefined), {});
});

t.test('a gateway cookie sent twice is ambiguous: neither value counts', async (t) => {
  const n = cookieNames('https://gw.example');
  const s = n.session;
  t.same(parseCookies(`${s}=good; ${s}=evil`), { [s]: AMBIGUOUS }, 'two values');
  t.same(parseCookies(`${s}=evil; ${s}=good`), { [s]: AMBIGUOUS }, 'either order');
  t.same(parseCookies([`${s}=same`, `${s}=same`]), { [s]: AMBIGUOUS }, 'even the same value, across headers');
  t.same(parseCookies(`${s}.0=2~a; ${s}.1=b; ${s}.1=c`), { [`${s}.0`]: '2~a', [`${s}.1`]: AMBIGUOUS }, 'a chunk');
  t.same(parseCookies('app=1; app=2; cdf-gw-x=1'), { app: '1', 'cdf-gw-x': '1' }, 'app cookies: first wins as before');
  t.same(parseCookies(`${s}=a; ${s.toLowerCase()}=b`), { [s]: 'a', [s.toLowerCase()]: 'b' }, 'names are case-sensitive');
  t.ok(isAmbiguous(s, parseCookies(`${s}.0=2~a; ${s}.1=b; ${s}.1=c`)));
  t.notOk(isAmbiguous(s, parseCookies(`${s}=a; other=1; other=2`)));
  t.notOk(isAmbiguous(s, parseCookies(`${n.flow('st')}=a; ${n.flow('st')}=b`)), 'another gateway cookie');
});

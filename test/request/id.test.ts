import t from 'tap';
import { newRequestId, requestId } from '../../src/request/id.js';
import { clientIp } from '../../src/request/client-ip.js';
import { trustedProxyMatcher } from '../../src/request/trust.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A request as Node's parser leaves it: duplicate X-Request-Id lines joined with ", " in `headers`. */
function req(...lines: string[]) {
  const headers: Record<string, string> = {};
  if (lines.length > 0) headers['x-request-id'] = lines.join(', ');
  return { headers, headersDistinct: lines.length > 0 ? { 'x-request-id': lines } : {} };
}

t.test('an incoming id of 1-128 printable ASCII characters is kept', async (t) => {
  t.equal(requestId(req('abc-123')), 'abc-123');
  t.equal(requestId(req('x'.repeat(128))), 'x'.repeat(128));
  t.equal(requestId(req('with space and ~!@#$%^&*()')), 'with space and ~!@#$%^&*()');
  t.equal(requestId(req('a, b')), 'a, b', 'one header whose value has a comma');
});

t.test('otherwise one is made (a UUID), never the bad value', async (t) => {
  for (const bad of [[], [''], ['x'.repeat(129)], ['tab\there'], ['nl\nx'], ['del\x7f'], ['é'], ['a', 'b']]) {
    t.match(requestId(req(...bad)), UUID, JSON.stringify(bad));
  }
  t.not(requestId(req()), requestId(req()), 'each made id is new');
});

t.test('made ids: version-4 UUIDs, all distinct across many draws of random bytes, random in every free digit', async (t) => {
  const first = newRequestId();
  const kept = `${first}`;
  const ids = Array.from({ length: 2000 }, () => newRequestId()); // ~8 draws of 256
  t.equal(first, kept, 'an id handed out is not changed by the next ones');
  t.ok(ids.every((id) => UUID.test(id)), 'all match the UUID v4 form');
  t.equal(new Set([first, ...ids]).size, ids.length + 1, 'no id repeats');
  for (let at = 0; at < 36; at++) {
    if ([8, 13, 14, 18, 23].includes(at)) continue; // dashes, the version digit
    const seen = new Set(ids.map((id) => id[at]));
    t.ok(seen.size >= (at === 19 ? 4 : 16), `digit ${at} takes ${seen.size} values`);
  }
});

t.test('client ip: the peer, or behind a trusted proxy the nearest untrusted X-Forwarded-For hop', async (t) => {
  const trusted = trustedProxyMatcher(['10.0.0.0/8']);
  t.equal(clientIp('::ffff:192.0.2.1', undefined, trusted), '192.0.2.1', 'v4-mapped peer normalised');
  t.equal(clientIp('192.0.2.1', '203.0.113.9', trusted), '192.0.2.1', 'an untrusted peer\'s X-Forwarded-For is ignored');
  t.equal(clientIp('10.0.0.2', '1.1.1.1, 203.0.113.9, 10.0.0.7', trusted), '203.0.113.9', 'rightmost untrusted hop');
  t.equal(clientIp('10.0.0.2', ['1.1.1.1', '203.0.113.9'], trusted), '203.0.113.9', 'repeated headers');
  t.equal(clientIp('10.0.0.2', '10.0.0.5', trusted), '10.0.0.2', 'all hops trusted: the peer');
});

import t from 'tap';
import { normalizeAddress, parseCidr, trustedProxyMatcher } from '../../src/request/trust.js';

t.test('empty list trusts nobody', async (t) => {
  const m = trustedProxyMatcher([]);
  for (const a of ['127.0.0.1', '::1', '10.0.0.1', '::ffff:10.0.0.1', '']) t.equal(m(a), false, a);
});

t.test('IPv4 CIDRs and single addresses', async (t) => {
  const m = trustedProxyMatcher(['10.0.0.0/8', '192.168.1.10', '172.16.0.0/12']);
  const cases: [string, boolean][] = [
    ['10.0.0.1', true], ['10.255.255.255', true], ['11.0.0.1', false],
    ['192.168.1.10', true], ['192.168.1.11', false],
    ['172.16.0.1', true], ['172.31.255.255', true], ['172.32.0.1', false],
    ['::ffff:10.0.0.1', true], ['::FFFF:192.168.1.10', true], ['::ffff:11.0.0.1', false],
    ['::1', false], ['not-an-ip', false], ['', false],
  ];
  for (const [a, want] of cases) t.equal(m(a), want, a);
});

t.test('IPv6 CIDRs and single addresses', async (t) => {
  const m = trustedProxyMatcher(['fd00::/8', '2001:db8::1', '::1']);
  const cases: [string, boolean][] = [
    ['fd12:3456::1', true], ['fe80::1', false], ['2001:db8::1', true], ['2001:db8::2', false],
    ['::1', true], ['127.0.0.1', false], ['fd00::1%eth0', true],
  ];
  for (const [a, want] of cases) t.equal(m(a), want, a);
});

t.test('IPv4-mapped entries match IPv4 peers', async (t) => {
  const m = trustedProxyMatcher(['::ffff:10.1.0.0/112', '::ffff:192.0.2.5']);
  t.equal(m('10.1.3.4'), true);
  t.equal(m('::ffff:10.1.3.4'), true);
  t.equal(m('10.2.0.1'), false);
  t.equal(m('192.0.2.5'), true);
});

t.test('/0 and /32 edges', async (t) => {
  t.equal(trustedProxyMatcher(['0.0.0.0/0'])('8.8.8.8'), true);
  t.equal(trustedProxyMatcher(['0.0.0.0/0'])('2001:db8::1'), false);
  t.equal(trustedProxyMatcher(['::/0'])('2001:db8::1'), true);
  t.equal(trustedProxyMatcher(['8.8.8.8/32'])('8.8.8.8'), true);
  t.equal(trustedProxyMatcher(['8.8.8.8/32'])('8.8.8.9'), false);
});

t.test('bad entries are refused', async (t) => {
  for (const bad of ['10.0.0.0/33', 'fd00::/129', '10.0.0.0/', '10.0.0.0/x', 'example.com', '10.0.0', '10.0.0.0/-1']) {
    t.throws(() => trustedProxyMatcher([bad]), TypeError, bad);
  }
});

t.test('normalizeAddress', async (t) => {
  t.equal(normalizeAddress('::ffff:127.0.0.1'), '127.0.0.1');
  t.equal(normalizeAddress('::ffff:7f00:1'), '::ffff:7f00:1');
  t.equal(normalizeAddress('fe80::1%lo0'), 'fe80::1');
  t.equal(normalizeAddress('10.0.0.1'), '10.0.0.1');
});

t.test('parseCidr: the one parser for trusted proxy entries (config checks use it too)', async (t) => {
  t.strictSame(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', family: 'ipv4', prefix: 8 });
  t.strictSame(parseCidr('2001:db8::1'), { address: '2001:db8::1', family: 'ipv6', prefix: null });
  t.strictSame(parseCidr('::ffff:10.1.0.0/112'), { address: '10.1.0.0', family: 'ipv4', prefix: 16 }, 'IPv4-mapped is IPv4');
  for (const bad of ['::ffff:10.0.0.0/8', 'fe80::1%eth0', '10.0.0.0/08x', ' 10.0.0.1']) {
    t.throws(() => parseCidr(bad), TypeError, bad);
  }
});

// Defaults follow what is set: a default never contradicts a value the user wrote; it adapts.
import t from 'tap';
import { parse, withSections, type Obj } from '../fixtures/config.js';
import { hostsMayOverlap } from '../../src/config/defaults.js';

const server = (s: Obj, more: Obj = {}) => parse(withSections({ server: s, ...more }));

t.test('jwksCacheMaxAgeMs and jwksMaxStaleMs', async (t) => {
  let c = parse(withSections({ tokens: { jwksMaxStaleMs: 300000 } }));
  t.equal(c.tokens.jwksMaxStaleMs, 300000);
  t.equal(c.tokens.jwksCacheMaxAgeMs, 300000, 'a smaller max stale pulls the cache age down with it');
  c = parse(withSections({ tokens: { jwksMaxStaleMs: 900000 } }));
  t.equal(c.tokens.jwksCacheMaxAgeMs, 600000, 'a larger max stale leaves the default');
  c = parse(withSections({ tokens: { jwksCacheMaxAgeMs: 7200000 } }));
  t.equal(c.tokens.jwksMaxStaleMs, 7200000, 'a larger cache age pushes max stale up');
  c = parse(withSections({ tokens: { jwksCacheMaxAgeMs: 60000 } }));
  t.equal(c.tokens.jwksMaxStaleMs, 3600000);
});

t.test('maxTokenBytes and server.maxHeaderBytes', async (t) => {
  let c = server({ maxHeaderBytes: 8192 });
  t.equal(c.server.maxHeaderBytes, 8192);
  t.equal(c.tokens.maxTokenBytes, 6144, 'three quarters of a smaller header limit');
  t.equal(c.tokens.maxTokenBytesSet, false, 'and marked as derived (a reload derives it from the running listener)');
  t.equal(server({ maxHeaderBytes: 1024 }).tokens.maxTokenBytes, 768, 'the smallest header limit still leaves a valid token limit');
  t.equal(server({ maxHeaderBytes: 65536 }).tokens.maxTokenBytes, 12288, 'a larger header limit leaves the default');
  c = parse(withSections({ tokens: { maxTokenBytes: 40000 } }));
  t.equal(c.tokens.maxTokenBytes, 40000);
  t.equal(c.tokens.maxTokenBytesSet, true, 'a maxTokenBytes written in the file is marked as set');
  t.equal(c.server.maxHeaderBytes, 54272, 'the header limit grows to the token plus a third, in whole KiB');
  t.ok(c.server.maxHeaderBytes > c.tokens.maxTokenBytes);
  t.equal(parse(withSections({ tokens: { maxTokenBytes: 65536 } })).server.maxHeaderBytes, 88064, 'the largest token still fits');
  t.equal(parse(withSections({ tokens: { maxTokenBytes: 4096 } })).server.maxHeaderBytes, 32768);
  t.throws(() => parse(withSections({ tokens: { maxTokenBytesSet: true } })), /tokens\.maxTokenBytesSet: .*unknown/, 'the mark is not a key of the file');
});

t.test('headersTimeoutMs and requestTimeoutMs', async (t) => {
  t.equal(server({ requestTimeoutMs: 5000 }).server.headersTimeoutMs, 5000, 'capped by a shorter whole-request timeout');
  t.equal(server({ requestTimeoutMs: 60000 }).server.headersTimeoutMs, 10000);
  t.equal(server({ requestTimeoutMs: 0 }).server.headersTimeoutMs, 10000, '0 is off, not a limit');
  t.equal(server({ headersTimeoutMs: 20000 }).server.requestTimeoutMs, 0);
});

t.test('server and admin ports', async (t) => {
  let c = server({ port: 9090 });
  t.equal(c.admin.port, 9091, 'admin moves off a port the server was given');
  c = parse(withSections({ admin: { port: 8080 } }));
  t.equal(c.server.port, 8081, 'the server moves off a port admin was given');
  t.equal(c.server.publicUrl, 'http://127.0.0.1:8081', 'the default publicUrl follows');
  c = server({ port: 9090 }, { admin: { host: '127.0.0.2' } });
  t.equal(c.admin.port, 9090, 'different hosts share a port');
  c = server({ host: '0.0.0.0', port: 9090 }, { admin: { host: '127.0.0.2' } });
  t.equal(c.admin.port, 9091, 'a wildcard server host clashes with every admin host');
  t.equal(server({ port: 0 }).admin.port, 9090);
});

t.test('ports move when the hosts may be the same interface, not only when written alike', async (t) => {
  // admin on localhost:8080, server on its default 127.0.0.1: localhost may be 127.0.0.1.
  let c = parse(withSections({ admin: { host: 'localhost', port: 8080 } }));
  t.equal(c.server.port, 8081, 'a host name vs a loopback address');
  t.equal(c.server.publicUrl, 'http://127.0.0.1:8081');
  c = server({ host: 'localhost', port: 9090 });
  t.equal(c.admin.port, 9091, 'a server host name vs the default admin host');
  c = server({ host: 'gw.internal', port: 9090 }, { admin: { host: '10.0.0.5' } });
  t.equal(c.admin.port, 9091, 'any host name may resolve to the other address');
  c = parse(withSections({ admin: { host: '::', port: 8080 } }));
  t.equal(c.server.port, 8081, 'an IPv6 wildcard admin host clashes with the server');
  c = parse(withSections({ server: { host: '0:0:0:0:0:0:0:0' }, admin: { host: '10.0.0.5', port: 8080 } }));
  t.equal(c.server.port, 8081, ':: in its long form is the wildcard too');
  c = server({ host: '::ffff:127.0.0.1', port: 9090 });
  t.equal(c.admin.port, 9091, 'an IPv4-mapped address is that IPv4 address');
  c = server({ host: '::1', port: 9090 });
  t.equal(c.admin.port, 9090, 'distinct addresses (::1 vs 127.0.0.1) share a port');
  c = server({ host: '10.0.0.5', port: 9090 }, { admin: { host: '10.0.0.6' } });
  t.equal(c.admin.port, 9090, 'distinct IPv4 addresses share a port');
});

t.test('hostsMayOverlap', async (t) => {
  const rows: Array<[string, string, boolean]> = [
    ['127.0.0.1', '127.0.0.1', true], ['localhost', '127.0.0.1', true], ['localhost', '::1', true], ['LOCALHOST', 'localhost', true],
    ['a.example', 'b.example', true], ['0.0.0.0', '10.0.0.1', true], ['::', '127.0.0.1', true], ['10.0.0.1', '::', true],
    ['::ffff:10.0.0.1', '10.0.0.1', true], ['::FFFF:a00:1', '10.0.0.1', true], ['0::1', '::1', true],
    ['127.0.0.1', '127.0.0.2', false], ['::1', '127.0.0.1', false], ['fd00::1', 'fd00::2', false], ['::ffff:10.0.0.2', '10.0.0.1', false],
  ];
  for (const [a, b, want] of rows) {
    t.equal(hostsMayOverlap(a, b), want, `${a} / ${b}`);
    t.equal(hostsMayOverlap(b, a), want, `${b} / ${a}`);
  }
});

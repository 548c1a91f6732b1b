import t from 'tap';
import { parseTarget } from '../../src/request/target.js';
import { BadRequestError, GatewayError, InvalidRequestError } from '../../src/errors.js';
import { ATTACKS } from '../fixtures/target-attacks.js';

/** The error parseTarget throws for raw, or null when it accepts it. */
function thrown(raw: string): unknown {
  try { parseTarget(raw); return null; } catch (e) { return e; }
}

t.test('attack table', async (t) => {
  t.ok(ATTACKS.length >= 50, 'at least 50 rows');
  for (const [raw, expect, why] of ATTACKS) {
    const label = `${why}: ${JSON.stringify(raw)}`;
    if (expect === 'bad') {
      const e = thrown(raw);
      t.ok(e instanceof BadRequestError && !(e instanceof InvalidRequestError) && e.status === 400, label);
    } else if (expect === 'token') {
      const e = thrown(raw);
      t.ok(e instanceof InvalidRequestError && e.status === 400, label);
    } else {
      t.same(parseTarget(raw), { path: expect[0], query: expect[1] }, label);
    }
  }
});

t.test('accepted paths decode to exactly the segments the router sees', async (t) => {
  for (const [raw, expect] of ATTACKS) {
    if (typeof expect === 'string') continue;
    const { path } = parseTarget(raw);
    const rawSegs = path.split('/');
    // decodeURIComponent throws on malformed escapes and invalid UTF-8
    const decodedSegs = rawSegs.map((s) => decodeURIComponent(s));
    for (const s of decodedSegs) {
      t.notOk(s.includes('/') || s.includes('\\'), `no separator hidden in a segment of ${raw}`);
      t.notOk(s === '.' || s === '..' || s.startsWith('.;') || s.startsWith('..;'), `no dot segment in ${raw}`);
    }
    t.equal(decodedSegs.slice(1, -1).filter((s) => s === '').length, 0, `no empty segment in ${raw}`);
  }
});

t.test('access_token detection agrees with URLSearchParams for &-separated queries', async (t) => {
  for (const [raw, expect] of ATTACKS) {
    const q = raw.indexOf('?');
    if (q < 0 || expect === 'bad') continue;
    const params = new URLSearchParams(raw.slice(q));
    if (expect === 'token') continue;
    t.notOk(params.has('access_token'), `accepted query has no access_token: ${raw}`);
  }
  for (const q of ['?access_token=1', '?a=1&access%5Ftoken=2', '?%61ccess_token', '?b&access_toke%6e=']) {
    t.ok(new URLSearchParams(q).has('access_token'), `URLSearchParams sees the token in ${q}`);
    t.ok(thrown('/x' + q) instanceof InvalidRequestError, `parseTarget refuses ${q}`);
  }
});

t.test('errors keep public messages generic and put specifics in detail', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['/a/../b', /dot segment/],
    ['/a%2fb', /percent-encoding/],
    ['/a//b', /empty segment/],
    ['/%c0%ae', /UTF-8/],
    ['/a%252e', /double/],
  ];
  for (const [raw, detail] of cases) {
    try {
      parseTarget(raw);
      t.fail(`expected ${raw} to be refused`);
    } catch (e) {
      t.ok(e instanceof GatewayError);
      const err = e as GatewayError;
      t.equal(err.message, 'Bad request: ambiguous request path', raw);
      t.match(err.detail, detail, raw);
      t.notOk(err.message.includes(raw), 'message does not echo the target');
    }
  }
  try {
    parseTarget('/a?access_token=secret-value');
    t.fail('expected refusal');
  } catch (e) {
    const err = e as InvalidRequestError;
    t.ok(err instanceof InvalidRequestError);
    t.notOk(`${err.message} ${err.detail ?? ''} ${JSON.stringify(err.headers)}`.includes('secret-value'), 'token value never in error');
    t.match(err.headers['www-authenticate'], /invalid_request/);
  }
});

t.test('path without query is returned as the same string', async (t) => {
  const raw = '/api/v1/projects/demo/assets';
  const r = parseTarget(raw);
  t.equal(r.path, raw);
  t.equal(r.query, '');
});

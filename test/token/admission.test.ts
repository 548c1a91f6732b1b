// The doorkeeper in front of the verified-token cache: a digest is admitted on its second sighting.
import { createHash } from 'node:crypto';
import t from 'tap';
import { Doorkeeper, doorkeeperSlots } from '../../src/token/admission.js';

const key = (s: string) => createHash('sha256').update(s).digest('binary');

t.test('slots: four per cache entry, a power of two, from 1 Ki to 1 Mi', async (t) => {
  t.equal(doorkeeperSlots(1), 1024);
  t.equal(doorkeeperSlots(256), 1024);
  t.equal(doorkeeperSlots(257), 2048);
  t.equal(doorkeeperSlots(10_000), 65_536);
  t.equal(doorkeeperSlots(1_000_000), 1 << 20);
});

t.test('a digest is seen before from its second sighting on', async (t) => {
  const d = new Doorkeeper(10_000);
  const a = key('token a');
  t.equal(d.seenBefore(a), false);
  t.equal(d.seenBefore(a), true);
  t.equal(d.seenBefore(a), true);
  t.equal(d.seenBefore(key('token b')), false, 'another digest is not');
});

t.test('a digest in the same slot takes it over; clear() forgets all', async (t) => {
  const d = new Doorkeeper(1); // 1024 slots: the low 10 bits of the first two bytes
  const a = key('token a');
  // Same slot (first three bytes), another fingerprint (bytes 3-6).
  const b = `${a.slice(0, 3)}${String.fromCharCode(a.charCodeAt(3) ^ 0x02)}${a.slice(4)}`;
  t.equal(d.seenBefore(a), false);
  t.equal(d.seenBefore(b), false);
  t.equal(d.seenBefore(a), false, 'a was overwritten by b: marked again');
  t.equal(d.seenBefore(a), true);
  d.clear();
  t.equal(d.seenBefore(a), false);
});

t.test('of 100,000 distinct digests in a 65,536-slot table, none is taken as seen but by a fingerprint match', async (t) => {
  const d = new Doorkeeper(10_000);
  let seen = 0;
  for (let i = 0; i < 100_000; i++) if (d.seenBefore(key(`token ${i}`))) seen++;
  t.ok(seen <= 2, `${seen} false sightings (31-bit fingerprints: about 0.002 expected)`);
});

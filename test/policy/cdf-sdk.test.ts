// The read/write classification (src/policy/cdf.ts) checked against the CDF API as @cognite/sdk 10
// calls it. Every SDK method below goes through a real gateway whose route allows readers
// `cdf: {access: read}` and writers `cdf: {access: write}`; a recording stand-in answers.
// For each call: the writer's run records what the SDK sent (every request must be in KNOWN, else
// the test fails: the table must know every call the SDK makes), the reader's run must reach
// the stand-in exactly for reads and get 403 for the first write.
import t from 'tap';
import * as sdkModule from '@cognite/sdk';
import { cdfAccess, type CdfAccess } from '../../src/policy/cdf.js';
import { startJwksServer, type JwksServer } from '../fixtures/jwks-server.js';
import { startGateway, secret } from '../fixtures/gateway.js';
import { startCdfStandin, type CdfStandin } from '../fixtures/cdf-standin.js';
import { claims, generateKey, mint, AUDIENCE, type TestKey } from '../fixtures/tokens.js';

// @cognite/sdk's declarations use extensionless specifiers NodeNext cannot resolve: untyped here.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Client = any;
const { CogniteClient, HttpError } = sdkModule as unknown as {
  CogniteClient: new (o: { appId: string; project: string; baseUrl: string; oidcTokenProvider: () => Promise<string> }) => Client;
  HttpError: abstract new (...a: never[]) => Error & { status: number };
};

const P = '/api/v1/projects/demo';
/** Every CDF endpoint the SDK calls below, with what it does. Paths are templates: {x} is one segment. */
const KNOWN: ReadonlyArray<readonly [method: string, path: string, access: CdfAccess]> = [
  ...['assets', 'timeseries', 'events', 'files', 'sequences'].flatMap((r) => [
    ['POST', `/${r}/list`, 'read'], ['POST', `/${r}/byids`, 'read'], ['POST', `/${r}/search`, 'read'],
    ['POST', `/${r}/aggregate`, 'read'], ['POST', `/${r}`, 'write'], ['POST', `/${r}/update`, 'write'],
    ['POST', `/${r}/delete`, 'write'],
  ] as const),
  ['POST', '/timeseries/data/list', 'read'], ['POST', '/timeseries/data/latest', 'read'],
  ['POST', '/timeseries/data', 'write'], ['POST', '/timeseries/data/delete', 'write'],
  ['POST', '/files/downloadlink', 'read'], ['POST', '/files/', 'write'],   // files.upload: POST /files/?overwrite=…
  ['POST', '/sequences/data/list', 'read'], ['POST', '/sequences/data', 'write'], ['POST', '/sequences/data/delete', 'write'],
  ['GET', '/raw/dbs', 'read'], ['POST', '/raw/dbs', 'write'], ['POST', '/raw/dbs/delete', 'write'],
  ['GET', '/raw/dbs/{db}/tables', 'read'], ['POST', '/raw/dbs/{db}/tables', 'write'], ['POST', '/raw/dbs/{db}/tables/delete', 'write'],
  ['GET', '/raw/dbs/{db}/tables/{t}/rows', 'read'], ['GET', '/raw/dbs/{db}/tables/{t}/rows/{key}', 'read'],
  ['POST', '/raw/dbs/{db}/tables/{t}/rows', 'write'], ['POST', '/raw/dbs/{db}/tables/{t}/rows/delete', 'write'],
  ['POST', '/models/instances/list', 'read'], ['POST', '/models/instances/byids', 'read'],
  ['POST', '/models/instances/search', 'read'], ['POST', '/models/instances/aggregate', 'read'],
  ['POST', '/models/instances/query', 'read'], ['POST', '/models/instances/sync', 'read'],
  ['POST', '/models/instances', 'write'], ['POST', '/models/instances/delete', 'write'],
  ['POST', '/documents/list', 'read'], ['POST', '/documents/search', 'read'], ['POST', '/documents/aggregate', 'read'],
  ['GET', '/documents/{id}/content', 'read'],
];

function known(method: string, url: string): CdfAccess | undefined {
  const path = url.split('?')[0]!;
  for (const [m, tmpl, access] of KNOWN) {
    const re = new RegExp(`^${P}${tmpl.replace(/\{[a-z]+\}/g, '[^/]+')}$`);
    if (m === method && re.test(path)) return access;
  }
  return undefined;
}

const node = { instanceType: 'node', space: 's', externalId: 'n1' };
const view = { type: 'view', space: 's', externalId: 'v', version: '1' };
/** SDK calls by resource: list, retrieve, search, aggregate, create, update, delete (and data). */
const CALLS: Record<string, Record<string, (c: Client) => Promise<unknown>>> = {
  assets: {
    list: (c) => c.assets.list({ limit: 1 }), retrieve: (c) => c.assets.retrieve([{ id: 1 }]),
    search: (c) => c.assets.search({ search: { name: 'x' } }), aggregate: (c) => c.assets.aggregate({ filter: {} }),
    create: (c) => c.assets.create([{ name: 'a' }]), update: (c) => c.assets.update([{ id: 1, update: { name: { set: 'b' } } }]),
    delete: (c) => c.assets.delete([{ id: 1 }]),
  },
  timeseries: {
    list: (c) => c.timeseries.list({ limit: 1 }), retrieve: (c) => c.timeseries.retrieve([{ id: 1 }]),
    search: (c) => c.timeseries.search({ search: { name: 'x' } }), aggregate: (c) => c.timeseries.aggregate({ filter: {} }),
    create: (c) => c.timeseries.create([{ externalId: 'ts' }]), update: (c) => c.timeseries.update([{ id: 1, update: { name: { set: 'b' } } }]),
    delete: (c) => c.timeseries.delete([{ id: 1 }]),
  },
  datapoints: {
    retrieve: (c) => c.datapoints.retrieve({ items: [{ id: 1 }] }), latest: (c) => c.datapoints.retrieveLatest([{ id: 1 }]),
    insert: (c) => c.datapoints.insert([{ id: 1, datapoints: [{ timestamp: 0, value: 1 }] }]),
    delete: (c) => c.datapoints.delete([{ id: 1, inclusiveBegin: 0 }]),
  },
  events: {
    list: (c) => c.events.list({ limit: 1 }), retrieve: (c) => c.events.retrieve([{ id: 1 }]),
    search: (c) => c.events.search({ search: { description: 'x' } }), aggregate: (c) => c.events.aggregate.count({ filter: {} }),
    create: (c) => c.events.create([{ type: 'e' }]), update: (c) => c.events.update([{ id: 1, update: { type: { set: 'b' } } }]),
    delete: (c) => c.events.delete([{ id: 1 }]),
  },
  files: {
    list: (c) => c.files.list({ limit: 1 }), retrieve: (c) => c.files.retrieve([{ id: 1 }]),
    search: (c) => c.files.search({ search: { name: 'x' } }), aggregate: (c) => c.files.aggregate({ filter: {} }),
    create: (c) => c.files.upload({ name: 'f.txt' }), update: (c) => c.files.update([{ id: 1, update: { source: { set: 'b' } } }]),
    delete: (c) => c.files.delete([{ id: 1 }]), downloadlink: (c) => c.files.getDownloadUrls([{ id: 1 }]),
  },
  sequences: {
    list: (c) => c.sequences.list({ limit: 1 }), retrieve: (c) => c.sequences.retrieve([{ id: 1 }]),
    search: (c) => c.sequences.search({ search: { name: 'x' } }), aggregate: (c) => c.sequences.aggregate({ filter: {} }),
    create: (c) => c.sequences.create([{ externalId: 's', columns: [{ externalId: 'c' }] }]),
    update: (c) => c.sequences.update([{ id: 1, update: { name: { set: 'b' } } }]), delete: (c) => c.sequences.delete([{ id: 1 }]),
    rows: (c) => c.sequences.retrieveRows({ id: 1 }),
    insertRows: (c) => c.sequences.insertRows([{ id: 1, columns: ['c'], rows: [{ rowNumber: 1, values: [1] }] }]),
    deleteRows: (c) => c.sequences.deleteRows([{ id: 1, rows: [1] }]),
  },
  raw: {
    listDatabases: (c) => c.raw.listDatabases(), createDatabases: (c) => c.raw.createDatabases([{ name: 'db' }]),
    deleteDatabases: (c) => c.raw.deleteDatabases([{ name: 'db' }]), listTables: (c) => c.raw.listTables('db'),
    createTables: (c) => c.raw.createTables('db', [{ name: 't' }]), deleteTables: (c) => c.raw.deleteTables('db', [{ name: 't' }]),
    listRows: (c) => c.raw.listRows('db', 't'), retrieveRow: (c) => c.raw.retrieveRow('db', 't', 'k'),
    insertRows: (c) => c.raw.insertRows('db', 't', [{ key: 'k', columns: { a: 1 } }]),
    deleteRows: (c) => c.raw.deleteRows('db', 't', [{ key: 'k' }]),
  },
  instances: {
    list: (c) => c.instances.list({ instanceType: 'node', limit: 1 }), retrieve: (c) => c.instances.retrieve({ items: [node] }),
    search: (c) => c.instances.search({ view, query: 'x' }),
    aggregate: (c) => c.instances.aggregate({ view, aggregates: [{ count: { property: 'externalId' } }] }),
    query: (c) => c.instances.query({ with: {}, select: {} }), sync: (c) => c.instances.sync({ with: {}, select: {} }),
    upsert: (c) => c.instances.upsert({ items: [{ ...node, sources: [] }] }), delete: (c) => c.instances.delete([node]),
  },
  documents: {
    list: (c) => c.documents.list({ limit: 1 }), search: (c) => c.documents.search({ search: { query: 'x' } }),
    aggregate: (c) => c.documents.aggregate.count({}), content: (c) => c.documents.content(1),
  },
};

/** The HTTP status an SDK call failed with: HttpError's, or the first of a multi-item error's. */
function statusOf(err: unknown): number | undefined {
  if (err instanceof HttpError) return err.status;
  const e = err as { status?: unknown; errors?: Array<{ status?: unknown }> } | null;
  const s = e?.status ?? e?.errors?.[0]?.status;
  return typeof s === 'number' ? s : undefined;
}

let jwks: JwksServer;
let cdf: CdfStandin;
let key: TestKey;
t.before(async () => {
  key = await generateKey('RS256', 'k1');
  jwks = await startJwksServer({ keys: [key.jwk] });
  cdf = await startCdfStandin();
});
t.teardown(async () => { await cdf?.close(); await jwks?.close(); });

t.test('every SDK call is classified as the table says, and the gateway decides accordingly', async (t) => {
  const gw = await startGateway(t, {
    tokens: { jwksTimeoutMs: 10000 },  // generous: shared CI machines stall
    issuers: [{ issuer: jwks.url, jwksUri: jwks.jwksUri, audiences: [AUDIENCE] }],
    upstreams: { cdf: { url: cdf.url, credentials: { type: 'user-token' } } },
    routes: [{
      prefix: '/api/v1/projects/demo', upstream: 'cdf',
      allow: [{ groups: ['readers'], cdf: { access: 'read' } }, { groups: ['writers'], cdf: { access: 'write' } }],
    }],
  });
  const token = async (groups: string[]) => secret(await mint(claims(jwks.url, AUDIENCE, Date.now(), { sub: groups[0], groups }), { key }));
  const client = async (groups: string[]) => {
    const tok = await token(groups);
    const c = new CogniteClient({ appId: 'cdf-sdk-test', project: 'demo', baseUrl: gw.url, oidcTokenProvider: async () => tok });
    await c.authenticate();
    return c;
  };
  const writer = await client(['writers']);
  const reader = await client(['readers']);
  const run = async (c: Client, call: (c: Client) => Promise<unknown>) => {
    const before = cdf.requests.length;
    const error = await Promise.resolve().then(() => call(c)).then(() => null, (e: unknown) => e);
    return { error, seen: cdf.requests.slice(before).map((r) => ({ method: r.method, url: r.url })) };
  };

  let reads = 0;
  let writes = 0;
  for (const [resource, calls] of Object.entries(CALLS)) {
    for (const [name, call] of Object.entries(calls)) {
      await t.test(`${resource}.${name}`, async (t) => {
        const w = await run(writer, call);
        t.ok(w.seen.length > 0, 'the SDK made a request');
        t.not(statusOf(w.error), 403, 'writers may do anything');
        const kinds = w.seen.map((r) => {
          const access = known(r.method, r.url);
          t.ok(access, `the table knows ${r.method} ${r.url}`);
          t.equal(cdfAccess(r.method, r.url.split('?')[0]!), access, `cdfAccess agrees on ${r.method} ${r.url}`);
          return access;
        });
        const r = await run(reader, call);
        const firstWrite = kinds.indexOf('write');
        if (firstWrite < 0) {
          reads++;
          t.same(r.seen, w.seen, 'a reader\'s reads reach CDF');
          t.not(statusOf(r.error), 403);
        } else {
          writes++;
          t.same(r.seen, w.seen.slice(0, firstWrite), 'a reader\'s write never reaches CDF');
          t.equal(statusOf(r.error), 403, 'the reader gets 403');
        }
      });
    }
  }
  t.ok(reads >= 30 && writes >= 25, `reads and writes both covered (${reads} reads, ${writes} writes)`);
});

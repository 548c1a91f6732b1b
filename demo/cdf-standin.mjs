// A recording stand-in for the CDF API: answers the calls @cognite/sdk makes (list, byids, get by
// id for assets, time series and events) with plausible data in CDF's shape, and records, for every
// request, the credential and identity headers it arrived with. Credentials are only ever shown
// as a short prefix plus a SHA-256 fingerprint, never whole.
// GET /_demo/requests lists the records (JSON, or an HTML table for a browser).
// GET /api/v1/token/inspect answers in CDF's documented shape from the token's IdP groups (as CDF
// groups with a source ID would), and /apps/timeseries-editor/ is an internal app the gateway
// opens only to callers CDF grants timeSeriesAcl:WRITE in project demo.
import { createHash } from 'node:crypto';
import http from 'node:http';
import { decodeJwt } from 'jose';
import { closeServer, listen } from './net.mjs';

const T0 = Date.UTC(2026, 0, 5);
const ASSETS = [
  { id: 101, externalId: 'site-oslo', name: 'Oslo plant', description: 'Production site', rootId: 101, metadata: { country: 'NO' } },
  { id: 102, externalId: 'pump-23-1', name: '23-PA-9101', description: 'Export pump A', parentId: 101, rootId: 101, metadata: { type: 'pump' } },
  { id: 103, externalId: 'pump-23-2', name: '23-PA-9102', description: 'Export pump B', parentId: 101, rootId: 101, metadata: { type: 'pump' } },
  { id: 104, externalId: 'comp-27-1', name: '27-KA-9101', description: 'Gas compressor', parentId: 101, rootId: 101, metadata: { type: 'compressor' } },
].map((a) => ({ ...a, createdTime: T0, lastUpdatedTime: T0 }));
const TIMESERIES = [
  { id: 201, externalId: 'pump-23-1:pressure', name: '23-PT-9101 discharge pressure', unit: 'bar', assetId: 102 },
  { id: 202, externalId: 'pump-23-1:flow', name: '23-FT-9101 flow', unit: 'm3/h', assetId: 102 },
  { id: 203, externalId: 'comp-27-1:temperature', name: '27-TT-9101 outlet temperature', unit: 'degC', assetId: 104 },
].map((t) => ({ ...t, isString: false, isStep: false, metadata: {}, securityCategories: [], createdTime: T0, lastUpdatedTime: T0 }));
const EVENTS = [
  { id: 301, externalId: 'wo-1001', type: 'workorder', subtype: 'inspection', description: 'Inspect seal', assetIds: [102], startTime: T0, endTime: T0 + 3_600_000 },
  { id: 302, externalId: 'alarm-77', type: 'alarm', subtype: 'high-temperature', description: 'Outlet temperature high', assetIds: [104], startTime: T0 + 7_200_000 },
].map((e) => ({ ...e, metadata: {}, source: 'demo', createdTime: T0, lastUpdatedTime: T0 }));
const RESOURCES = { assets: ASSETS, timeseries: TIMESERIES, events: EVENTS };

/** CDF groups of project demo, by the IdP group each has as its source ID. */
const CDF_GROUPS = {
  readers: { id: 1001, acls: { assetsAcl: ['READ'], timeSeriesAcl: ['READ'], eventsAcl: ['READ'] } },
  writers: { id: 1002, acls: { assetsAcl: ['READ', 'WRITE'], timeSeriesAcl: ['READ', 'WRITE'], eventsAcl: ['READ', 'WRITE'] } },
};

/** token/inspect for the bearer token (decoded, not verified: a stand-in, not a CDF). */
function inspect(req) {
  const [scheme, token = ''] = (req.headers.authorization ?? '').split(' ');
  let claims;
  try { claims = scheme === 'Bearer' ? decodeJwt(token) : null; } catch { claims = null; }
  if (!claims) return [401, { error: { code: 401, message: 'Unauthorized' } }];
  const groups = (Array.isArray(claims.groups) ? claims.groups : []).map((g) => CDF_GROUPS[g]).filter(Boolean);
  return [200, {
    subject: claims.sub,
    projects: groups.length ? [{ projectUrlName: 'demo', groups: groups.map((g) => g.id) }] : [],
    capabilities: groups.flatMap((g) => Object.entries(g.acls).map(([acl, actions]) => ({
      [acl]: { actions, scope: { all: {} } }, projectScope: { projects: ['demo'] },
    }))),
  }];
}

function editorPage(req) {
  const user = escapeHtml(req.headers['x-auth-request-user'] ?? '(nobody)');
  return `<!doctype html><meta charset="utf-8"><title>Time series editor</title>
<h1>Time series editor</h1><p>An internal app. The gateway let you in because CDF grants you
<code>timeSeriesAcl:WRITE</code> in project demo. Signed in as <b>${user}</b>.</p>`;
}

const IDENTITY_HEADERS = ['x-auth-request-user', 'x-auth-request-email', 'x-auth-request-groups'];
const KEEP = 200; // records kept for /_demo/requests

/** A short, non-reversible view of a secret: its first characters and a fingerprint. */
export function fingerprint(secret) {
  return `${secret.slice(0, 8)}…(sha256:${createHash('sha256').update(secret).digest('hex').slice(0, 12)})`;
}

/** What the gateway put on a request, in a form safe to show. */
function describe(req) {
  const h = req.headers;
  const credential = {};
  const auth = h.authorization;
  if (auth) {
    const [scheme, token = ''] = auth.split(' ');
    credential.authorization = `${scheme} ${fingerprint(token)}`;
    try {
      const c = decodeJwt(token); // unverified: only to show whose token it is
      credential.token = { sub: c.sub, client_id: c.client_id, groups: c.groups, scp: c.scp, aud: c.aud, iss: c.iss };
    } catch { /* not a JWT */ }
  }
  if (h['api-key']) credential.apiKey = fingerprint(String(h['api-key']));
  if (h.cookie) credential.cookies = h.cookie.split(';').map((c) => c.split('=')[0].trim());
  const identity = Object.fromEntries(IDENTITY_HEADERS.filter((n) => h[n] !== undefined).map((n) => [n, h[n]]));
  return { credential, identity };
}

function logLine(r) {
  const t = r.credential.token;
  const cred = r.credential.authorization
    ? `${r.credential.authorization}${t ? ` sub=${t.sub} client=${t.client_id}` : ''}`
    : r.credential.apiKey ? `api-key ${r.credential.apiKey}` : 'no credential';
  const who = r.identity['x-auth-request-user']
    ? `user=${r.identity['x-auth-request-user']} groups=${r.identity['x-auth-request-groups'] || '-'}`
    : 'no identity headers';
  return `[cdf] ${r.method} ${r.path} → ${r.status} | credential: ${cred} | identity: ${who}\n`;
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
const notFound = (res) => send(res, 404, { error: { code: 404, message: 'Not found' } });

function answerCdf(method, parts, body, res) {
  // parts: [resource, ...rest] below /api/v1/projects/{project}/
  const [resource, action] = parts;
  const items = RESOURCES[resource];
  if (!items || parts.length > 2) return notFound(res);
  if (method === 'POST' && action === 'list') {
    const limit = Number.isInteger(body.limit) && body.limit > 0 ? body.limit : 100;
    return send(res, 200, { items: items.slice(0, limit) });
  }
  if (method === 'POST' && action === 'byids') {
    const wanted = Array.isArray(body.items) ? body.items : [];
    const found = wanted.map((w) => items.find((i) => i.id === w.id || (w.externalId && i.externalId === w.externalId)));
    if (found.some((f) => !f) && !body.ignoreUnknownIds) {
      return send(res, 400, { error: { code: 400, message: 'Ids not found', missing: wanted.filter((_, n) => !found[n]) } });
    }
    return send(res, 200, { items: found.filter(Boolean) });
  }
  if (method === 'GET' && action === undefined) return send(res, 200, { items });
  if (method === 'GET') {
    const item = items.find((i) => String(i.id) === action);
    return item ? send(res, 200, item) : notFound(res);
  }
  return notFound(res);
}

const escapeHtml = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

function requestsPage(records) {
  const rows = records.slice().reverse().map((r) => `<tr><td>${escapeHtml(r.time)}</td><td>${escapeHtml(r.method)} ${escapeHtml(r.path)}</td>`
    + `<td>${r.status}</td><td><code>${escapeHtml(JSON.stringify(r.credential))}</code></td>`
    + `<td><code>${escapeHtml(JSON.stringify(r.identity))}</code></td></tr>`).join('\n');
  return `<!doctype html><meta charset="utf-8"><title>CDF stand-in: requests received</title>
<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px;vertical-align:top;text-align:left}table{border-collapse:collapse}</style>
<h1>Requests the CDF stand-in received (newest first)</h1>
<p>What the gateway sent upstream: the credential it injected (shown as a fingerprint) and the identity headers.</p>
<table><tr><th>time</th><th>request</th><th>status</th><th>credential</th><th>identity headers</th></tr>
${rows}</table>`;
}

export async function startCdfStandin({ port, out = process.stdout }) {
  const records = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/_demo/requests') {
        if ((req.headers.accept ?? '').includes('text/html')) {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          return res.end(requestsPage(records));
        }
        return send(res, 200, { items: records });
      }
      let body = {};
      try { body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {}; } catch { /* answered as empty */ }
      const project = /^\/api\/v1\/projects\/([^/]+)\/(.+)$/.exec(path);
      if (path === '/api/v1/token/inspect' && req.method === 'GET') send(res, ...inspect(req));
      else if (path.startsWith('/apps/timeseries-editor/') && req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(editorPage(req));
      } else if (project) answerCdf(req.method, project[2].split('/'), body, res);
      else if (path === '/status' && req.method === 'GET') send(res, 200, { status: 'ok', service: 'cdf-standin' });
      else notFound(res);
      const record = { time: new Date().toISOString(), method: req.method, path, status: res.statusCode, ...describe(req) };
      records.push(record);
      if (records.length > KEEP) records.shift();
      out.write(logLine(record));
    });
  });
  await listen(server, port, 'CDF stand-in');
  return { url: `http://127.0.0.1:${port}`, records, close: () => closeServer(server) };
}

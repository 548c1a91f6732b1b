// The demo's internal app, in two parts:
//   - a live-data service behind the gateway (route /live, session or bearer): a WebSocket at
//     /live/ws that greets the signed-in user (from X-Auth-Request-User, set by the gateway) and
//     pushes a reading every second, echoing anything sent to it;
//   - a single-page dashboard served from its own origin (http://127.0.0.1:<spa port>), which
//     calls the gateway cross-origin: a CORS POST to the CDF route with the session cookie, and
//     the WebSocket above. No inline script (its JS is a separate file).
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { closeServer, listen } from './net.mjs';

export async function startLiveService({ port }) {
  const server = http.createServer((_req, res) => { res.writeHead(404, { 'content-type': 'text/plain' }); res.end('WebSocket only\n'); });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    if (!req.url.startsWith('/live/ws')) { socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n'); return; }
    const user = req.headers['x-auth-request-user'] ?? 'anonymous';
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ hello: user }));
      let n = 0;
      const tick = setInterval(() => ws.send(JSON.stringify({ n: ++n, pressure: +(41 + Math.sin(n / 3) * 2).toFixed(2) })), 1000);
      ws.on('message', (data) => ws.send(JSON.stringify({ echo: data.toString().slice(0, 200) })));
      ws.on('close', () => clearInterval(tick));
    });
  });
  await listen(server, port, 'live service');
  return { close: async () => { for (const c of wss.clients) c.terminate(); wss.close(); await closeServer(server); } };
}

const PAGE = (gw) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo dashboard</title>
<meta name="gateway" content="${gw}">
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto}pre{background:#f4f5f7;padding:.75rem}</style>
</head><body>
<h1>Demo dashboard (another origin)</h1>
<p id="who">Checking your session…</p>
<h2>Assets (cross-origin POST to the gateway, with the session cookie)</h2>
<pre id="assets">…</pre>
<h2>Live readings (WebSocket through the gateway)</h2>
<pre id="live">…</pre>
<script src="/app.js"></script>
</body></html>
`;

const SCRIPT = `
const gw = document.querySelector('meta[name=gateway]').content;
const who = document.getElementById('who');
const assets = document.getElementById('assets');
const live = document.getElementById('live');
fetch(gw + '/api/v1/projects/demo/assets/list', {
  method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body: '{"limit":5}',
}).then(async (res) => {
  if (res.status === 401) {
    who.innerHTML = '';
    const a = document.createElement('a');
    a.href = gw + '/auth/login?project=demo&redirect=' + encodeURIComponent(location.href);
    a.textContent = 'Sign in through the gateway';
    who.append('Not signed in. ', a);
    assets.textContent = '401 from the gateway (readable here thanks to CORS)';
    return;
  }
  const body = await res.json();
  who.textContent = 'Signed in (the gateway session cookie rode along).';
  assets.textContent = res.status + ' ' + (body.items ? body.items.map((a) => a.name).join(', ') : JSON.stringify(body));
  const ws = new WebSocket(gw.replace(/^http/, 'ws') + '/live/ws');
  const lines = [];
  ws.onmessage = (e) => { lines.unshift(e.data); live.textContent = lines.slice(0, 8).join('\\n'); };
  ws.onclose = (e) => { live.textContent = 'closed ' + e.code + ' ' + e.reason + '\\n' + live.textContent; };
}).catch((e) => { assets.textContent = 'blocked: ' + e; });
`;

export async function startDashboard({ port, gatewayUrl }) {
  const server = http.createServer((req, res) => {
    if (req.url === '/app.js') { res.writeHead(200, { 'content-type': 'text/javascript' }); res.end(SCRIPT); return; }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE(gatewayUrl));
  });
  await listen(server, port, 'dashboard');
  return { close: () => closeServer(server) };
}

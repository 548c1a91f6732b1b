// The stand-in upstream for the benchmarks: a bare node:http server answering every request with
// the same small CDF-style JSON body. Runs in its own process; started by bench/run.mjs and
// bench/rss.mjs, which it tells its port over IPC. Exits when the parent goes away.
import http from 'node:http';

const body = Buffer.from(JSON.stringify({
  items: [
    { id: 4503599627370496, externalId: 'pump-001', name: 'Pump 001', parentId: 1, rootId: 1, metadata: { site: 'bench' }, createdTime: 1700000000000, lastUpdatedTime: 1700000000000 },
    { id: 4503599627370497, externalId: 'pump-002', name: 'Pump 002', parentId: 1, rootId: 1, metadata: { site: 'bench' }, createdTime: 1700000000000, lastUpdatedTime: 1700000000000 },
  ],
}));
const headers = { 'content-type': 'application/json', 'content-length': String(body.length) };

// Large headers accepted: a 10 KB token is forwarded (user-token) with its groups in X-Auth-Request-Groups.
const server = http.createServer({ maxHeaderSize: 64 * 1024 }, (req, res) => {
  // Drain any request body, then answer.
  req.resume();
  res.writeHead(200, headers);
  res.end(body);
});
server.keepAliveTimeout = 72_000;
server.headersTimeout = 75_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address();
  if (process.send) process.send({ ready: true, port, bodyBytes: body.length });
  else console.log(`upstream listening on http://127.0.0.1:${port}`);
});

const stop = () => { server.closeAllConnections(); server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 1000).unref(); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
